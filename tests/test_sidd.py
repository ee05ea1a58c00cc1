"""SIDD read as its authors ship it, on a miniature copy of the real layout written here: the same folder and
file names, extensions, .mat keys and dtypes (MATLAB v5 as SIDD ships its blocks, and v7.3 / HDF5 as some
mirrors re-save them), fewer and smaller images and blocks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import save_rgb, smooth_image
from degrade_lab.data.sidd import find_sidd, sidd, write_submission
from degrade_lab.errors import UserInputError
from degrade_lab.utils.matfile import is_v73, mat_shape, read_mat

SCENES = ["0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00060_3200_N", "0003_002_GP_00800_00350_5500_N",
          "0004_003_IP_01600_01000_3200_H", "0005_004_N6_03200_00160_4400_L", "0006_005_G4_00400_00100_5500_H"]
BLOCKS = (2, 4, 32, 32, 3)  # SIDD ships 40 images x 32 blocks x 256 x 256 x 3


def _noisy(rng, clean):
    return np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)


def write_sidd(root, small=True, medium=True, validation=True, benchmark=True, v73=False):
    """SIDD_Small_sRGB_Only/Data/<scene>/{GT,NOISY}_SRGB_010.PNG, SIDD_Medium_Srgb/Data/<scene>/NNNN_{GT,NOISY}_SRGB_01{0,1}.PNG,
    the validation and benchmark .mat files; returns the blocks written."""
    rng = np.random.default_rng(0)
    for scene in SCENES:
        if small:
            clean = smooth_image(rng, 48, 64)
            save_rgb(root / "SIDD_Small_sRGB_Only" / "Data" / scene / "GT_SRGB_010.PNG", clean)
            save_rgb(root / "SIDD_Small_sRGB_Only" / "Data" / scene / "NOISY_SRGB_010.PNG", _noisy(rng, clean))
        if medium:
            for shot in ("010", "011"):
                clean = smooth_image(rng, 48, 64)
                folder = root / "SIDD_Medium_Srgb" / "Data" / scene
                save_rgb(folder / f"{scene[:4]}_GT_SRGB_{shot}.PNG", clean)
                save_rgb(folder / f"{scene[:4]}_NOISY_SRGB_{shot}.PNG", _noisy(rng, clean))
    gt = rng.integers(0, 256, BLOCKS, dtype=np.uint8)
    noisy = rng.integers(0, 256, BLOCKS, dtype=np.uint8)
    arrays = {"ValidationGtBlocksSrgb": gt, "ValidationNoisyBlocksSrgb": noisy}
    if benchmark:
        arrays["BenchmarkNoisyBlocksSrgb"] = rng.integers(0, 256, BLOCKS, dtype=np.uint8)
    if not validation:
        arrays = {k: v for k, v in arrays.items() if k.startswith("Benchmark")}
    folder = root / "validation" / "mat"
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        write_mat(folder / f"{key}.mat", key, array, v73)
    return gt, noisy


def write_mat(path, key, array, v73=False):
    if not v73:
        from scipy.io import savemat

        savemat(path, {key: array})
        return
    import h5py

    # MATLAB's v7.3: a 512-byte header block, then HDF5 holding the column-major array (axes reversed)
    with h5py.File(path, "w", userblock_size=512) as file:
        file.create_dataset(key, data=np.ascontiguousarray(array.transpose()))
    with open(path, "r+b") as file:
        file.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


def test_finds_every_part_wherever_it_was_unpacked(tmp_path):
    write_sidd(tmp_path / "downloads")
    layout = find_sidd(tmp_path)  # the parent of everything
    assert len(layout.small) == len(SCENES) and len(layout.medium) == 2 * len(SCENES)
    assert layout.training_pairs("auto") == layout.medium  # Medium holds Small's scenes twice over
    name, clean, noisy = layout.small[0]
    assert name == f"{SCENES[0]}/010" and clean.name == "GT_SRGB_010.PNG" and noisy.name == "NOISY_SRGB_010.PNG"
    assert {n for n, _, _ in layout.medium} == {f"{s}/{k}" for s in SCENES for k in ("010", "011")}
    assert all(n.name.startswith(s.split("/")[0][:4] + "_NOISY") for s, _, n in layout.medium)
    assert set(layout.validation) == {"clean", "degraded"} and layout.benchmark.name == "BenchmarkNoisyBlocksSrgb.mat"


@pytest.mark.parametrize("v73", [False, True], ids=["matlab-v5", "matlab-v7.3"])
def test_validation_blocks_are_the_arrays_in_the_files(tmp_path, v73):
    gt, noisy = write_sidd(tmp_path, v73=v73)
    assert is_v73(tmp_path / "validation" / "mat" / "ValidationGtBlocksSrgb.mat") == v73
    blocks = find_sidd(tmp_path).validation_blocks()
    assert len(blocks) == BLOCKS[0] * BLOCKS[1]
    item = blocks[5]  # image 2, block 2 (MATLAB counts from 1)
    assert item["name"] == "0002_02"
    expected = torch.from_numpy(gt[1, 1]).permute(2, 0, 1).float() / 255
    assert torch.equal(item["clean"], expected) and item["clean"].shape == (3, 32, 32)
    assert torch.equal(item["degraded"], torch.from_numpy(noisy[1, 1]).permute(2, 0, 1).float() / 255)
    spread = find_sidd(tmp_path).validation_blocks(count=3, crop=16)
    assert [spread[i]["name"] for i in range(3)] == ["0001_01", "0001_03", "0002_02"]
    assert spread[2]["clean"].shape == (3, 16, 16)
    assert torch.equal(spread[2]["clean"], expected[:, 8:24, 8:24])


def test_mat_reader_reads_both_formats_in_matlab_axis_order(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    write_mat(tmp_path / "a.mat", "x", array)
    write_mat(tmp_path / "b.mat", "x", array, v73=True)
    for name in ("a.mat", "b.mat"):
        assert mat_shape(tmp_path / name, "x") == (2, 3, 4)
        assert np.array_equal(read_mat(tmp_path / name, "x"), array)
        with pytest.raises(UserInputError, match=r"has no 'y' \(it holds: x\)"):
            read_mat(tmp_path / name, "y")


def test_broken_layouts_stop_naming_what_was_expected_and_found(tmp_path):
    write_sidd(tmp_path, medium=False)
    with pytest.raises(UserInputError, match="no SIDD-Medium sRGB training pairs.*Found: 6 SIDD-Small pairs"):
        find_sidd(tmp_path).training_pairs("medium")
    (tmp_path / "SIDD_Small_sRGB_Only" / "Data" / SCENES[2] / "NOISY_SRGB_010.PNG").unlink()
    with pytest.raises(UserInputError, match=f"'.*{SCENES[2]}/GT_SRGB_010.PNG' has no noisy image"):
        find_sidd(tmp_path)
    only_blocks = tmp_path / "blocks_only"
    write_sidd(only_blocks, small=False, medium=False, validation=False)
    with pytest.raises(UserInputError, match="no ValidationGtBlocksSrgb.mat and ValidationNoisyBlocksSrgb.mat"):
        find_sidd(only_blocks).validation_blocks()
    with pytest.raises(UserInputError, match="training pairs under data.root"):
        find_sidd(only_blocks).training_pairs()
    with pytest.raises(UserInputError, match="is not a folder"):
        find_sidd(tmp_path / "nowhere")
    wrong = tmp_path / "wrong"
    write_sidd(wrong, small=False, medium=False)
    write_mat(wrong / "validation" / "mat" / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb",
              np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(UserInputError, match=r"has shape \(4, 32, 32, 3\), expected images x blocks"):
        find_sidd(wrong).validation_blocks()


def test_data_modules_for_each_kind_of_model(tmp_path):
    write_sidd(tmp_path)
    small = find_sidd(tmp_path).small
    restorer = sidd("paired", str(tmp_path), train="small", val_blocks=3, crop_size=32)
    assert len(restorer.train_set) == len(SCENES) and len(restorer.test_set) == 8 and len(restorer.val_set) == 3
    few = sidd("paired", str(tmp_path), train="small", num_paired=2, crop_size=32)
    assert len(few.train_set) == 2 and few.split_record is not None
    unpaired = sidd("unpaired", str(tmp_path), train="small", test=None, crop_size=32)
    clean, degraded = unpaired.domain_files()
    assert clean == [c for _, c, _ in small] and degraded == [n for _, _, n in small]
    assert unpaired.unpaired_validation  # no pairs to validate on
    semi = sidd("semi", str(tmp_path), train="medium", num_paired=4, crop_size=32)
    assert semi.train_sizes == [4, 4, 4]  # 12 Medium pairs: 4 paired, 4 clean-only, 4 noisy-only
    fewer = sidd("semi", str(tmp_path), train="medium", num_paired=4, num_unpaired=3, crop_size=32)
    assert fewer.train_sizes == [4, 3, 3] and set(fewer.split_record["paired"]) == set(semi.split_record["paired"])
    # a prepared folder of crops in place of the shipped images; the test stays the validation blocks
    prepared = tmp_path / "crops"
    for i, (_, clean, noisy) in enumerate(small):
        (prepared / "clean").mkdir(parents=True, exist_ok=True)
        (prepared / "degraded").mkdir(exist_ok=True)
        shutil.copy(clean, prepared / "clean" / f"c{i}.png")
        shutil.copy(noisy, prepared / "degraded" / f"c{i}.png")
    crops = sidd("semi", str(tmp_path), pairs_from=str(prepared), num_paired=2, crop_size=32)
    assert crops.train_sizes[0] == 2 and sum(crops.train_sizes) == len(small)
    assert set(crops.split_record["paired"]) <= {f"c{i}" for i in range(len(small))} and len(crops.test_set) == 8
    assert len(sidd("test", str(tmp_path))) == 8
    synthetic = sidd("paired", str(tmp_path), train="small", degrader="awgn", crop_size=32)
    batch = synthetic.train_set[(0, 0)]
    assert set(batch) >= {"clean", "domain"} and "degraded" not in batch  # degraded on the fly
    with pytest.raises(UserInputError, match="denoising set"):
        sidd("paired", str(tmp_path), scale=4)


def test_submission_file_holds_the_blocks_matlab_expects(tmp_path):
    from scipy.io import loadmat

    denoised = torch.rand(2, 4, 3, 32, 32)
    path = write_submission(tmp_path / "SubmitSrgb.mat", denoised, 0.25, method="DnCNN")
    saved = loadmat(path)
    cells = saved["DenoisedBlocksSrgb"]
    assert cells.shape == (2, 4) and cells.dtype == object
    block = cells[1, 2]
    assert block.dtype == np.uint8 and block.shape == (32, 32, 3)
    expected = (denoised[1, 2].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(block, expected)
    assert saved["TimeMPSrgb"].item() == 0.25 and saved["OptionalData"]["MethodName"][0, 0][0] == "DnCNN"


def test_train_and_evaluate_on_sidd_end_to_end(compose, tmp_path):
    """A restorer trained and scored on data=sidd (the validation blocks as test pairs), a degrader judged on them,
    and LUD-VAE trained on SIDD's two unpaired sides: automatic pre-noise and calibration read SIDD's images."""
    import json
    from pathlib import Path

    from degrade_lab.tasks.evaluate import evaluate
    from degrade_lab.tasks.train import train

    write_sidd(tmp_path / "SIDD")
    sidd_data = ["data=sidd", f"data.root={tmp_path / 'SIDD'}", "data.train=small", "data.crop_size=16",
                 "data.batch_size=4", "data.num_workers=0", "data.val_blocks=2", "callbacks.progress.refresh_rate=0",
                 "hardware=cpu", "logger=csv"]
    cfg = compose("train", ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", *sidd_data,
                            "trainer.max_steps=2", "trainer.val_check_interval=2"])
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    scored = evaluate(compose("evaluate", [f"ckpt={ckpt}", *sidd_data[:2], "metrics.lpips=null"]))
    assert scored["test/images"] == 8  # every validation block
    identity = evaluate(compose("evaluate", ["ckpt=identity", *sidd_data[:2], "metrics.lpips=null"]))
    blocks = find_sidd(tmp_path / "SIDD").validation_blocks()
    mse = [torch.mean((blocks[i]["clean"] - blocks[i]["degraded"]) ** 2) for i in range(len(blocks))]
    assert identity["input/psnr"] == pytest.approx(float(np.mean([-10 * np.log10(m) for m in mse])), abs=1e-3)
    judged = evaluate(compose("evaluate", ["degrader=awgn", *sidd_data[:2], "metrics.fid=false", "metrics.lpips=null"]))
    assert "degradation/kld" in judged
    # no ground truth: the benchmark blocks (and DND's crops) restored into the benchmarks' submission files
    from scipy.io import loadmat

    from degrade_lab.utils.checkpoint import load_model
    from test_dnd import write_dnd

    model = load_model(ckpt)[0].eval()
    submitted = evaluate(compose("evaluate", [f"ckpt={ckpt}", *sidd_data[:2], "data.test=benchmark", "progress=false"]))
    cells = loadmat(submitted["submission"])["DenoisedBlocksSrgb"]
    noisy = find_sidd(tmp_path / "SIDD").benchmark_blocks()[5]  # image 2, block 2 of 2 x 4
    with torch.inference_mode():
        expected = model(noisy["degraded"][None])[0].clamp(0, 1).mul(255).round().permute(1, 2, 0).numpy()
    assert noisy["name"] == "0002_02" and np.abs(cells[1, 1].astype(float) - expected).max() <= 1
    photos, boxes = write_dnd(tmp_path / "DND")
    bundle = evaluate(compose("evaluate", [f"ckpt={ckpt}", "data=dnd", f"data.root={tmp_path / 'DND'}",
                                           "progress=false"]))
    assert sorted(p.name for p in Path(bundle["submission"]).iterdir()) == ["0001.mat", "0002.mat"]
    top, left, bottom, right = boxes[1, 2]
    crop = torch.from_numpy(photos[1][top - 1 : bottom, left - 1 : right]).permute(2, 0, 1)
    with torch.inference_mode():
        expected = model(crop[None])[0].clamp(0, 1).permute(1, 2, 0).numpy()
    saved = loadmat(Path(bundle["submission"]) / "0002.mat")
    assert np.abs(saved["Idenoised"][0, 2] - expected).max() < 1e-5 and not saved["israw"].item()
    with pytest.raises(UserInputError, match="no ground truth"):
        evaluate(compose("evaluate", ["ckpt=identity", "data=dnd", f"data.root={tmp_path / 'DND'}"]))
    ludvae = ["experiment=ludvae_cpu", "model.net.channels=8", "model.net.latent_channels=4", "model.net.levels=2",
              "model.kl_anneal_steps=2", "trainer.max_steps=2", "trainer.val_check_interval=2", "data.test=null",
              "model.noise_level_clean=auto", "model.noise_level_degraded=auto", *sidd_data]
    cfg = compose("train", ludvae)
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert json.loads((run / "noise_estimate.json").read_text())["images"] == len(SCENES)  # the noisy side
    calibrated = json.loads((run / "calibration.json").read_text())["last"]
    assert calibrated["source"].startswith(f"{len(SCENES)} images under ")
    assert calibrated["target"].startswith(f"{len(SCENES)} images under ")
