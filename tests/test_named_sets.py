"""AIM19, NTIRE20, DIV2K, LOL / EnlightenGAN and the classic test sets read as shipped, each on a miniature copy of
the real layout written here (the same folder and file names and extensions, fewer and smaller images): the
official splits and counts, pairing across naming conventions, SeNM-VAE's split, the error on a broken layout;
and paired folders with other naming (templates, separate roots) end to end through train and evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import save_rgb, smooth_image
from degrade_lab.data.div2k import div2k
from degrade_lab.data.lol import lol
from degrade_lab.data.pairing import PairFolder, find_pairs
from degrade_lab.data.realsr import aim19, ntire20
from degrade_lab.data.testsets import classic_set, clean_images
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.evaluate import evaluate

REALSR = {"aim19": ("train-clean-images", "train-noisy-images", "valid-gt-clean", "valid-input-noisy"),
          "ntire20": ("Corrupted-tr-y", "Corrupted-tr-x", "track1-valid-gt", "Corrupted-va-x")}
VALID = 14  # the challenges ship 100 validation pairs (0801-0900)


def _pair(rng, clean_path, degraded_path, size=64, scale=4):
    clean = smooth_image(rng, size, size)
    save_rgb(clean_path, clean)
    small = clean.reshape(size // scale, scale, size // scale, scale, 3).mean(axis=(1, 3))
    save_rgb(degraded_path, np.clip(small + rng.normal(0, 8, small.shape), 0, 255).astype(np.uint8))


def write_realsr(root: Path, challenge: str, deflow_prepared: bool = False) -> Path:
    """The four folders of the challenge, as unzipped (or after DeFlow's script: images moved to 1x/)."""
    clean, noisy, valid_clean, valid_noisy = (root / challenge.upper() / name for name in REALSR[challenge])
    sub = "1x" if deflow_prepared else "."
    rng = np.random.default_rng(1)
    for i in range(1, 7):
        save_rgb(clean / sub / f"{i:04d}.png", smooth_image(rng, 64, 64))
        save_rgb(noisy / sub / f"{i + 100:04d}.png", smooth_image(rng, 24, 24))
    for i in range(801, 801 + VALID):
        _pair(rng, valid_clean / sub / f"{i:04d}.png", valid_noisy / sub / f"{i:04d}.png")
    if deflow_prepared:  # the script's other scales, which must be left out
        save_rgb(clean / "4x" / "0001.png", smooth_image(rng, 16, 16))
    return root


def write_div2k(root: Path, scale: int = 4) -> Path:
    rng = np.random.default_rng(2)
    for split, first, count in (("train", 1, 5), ("valid", 801, 3)):
        for i in range(first, first + count):
            _pair(rng, root / f"DIV2K_{split}_HR" / f"{i:04d}.png",
                  root / f"DIV2K_{split}_LR_bicubic" / f"X{scale}" / f"{i:04d}x{scale}.png", scale=scale)
    return root


def write_lol(root: Path, enlightengan: bool = True) -> Path:
    rng = np.random.default_rng(3)
    for split, count in (("our485", 12), ("eval15", 3)):
        for i in range(count):
            high = smooth_image(rng, 48, 48)
            save_rgb(root / "LOLdataset" / split / "high" / f"{i + 1}.png", high)
            save_rgb(root / "LOLdataset" / split / "low" / f"{i + 1}.png", (high * 0.2).astype(np.uint8))
    if enlightengan:
        for i in range(4):
            save_rgb(root / "final_dataset" / "trainA" / f"low{i}.png", (smooth_image(rng, 48, 48) * 0.2).astype(np.uint8))
            save_rgb(root / "final_dataset" / "trainB" / f"normal{i}.jpg", smooth_image(rng, 48, 48))
    return root


@pytest.mark.parametrize("challenge", ["aim19", "ntire20"])
@pytest.mark.parametrize("prepared", [False, True])
def test_realsr_splits_and_senmvae_pairs(tmp_path, challenge, prepared):
    root = write_realsr(tmp_path, challenge, prepared)
    factory = {"aim19": aim19, "ntire20": ntire20}[challenge]
    test = factory(kind="test", root=root)
    assert len(test) == VALID and [name for name, _, _ in test.pairs][:2] == ["0801", "0802"]
    sample = test[0]
    assert sample["clean"].shape[-1] == 4 * sample["degraded"].shape[-1] == 64
    loader = {"crop_size": 32, "batch_size": 2, "num_workers": 0, "val_crop": None}
    unpaired = factory(kind="unpaired", root=root, **loader)
    source, target = unpaired.domain_files()
    assert len(source) == len(target) == 6 and all("4x" not in p.parts for p in source)
    semi = factory(kind="semi", root=root, num_paired=4, **loader)
    assert semi.split_record["paired"] == ["0801", "0802", "0803", "0804"]
    assert semi.split_record["test"][0] == "0805" and len(semi.split_record["test"]) == VALID - 4
    assert len(factory(kind="test", root=root, test="senmvae", num_paired=4)) == VALID - 4
    batch = next(iter(semi.train_dataloader()))
    assert batch["clean"].shape[-1] == 32
    with pytest.raises(UserInputError, match="no training pairs"):
        factory(kind="paired", root=root, **loader)
    paired = factory(kind="paired", root=root, degrader={"_target_": "degrade_lab.degradations.resize.Bicubic",
                                                         "scale": 4}, **loader)
    batch = paired.on_after_batch_transfer(next(iter(paired.train_dataloader())), 0)
    assert batch["degraded"].shape[-1] == 8
    # SeNM-VAE Tables 4-5's supervised baseline: a restorer on the first num_paired validation pairs, tested on the rest
    few = factory(kind="paired", root=root, test="senmvae", num_paired=4, **loader)
    assert few.train_sizes == [4] and len(few.test_set) == VALID - 4
    assert {p[0] for p in few.test_set.pairs}.isdisjoint({"0801", "0802", "0803", "0804"})


def test_a_broken_realsr_layout_lists_what_was_expected(tmp_path):
    root = write_realsr(tmp_path, "aim19")
    for file in (root / "AIM19" / "valid-input-noisy").iterdir():
        file.unlink()
    with pytest.raises(UserInputError) as err:
        aim19(kind="test", root=root)
    message = str(err.value)
    assert "validation inputs not found" in message and "valid-input-noisy -> found" in message
    assert "train-clean-images -> found" in message and "with 0 images" in message
    (root / "AIM19" / "valid-input-noisy" / "0801.png").parent.mkdir(exist_ok=True)
    _pair(np.random.default_rng(0), tmp_path / "x" / "0801.png", root / "AIM19" / "valid-input-noisy" / "0999.png")
    with pytest.raises(UserInputError, match=r"only in valid-gt-clean/ \(14\): 0801.*\n  only in valid-input-noisy/ \(1\): 0999"):
        aim19(kind="test", root=root)
    for i in range(801, 801 + VALID):  # every partner present, one of them the wrong size for x4
        save_rgb(root / "AIM19" / "valid-input-noisy" / f"{i:04d}.png", smooth_image(np.random.default_rng(i), 16, 16))
    (root / "AIM19" / "valid-input-noisy" / "0999.png").unlink()
    save_rgb(root / "AIM19" / "valid-input-noisy" / "0805.png", smooth_image(np.random.default_rng(0), 20, 16))
    with pytest.raises(UserInputError, match=r"pair '0805'.*64x64.*20x16; with scale 4"):
        aim19(kind="test", root=root)
    with pytest.raises(UserInputError, match="needs data.root"):
        ntire20(kind="test", root=None)


def test_div2k_pairs_hr_with_the_x4_files_and_splits(tmp_path):
    root = write_div2k(tmp_path / "DIV2K")
    test = div2k(kind="test", root=tmp_path)
    assert len(test) == 3 and test.pairs[0][0] == "0801" and test.pairs[0][2].name == "0801x4.png"
    module = div2k(kind="paired", root=tmp_path, crop_size=32, batch_size=2, num_workers=0)
    assert module.train_sizes == [5]
    batch = next(iter(module.train_dataloader()))
    assert batch["clean"].shape[-1] == 4 * batch["degraded"].shape[-1] == 32
    with pytest.raises(UserInputError, match="bicubic x2 images not found"):
        div2k(kind="paired", root=root, scale=2, crop_size=32)
    assert len(div2k(kind="clean", root=root)) == 3
    # a denoiser degrading the HR images on the fly (VDIR Table I) needs no LR folder and takes scale 1
    awgn = {"_target_": "degrade_lab.degradations.noise.AWGN", "sigma": 25, "clip": False}
    denoiser = div2k(kind="paired", root=root, scale=1, test=None, degrader=awgn, crop_size=32, batch_size=2)
    assert denoiser.train_sizes == [5]
    with pytest.raises(UserInputError, match="scales 2, 3 and 4, got data.scale=1"):
        div2k(kind="paired", root=root, scale=1, degrader=awgn, crop_size=32)  # its validation pairs are x2-x4


def test_lol_pairs_and_enlightengan_unpaired(tmp_path):
    root = write_lol(tmp_path)
    test = lol(kind="test", root=root)
    assert len(test) == 3 and float(test[0]["degraded"].mean()) < float(test[0]["clean"].mean())
    loader = {"crop_size": 32, "batch_size": 2, "num_workers": 0}
    assert lol(kind="paired", root=root, **loader).train_sizes == [12]
    source, target = lol(kind="unpaired", root=root, **loader).domain_files()
    assert [p.parent.name for p in (source[0], target[0])] == ["trainB", "trainA"] and len(source) == 4
    source, _ = lol(kind="unpaired", root=root, unpaired="lol", **loader).domain_files()
    assert len(source) == 12 and source[0].parent.name == "high"
    semi = lol(kind="semi", root=root, num_paired=3, **loader)
    assert len(semi.split_record["paired"]) == 3
    bare = write_lol(tmp_path / "bare", enlightengan=False)
    assert lol(kind="unpaired", root=bare, **loader).domain_files()[0][0].parent.name == "high"
    with pytest.raises(UserInputError, match="EnlightenGAN low-light images, .* not found"):
        lol(kind="unpaired", root=bare, unpaired="enlightengan", **loader)


def test_classic_test_sets_are_found_in_their_usual_layouts(tmp_path):
    rng = np.random.default_rng(4)
    for i in range(3):
        save_rgb(tmp_path / "testsets" / "CBSD68" / f"{i}.png", smooth_image(rng, 32, 32))
        save_rgb(tmp_path / "testsets" / "Set5" / "GTmod12" / f"img{i}.png", smooth_image(rng, 32, 32))
        save_rgb(tmp_path / "testsets" / "Set5" / "LRbicx4" / f"img{i}.png", smooth_image(rng, 8, 8))
        save_rgb(tmp_path / "sr" / "Urban100" / "image_SRF_4" / f"img_00{i}_SRF_4_HR.png", smooth_image(rng, 32, 32))
        save_rgb(tmp_path / "sr" / "Urban100" / "image_SRF_4" / f"img_00{i}_SRF_4_LR.png", smooth_image(rng, 8, 8))
    assert len(clean_images(tmp_path, "cbsd68")) == 3
    assert {p.parent.name for p in clean_images(tmp_path, "Set5")} == {"GTmod12"}
    assert all(p.stem.endswith("_HR") for p in clean_images(tmp_path, "Urban100"))
    with pytest.raises(UserInputError, match="Kodak24 not found"):
        clean_images(tmp_path, "Kodak24")
    with pytest.raises(UserInputError, match="not a classic test set"):
        clean_images(tmp_path, "Set6")
    with pytest.raises(UserInputError, match="level sweep"):
        classic_set(kind="test", root=tmp_path)


def test_evaluate_sweeps_a_classic_test_set(compose, tmp_path):
    rng = np.random.default_rng(5)
    for i in range(2):
        save_rgb(tmp_path / "sets" / "Kodak24" / f"kodim{i + 1:02d}.png", smooth_image(rng, 32, 48))
    cfg = compose("evaluate", ["data=testset", "data.name=Kodak24", f"data.root={tmp_path / 'sets'}", "ckpt=identity",
                               "progress=false", "metrics.lpips=null", "sweep.degrader=awgn", "sweep.parameter=sigma",
                               "sweep.values=[25]", "+sweep.options.clip=false"])
    metrics = evaluate(cfg)
    assert metrics["test/images"] == 2 and metrics["input/psnr"] == pytest.approx(20.17, abs=0.4)


def test_pair_folders_with_templates_and_separate_roots(tmp_path):
    rng = np.random.default_rng(6)
    for i in range(3):
        _pair(rng, tmp_path / "HR" / f"{i:04d}.png", tmp_path / "LR" / "X4" / f"{i:04d}x4.png", size=32)
    spec = {"root": str(tmp_path), "clean": "HR", "degraded": "LR/X4", "degraded_name": "{stem}x4"}
    pairs = find_pairs(spec, scale=4)
    assert [(n, c.name, d.name) for n, c, d in pairs][0] == ("0000", "0000.png", "0000x4.png")
    scene = tmp_path / "Data" / "0001_001_S6_00100_00060_3200_L"
    clean = smooth_image(rng, 32, 32)
    save_rgb(scene / "0001_GT_SRGB_010.PNG", clean)
    save_rgb(scene / "0001_NOISY_SRGB_010.PNG", clean)
    sidd_like = {"root": str(tmp_path / "Data"), "clean": ".", "degraded": ".", "clean_match": "GT_",
                 "rename": {"GT_": "NOISY_"}}
    (name, clean_path, noisy_path), = find_pairs(sidd_like)
    assert name.endswith("0001_GT_SRGB_010") and noisy_path.name == "0001_NOISY_SRGB_010.PNG"
    (tmp_path / "LR" / "X4" / "0002x4.png").unlink()
    with pytest.raises(UserInputError, match=r"only in HR/ \(1\): 0002.*0002x4"):
        find_pairs(spec, scale=4)
    with pytest.raises(UserInputError, match="must contain"):
        PairFolder.of({"root": str(tmp_path), "degraded_name": "x4"})
    with pytest.raises(UserInputError, match="unknown key"):
        PairFolder.of({"root": str(tmp_path), "lq": "LR"})


def test_templated_pairs_train_and_evaluate_end_to_end(compose, tmp_path):
    rng = np.random.default_rng(7)
    for split, count in (("train", 4), ("test", 2)):
        for i in range(count):
            clean = smooth_image(rng, 48, 48)
            save_rgb(tmp_path / split / "GT" / f"{i}_GT.png", clean)
            save_rgb(tmp_path / split / "NOISY" / f"{i}_NOISY.png",
                     np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8))

    def spec(split):
        return f"{{root:{tmp_path / split},clean:GT,degraded:NOISY,rename:{{_GT:_NOISY}}}}"

    cfg = compose("evaluate", ["data=folders", f"data.test={spec('test')}", "ckpt=identity", "progress=false",
                               "metrics.lpips=null"])
    metrics = evaluate(cfg)
    assert metrics["test/images"] == 2
    rows = (Path(cfg.paths.output_dir) / "metrics.csv").read_text().splitlines()
    assert rows[1].startswith("0_GT,")
    from degrade_lab.tasks.train import train

    train_cfg = compose("train", ["experiment=dncnn_cpu", "data=folders", f"data.paired={spec('train')}",
                                  f"data.test={spec('test')}", "data.crop_size=32", "trainer.max_steps=2",
                                  "trainer.val_check_interval=2", "logger=csv", "callbacks=none"])
    metrics = train(train_cfg)
    assert (Path(train_cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file() and "val/psnr" in metrics
