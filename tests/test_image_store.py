"""Decoding each training image once (data/image_store.py): every cache mode gives the very crops that decoding
each time gives, the disk store is made once and re-made when a file changes, the automatic choice follows the
memory budget, and unreadable images stop the run naming them or are skipped and counted (data.skip_bad)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import save_rgb, smooth_image
from degrade_lab.data import image_store
from degrade_lab.data.datamodules import folders
from degrade_lab.data.datasets import ImageFolderDataset, PairedCropDataset
from degrade_lab.data.image_store import ImageStore
from degrade_lab.data.samplers import DomainBatchSampler, SampleKey, _seed
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import read_image, write_png


def _folder(root: Path, count: int = 5, size: tuple[int, int] = (40, 56), bits16: bool = False) -> Path:
    rng = np.random.default_rng(1)
    for i in range(count):
        image = smooth_image(rng, *size)
        if bits16:  # a 16-bit PNG with values no 8-bit file could hold
            wide = torch.from_numpy(image).permute(2, 0, 1).float() / 255 + 1 / 65535 * (i + 1)
            write_png(root / f"img{i}.png", wide.clamp(0, 1), bits=16)
        else:
            save_rgb(root / f"img{i}.png", image)
    return root


def _reference_crop(file: Path, size: int, seed: int) -> torch.Tensor:
    """The crop drawn as the datasets draw it, written from read_image (the float image, no store involved):
    top, then left, from a generator seeded by the sample's seed, then one of 8 flips / transposes."""
    image = read_image(file)
    generator = torch.Generator().manual_seed(seed)
    top = int(torch.randint(image.shape[1] - size + 1, (1,), generator=generator))
    left = int(torch.randint(image.shape[2] - size + 1, (1,), generator=generator))
    crop = image[:, top : top + size, left : left + size]
    mode = int(torch.randint(8, (1,), generator=generator))
    if mode & 1:
        crop = crop.flip(-1)
    if mode & 2:
        crop = crop.flip(-2)
    if mode & 4:
        crop = crop.transpose(-1, -2)
    return crop


@pytest.mark.parametrize("bits16", [False, True])
def test_every_mode_gives_the_crops_of_the_decoded_file(tmp_path, bits16):
    root = _folder(tmp_path / "images", bits16=bits16)
    for mode in ("memory", "disk", "off"):
        dataset = ImageFolderDataset(root, 24)
        dataset.store = ImageStore(mode, cache_dir=tmp_path / "store").prepare(dataset.files, progress=False)
        for index, seed in [(0, 11), (3, 12), (4, 99)]:
            crop = dataset[SampleKey(index, seed, 0, 0)]["clean"]
            assert crop.dtype == torch.float32
            assert torch.equal(crop, _reference_crop(dataset.files[index], 24, seed)), (mode, index)
    if bits16:  # the store kept all 16 bits
        assert np.load(next((tmp_path / "store").glob("*.npy"))).dtype == np.uint16


def test_paired_crops_equal_across_modes(tiny_folders, tmp_path):
    crops = {}
    for mode in ("memory", "disk", "off"):
        dataset = PairedCropDataset(tiny_folders / "paired", 16)
        dataset.store = ImageStore(mode, cache_dir=tmp_path / "store").prepare(dataset.image_files(), progress=False)
        crops[mode] = [dataset[SampleKey(i, 7 + i, 0, 0)] for i in range(len(dataset))]
    for mode in ("disk", "off"):
        for a, b in zip(crops["memory"], crops[mode], strict=True):
            assert torch.equal(a["clean"], b["clean"]) and torch.equal(a["degraded"], b["degraded"])
    # and the pair is aligned: the same window of both files (the clean crop is not the degraded one)
    first = crops["off"][0]
    assert not torch.equal(first["clean"], first["degraded"])


def test_the_disk_store_is_made_once_and_remade_when_a_file_changes(tmp_path, monkeypatch):
    root = _folder(tmp_path / "images", count=3)
    files = sorted(root.glob("*.png"))
    store_dir = tmp_path / "store"
    ImageStore("disk", cache_dir=store_dir).prepare(files, progress=False)
    manifest = json.loads((store_dir / "manifest.json").read_text())["images"]
    assert sorted(entry["file"] for entry in manifest.values()) == sorted(str(f.resolve()) for f in files)
    assert {(e["height"], e["width"], e["dtype"]) for e in manifest.values()} == {(40, 56, "uint8")}

    decoded = []
    real = image_store.read_pixels
    monkeypatch.setattr(image_store, "read_pixels", lambda path: decoded.append(Path(path).name) or real(path))
    again = ImageStore("disk", cache_dir=store_dir).prepare(files, progress=False)
    assert decoded == []  # a second run decodes nothing
    assert isinstance(again.pixels(files[0]), np.memmap)
    # a changed file (new content, new modification time) is decoded again
    save_rgb(files[1], smooth_image(np.random.default_rng(9), 40, 56))
    os.utime(files[1], ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    changed = ImageStore("disk", cache_dir=store_dir).prepare(files, progress=False)
    assert decoded == [files[1].name]
    assert np.array_equal(np.asarray(changed.pixels(files[1])),
                          (read_image(files[1]).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_auto_follows_the_memory_budget(tmp_path):
    files = sorted(_folder(tmp_path / "images", count=2).glob("*.png"))
    need = 2 * 40 * 56 * 3
    assert ImageStore("auto", memory_gb=need / 1e9, cache_dir=tmp_path / "s").resolve(files) == "memory"
    assert ImageStore("auto", memory_gb=(need - 1) / 1e9, cache_dir=tmp_path / "s").resolve(files) == "disk"
    assert ImageStore("auto", memory_gb=0, cache_dir=None).resolve(files) == "off"
    # the automatic budget: a quarter of the machine's memory, shared by the processes of one node
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert image_store.memory_budget("auto", processes=2) == int(total / 8)
    with pytest.raises(UserInputError, match="data.cache="):
        ImageStore("ram")
    with pytest.raises(UserInputError, match="cache_gb"):
        ImageStore("auto", memory_gb="lots")


def test_a_full_disk_is_refused_before_writing(tmp_path, monkeypatch):
    files = sorted(_folder(tmp_path / "images", count=2).glob("*.png"))
    monkeypatch.setattr(image_store.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    with pytest.raises(UserInputError, match=r"needs 0\.0 GB .* 0\.0 GB are free"):
        ImageStore("disk", cache_dir=tmp_path / "store").prepare(files, progress=False)
    assert not list((tmp_path / "store").glob("*.npy"))


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not


def test_an_unreadable_image_stops_preparation_naming_it_or_is_skipped(tmp_path):
    root = _folder(tmp_path / "images", count=4)
    _truncate(root / "img2.png")
    dataset = ImageFolderDataset(root, 24)  # the header still reads
    for mode in ("memory", "disk"):
        with pytest.raises(UserInputError, match="img2.png"):
            ImageStore(mode, cache_dir=tmp_path / "store").prepare(dataset.files, progress=False)
    dataset = ImageFolderDataset(root, 24, skip_bad=True)
    store = ImageStore("memory", skip_bad=True).prepare(dataset.files, progress=False)
    assert list(store.bad) == [str(root / "img2.png")]
    dataset.store = store
    item = dataset[SampleKey(2, 5, 0, 0)]  # the bad image's place goes to the next one
    assert "img2.png" in item["bad"]
    assert torch.equal(item["clean"], _reference_crop(root / "img3.png", 24, 5))
    assert dataset[SampleKey(1, 5, 0, 0)]["bad"] == ""


def test_an_image_that_breaks_during_the_run(tmp_path):
    """Decoding on every visit, an image truncated after the start is met in the middle of training: it stops
    the run naming the file, or with skip_bad is skipped and counted in the module's summary."""
    root = _folder(tmp_path / "images", count=3)
    strict = folders(kind="paired", source=root, degrader="awgn", crop_size=16, batch_size=3, batches_per_epoch=4,
                     cache="off", num_workers=0)
    lenient = folders(kind="paired", source=root, degrader="awgn", crop_size=16, batch_size=3, batches_per_epoch=4,
                      cache="off", num_workers=0, skip_bad=True)
    strict_batches, lenient_batches = iter(strict.train_dataloader()), iter(lenient.train_dataloader())
    next(strict_batches), next(lenient_batches)
    _truncate(root / "img1.png")
    with pytest.raises(UserInputError, match="img1.png"):
        for _ in strict_batches:
            pass
    for batch in lenient_batches:
        batch = lenient.on_after_batch_transfer(batch, 0)
        assert "bad" not in batch and batch["clean"].shape == (3, 3, 16, 16)
    summary = lenient.describe_loading()
    assert summary["skipped_images"] == 1 and list(summary["skipped"]) == [str(root / "img1.png")]
    assert summary["cache"]["mode"] == "off"


def test_an_empty_file_at_the_start_is_skipped_with_skip_bad(tmp_path):
    root = _folder(tmp_path / "images", count=3)
    (root / "empty.png").write_bytes(b"")
    with pytest.raises(UserInputError, match="empty.png.*0 bytes"):
        folders(kind="paired", source=root, degrader="awgn", crop_size=16)
    module = folders(kind="paired", source=root, degrader="awgn", crop_size=16, skip_bad=True)
    assert module.describe_loading()["skipped_images"] == 1
    assert module.train_sizes == [3]


def test_several_crops_per_image(tiny_folders):
    one = DomainBatchSampler([10], 6, seed=3, crops_per_image=1).batch(0, 0)
    # one crop per image: what the sampler always drew (6 images without replacement), unchanged
    generator = torch.Generator().manual_seed(_seed(3, 0, 0, 0))
    torch.multinomial(torch.ones(1, dtype=torch.float64), 1, generator=generator)  # the domain's draw
    assert [key.index for key in one] == torch.randperm(10, generator=generator)[:6].tolist()
    three = DomainBatchSampler([10], 6, seed=3, crops_per_image=3).batch(0, 0)
    indices = [key.index for key in three]
    assert indices[0] == indices[1] == indices[2] and indices[3] == indices[4] == indices[5] != indices[0]
    assert len({key.seed for key in three}) == 6  # each crop its own window
    odd = DomainBatchSampler([10], 5, seed=3, crops_per_image=2).batch(0, 0)
    assert [k.index for k in odd][:4:2] == [k.index for k in odd][1:4:2] and len(odd) == 5
    with pytest.raises(UserInputError, match="crops_per_image"):
        folders(kind="paired", source=tiny_folders / "source", degrader="awgn", crops_per_image=0)


def test_loader_workers_auto_on_the_cpu(tiny_folders):
    cached = folders(kind="paired", paired=tiny_folders / "paired", crop_size=16, num_workers="auto")
    cached.setup("fit")
    assert cached.store.mode == "memory" and cached._workers() == 0
    off = folders(kind="paired", paired=tiny_folders / "paired", crop_size=16, num_workers="auto", cache="off")
    off.setup("fit")
    assert off._workers() == (len(os.sched_getaffinity(0)) // 4)
    assert folders(kind="paired", paired=tiny_folders / "paired", crop_size=16, num_workers=3)._workers() == 3
    with pytest.raises(UserInputError, match="num_workers"):
        folders(kind="paired", paired=tiny_folders / "paired", crop_size=16, num_workers="many")

