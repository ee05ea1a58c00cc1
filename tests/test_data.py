"""Image reading, folder checks, pairing, alignment under augmentation, sampling balance, splits."""

import json

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import save_rgb, smooth_image
from degrade_lab.data import domains as D
from degrade_lab.data.datamodules import (
    PairedDataModule,
    SemiSupervisedDataModule,
    UnpairedDataModule,
    folders,
)
from degrade_lab.data.datasets import ImageFolderDataset, PairedCropDataset, PairedImageDataset, find_pairs
from degrade_lab.data.samplers import DomainBatchSampler
from degrade_lab.data.splits import semi_supervised_split
from degrade_lab.data.transforms import augment, random_crop_pair
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import list_images, read_image


def test_read_image_formats(tmp_path):
    rgb = (np.arange(12 * 10 * 3) % 256).astype(np.uint8).reshape(12, 10, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full((12, 10), 7, np.uint8)])).save(tmp_path / "rgba.png")
    grey16 = (np.arange(120, dtype=np.uint16).reshape(12, 10) * 500)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    tifffile.imwrite(tmp_path / "rgb16.tif", (rgb.astype(np.uint16) * 257))

    expected = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    assert torch.allclose(read_image(tmp_path / "a.png"), expected)
    assert torch.allclose(read_image(tmp_path / "a.bmp"), expected)
    assert torch.allclose(read_image(tmp_path / "rgba.png"), expected)
    assert torch.allclose(read_image(tmp_path / "rgb16.tif"), expected, atol=1e-6)
    grey = read_image(tmp_path / "grey.png")
    assert grey.shape == (3, 12, 10) and torch.equal(grey[0], grey[2])
    g16 = read_image(tmp_path / "grey16.png")
    assert g16.dtype == torch.float32 and abs(float(g16[0, -1, -1]) - 119 * 500 / 65535) < 1e-5
    # a dark 16-bit image (every value < 256) is still 16-bit: no guessing from the values
    Image.fromarray(np.full((4, 4), 200, np.uint16)).save(tmp_path / "dark16.png")
    assert float(read_image(tmp_path / "dark16.png").max()) == pytest.approx(200 / 65535)


def test_unreadable_and_empty_files_are_named(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(UserInputError, match="empty.png.*empty file"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(UserInputError, match="broken.jpg.*cannot be read"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(UserInputError, match="cannot be read"):
        ImageFolderDataset(tmp_path, 8)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(UserInputError, match="holds no images"):
        list_images(tmp_path / "empty")


def test_images_smaller_than_the_crop(tiny_folders):
    with pytest.raises(UserInputError, match=r"s0.png' is 48x48, smaller than the 64x64 crop"):
        ImageFolderDataset(tiny_folders / "source", 64)


def test_unmatched_stems_and_size_mismatch(tmp_path):
    rng = np.random.default_rng(0)
    save_rgb(tmp_path / "p" / "clean" / "a.png", smooth_image(rng, 32, 32))
    save_rgb(tmp_path / "p" / "degraded" / "b.png", smooth_image(rng, 32, 32))
    with pytest.raises(UserInputError, match="only in clean/.*a"):
        find_pairs(tmp_path / "p")
    save_rgb(tmp_path / "q" / "clean" / "a.png", smooth_image(rng, 32, 32))
    save_rgb(tmp_path / "q" / "degraded" / "a.png", smooth_image(rng, 24, 32))
    with pytest.raises(UserInputError, match="pair 'a'.*32x32.*24x32"):
        find_pairs(tmp_path / "q")
    # x4 SR pairs must be 4x smaller on the degraded side
    save_rgb(tmp_path / "r" / "clean" / "a.png", smooth_image(rng, 32, 32))
    save_rgb(tmp_path / "r" / "degraded" / "a.png", smooth_image(rng, 8, 8))
    assert len(find_pairs(tmp_path / "r", scale=4)) == 1
    with pytest.raises(UserInputError, match="scale 2"):
        find_pairs(tmp_path / "r", scale=2)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_pairs_stay_aligned_under_crop_and_augmentation(scale):
    torch.manual_seed(0)
    clean = torch.rand(3, 64, 48)
    degraded = F.avg_pool2d(clean[None], scale)[0] if scale > 1 else clean.clone()
    for _ in range(20):
        hr, lr = random_crop_pair(clean, degraded, 16, scale)
        mode = int(torch.randint(8, (1,)))
        hr, lr = augment([hr, lr], mode)
        expected = F.avg_pool2d(hr[None], scale)[0] if scale > 1 else hr
        assert hr.shape[-1] == 16 and lr.shape[-1] == 16 // scale
        assert torch.allclose(expected, lr, atol=1e-6)


def test_augment_has_eight_distinct_modes():
    image = torch.arange(9.0).view(1, 3, 3)
    outs = {tuple(augment([image], m)[0].flatten().tolist()) for m in range(8)}
    assert len(outs) == 8


def test_domain_batches_are_single_domain_and_balanced():
    sampler = DomainBatchSampler([10, 30], batch_size=4, batches_per_epoch=2000, seed=0)
    counts = [0, 0]
    for batch in sampler:
        domains = {0 if key.index < 10 else 1 for key in batch}
        assert len(domains) == 1 and len({key.index for key in batch}) == 4
        counts[domains.pop()] += 1
    assert abs(counts[0] / 2000 - 0.5) < 0.04  # equal probability despite 10 vs 30 images
    weighted = DomainBatchSampler([10, 30], batch_size=4, weights=[3, 1], batches_per_epoch=2000, seed=0)
    share = sum(1 for batch in weighted if batch[0].index < 10) / 2000
    assert abs(share - 0.75) < 0.04
    # same seed, same batches; next epoch differs
    again = DomainBatchSampler([10, 30], batch_size=4, batches_per_epoch=5, seed=0)
    assert list(again) != list(again)
    assert list(DomainBatchSampler([10, 30], 4, batches_per_epoch=5, seed=0)) == list(
        DomainBatchSampler([10, 30], 4, batches_per_epoch=5, seed=0)
    )


def test_a_sampler_resumes_at_any_batch_of_any_epoch():
    """Three epochs in one go equal any split of them into (epoch, start_batch) restarts."""
    whole = DomainBatchSampler([5, 7], 3, batches_per_epoch=4, seed=2)
    stream = [batch for _ in range(3) for batch in whole]
    assert [(b[0].epoch, b[0].batch) for b in stream] == [(e, i) for e in range(3) for i in range(4)]
    for cut in (1, 4, 6, 11):
        epoch, start = divmod(cut, 4)
        resumed = DomainBatchSampler([5, 7], 3, batches_per_epoch=4, seed=2, epoch=epoch, start_batch=start)
        tail = list(resumed) + list(resumed) + list(resumed)
        assert tail[: len(stream) - cut] == stream[cut:]
    seeds = {key.seed for batch in stream for key in batch}
    assert len(seeds) == 3 * 4 * 3  # every sample its own crop seed


def test_crops_do_not_depend_on_workers_or_the_global_stream(tiny_folders):
    def batches(workers):
        dm = folders(kind="paired", paired=tiny_folders / "paired", crop_size=16, batch_size=2,
                     batches_per_epoch=3, num_workers=workers, seed=5)
        torch.manual_seed(workers)  # a different global stream each time
        return [batch["clean"] for batch in dm.train_dataloader()]

    first, again, workers = batches(0), batches(0), batches(2)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(first, again, workers, strict=True))


def test_unpaired_datamodule_tags_domains(tiny_folders):
    dm = folders(kind="unpaired", source=tiny_folders / "source", target=tiny_folders / "target",
                 crop_size=16, batch_size=2, batches_per_epoch=40, num_workers=0)
    assert isinstance(dm, UnpairedDataModule)
    seen = set()
    for batch in dm.train_dataloader():
        domain = int(batch["domain"][0])
        assert torch.all(batch["domain"] == domain)
        assert ("clean" in batch) == (domain == D.SOURCE) and ("degraded" in batch) == (domain == D.TARGET)
        seen.add(domain)
    assert seen == {D.SOURCE, D.TARGET}


def test_semi_datamodule_draws_three_domains(tiny_folders):
    dm = folders(kind="semi", paired=tiny_folders / "paired", source=tiny_folders / "source",
                 target=tiny_folders / "target", crop_size=16, batch_size=2, batches_per_epoch=60)
    assert isinstance(dm, SemiSupervisedDataModule)
    seen = {int(b["domain"][0]) for b in dm.train_dataloader()}
    assert seen == {D.PAIRED, D.SOURCE, D.TARGET}
    with pytest.raises(UserInputError, match="data.paired"):
        folders(kind="semi", source=tiny_folders / "source", target=tiny_folders / "target")


def test_on_the_fly_pairs_from_a_degrader(tiny_folders):
    dm = folders(kind="paired", source=tiny_folders / "source", degrader="awgn", crop_size=16, batch_size=3,
                 batches_per_epoch=2)
    assert isinstance(dm, PairedDataModule)
    batch = next(iter(dm.train_dataloader()))
    assert "degraded" not in batch
    batch = dm.on_after_batch_transfer(batch, 0)
    assert batch["degraded"].shape == batch["clean"].shape
    assert float((batch["degraded"] - batch["clean"]).abs().mean()) > 0.01
    assert torch.all(batch["domain"] == D.PAIRED)
    with pytest.raises(UserInputError, match="data.paired=DIR"):
        folders(kind="paired", source=tiny_folders / "source")
    with pytest.raises(UserInputError, match="scale 4 but data.scale is 1"):
        folders(kind="paired", source=tiny_folders / "source", degrader="bicubic", crop_size=16)


def test_workers_are_seeded_reproducibly(tiny_folders):
    import pytorch_lightning as pl

    def first_batch():
        pl.seed_everything(3, workers=True)
        dm = folders(kind="paired", paired=tiny_folders / "paired", crop_size=16, batch_size=4, num_workers=2,
                     batches_per_epoch=3, seed=3)
        return next(iter(dm.train_dataloader()))["clean"]

    assert torch.equal(first_batch(), first_batch())


def test_test_pairs_crop_sizes_not_divisible_by_scale(tmp_path):
    rng = np.random.default_rng(0)
    save_rgb(tmp_path / "t" / "clean" / "odd.png", smooth_image(rng, 34, 33))
    save_rgb(tmp_path / "t" / "degraded" / "odd.png", smooth_image(rng, 8, 8))
    with pytest.warns(UserWarning, match="odd.png"):
        dataset = PairedImageDataset(tmp_path / "t", scale=4)
    assert dataset[0]["clean"].shape == (3, 32, 32)


def test_paired_crop_dataset_rejects_crop_not_divisible_by_scale(tiny_folders):
    with pytest.raises(UserInputError, match="not divisible"):
        PairedCropDataset(tiny_folders / "paired", 30, scale=4)


def test_semi_supervised_split_is_disjoint_and_seeded(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        image = smooth_image(rng, 16, 16)
        save_rgb(tmp_path / "all" / "clean" / f"x{i:02d}.png", image)
        save_rgb(tmp_path / "all" / "degraded" / f"x{i:02d}.png", image)
    split = semi_supervised_split(tmp_path / "all", tmp_path / "split", num_pairs=2, seed=1)
    assert len(split["paired"]) == 2 and len(split["source"]) == 5 and len(split["target"]) == 5
    groups = [set(split[k]) for k in ("paired", "source", "target")]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert len(list((tmp_path / "split" / "source").iterdir())) == 5
    assert len(find_pairs(tmp_path / "split" / "paired")) == 2
    again = semi_supervised_split(tmp_path / "all", tmp_path / "split2", num_pairs=2, seed=1)
    assert again == {**split, "from": again["from"]}
    other = semi_supervised_split(tmp_path / "all", tmp_path / "split3", num_pairs=2, seed=2)
    assert other["source"] != split["source"]
    assert json.loads((tmp_path / "split" / "split.json").read_text())["seed"] == 1


def test_builtin_manifest_detects_corruption(tmp_path):
    import shutil

    from degrade_lab.data.builtin import ensure_builtin

    built = ensure_builtin("builtin")  # the session's cached copy
    manifest = json.loads((built / "manifest.json").read_text())
    assert len(manifest["files"]) == 12 + 7 + 2 * 12 + 2 * 7
    copy = tmp_path / "builtin"
    shutil.copytree(built, copy)
    assert ensure_builtin("builtin", tmp_path, verify=True) == copy
    victim = copy / "test" / "degraded" / "coffee_00.png"
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RuntimeError, match="corrupted"):
        ensure_builtin("builtin", tmp_path, verify=True)


def _residual_std_by_brightness(folder):
    """Std (0-255) of degraded - clean over the darkest and the brightest third of the clean pixels."""
    from degrade_lab.utils.io import read_image

    clean = torch.cat([read_image(p).flatten(1) for p in sorted((folder / "clean").glob("*.png"))], 1)
    degraded = torch.cat([read_image(p).flatten(1) for p in sorted((folder / "degraded").glob("*.png"))], 1)
    luma, residual = clean.mean(0), (degraded - clean) * 255
    low, high = luma.quantile(1 / 3), luma.quantile(2 / 3)
    return float(residual[:, luma < low].std()), float(residual[:, luma > high].std())


def test_the_second_builtin_degradation_differs_in_kind():
    from degrade_lab.data.builtin import SPLITS, SPLITS_PHONE, ensure_builtin

    camera, phone = ensure_builtin("builtin"), ensure_builtin("builtin_phone")
    manifest = json.loads((phone / "manifest.json").read_text())
    assert manifest["degradation"] == "phone" and manifest["splits"] == SPLITS_PHONE
    # its own split: no photo stays in the same role, and no split shares a photo with another
    for role in ("test", "source", "target"):
        assert not set(SPLITS[role]) & set(SPLITS_PHONE[role])
        assert not set(SPLITS_PHONE[role]) & {p for r, names in SPLITS_PHONE.items() if r != role for p in names}
    assert {p.stem.rsplit("_", 1)[0] for p in (phone / "test" / "clean").glob("*.png")} == set(SPLITS_PHONE["test"])
    # read noise through the tone curve: the shadows are the noisiest (sRGB slope ~ x^-0.58 on flat raw noise),
    # while the camera's shot noise (raw variance ~ x) comes out nearly flat in intensity
    camera_dark, camera_bright = _residual_std_by_brightness(camera / "test")
    phone_dark, phone_bright = _residual_std_by_brightness(phone / "test")
    assert phone_dark > 1.4 * phone_bright
    assert 0.85 < camera_dark / camera_bright < 1.15
    # SeNM-VAE's layout on it: 19 training tiles cut in 4 = 76 pairs (all/), 10 of them paired/, the other 66
    # halved into clean-only and degraded-only tiles, and the 7 test pairs
    semi = json.loads((ensure_builtin("builtin_phone_semi") / "manifest.json").read_text())
    assert semi["degradation"] == "phone" and len(semi["files"]) == 2 * 76 + 2 * 10 + 66 + 2 * 7


def test_ddp_ranks_share_each_steps_domain_but_not_its_images(monkeypatch):
    """Under DDP every rank draws the same domain at a step (so one step uses the same parameters everywhere, as
    DDP's gradient reduction needs) and its own images; rank 0 draws exactly what a single process draws."""
    from degrade_lab.data import samplers

    sampler = samplers.DomainBatchSampler([50, 50, 50], batch_size=4, seed=3)
    single = [sampler.batch(0, i) for i in range(40)]
    monkeypatch.setattr(samplers, "_rank_and_world", lambda: (0, 2))
    assert [sampler.batch(0, i) for i in range(40)] == single
    monkeypatch.setattr(samplers, "_rank_and_world", lambda: (1, 2))
    other = [sampler.batch(0, i) for i in range(40)]
    domain = lambda batch: batch[0].index // 50  # noqa: E731
    assert [domain(b) for b in other] == [domain(b) for b in single]
    assert len({domain(b) for b in single}) == 3  # the draw does vary between steps
    assert sum(a != b for a, b in zip(other, single, strict=True)) > 35
