"""Datasets over image folders: one domain of random crops, aligned paired crops, full test pairs.

Every constructor checks its files up front (headers only), so a bad image stops the run before
training with an error naming the file, not minutes later in a worker.
"""

from __future__ import annotations

import bisect
import warnings
from pathlib import Path

import torch
from torch.utils.data import Dataset

from degrade_lab.data.pairing import find_pairs
from degrade_lab.data.transforms import (
    center_crop,
    center_offset,
    crop_offsets,
    random_augment,
    random_crop_pair,
)
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import (
    image_size,
    list_images,
    pixels_to_tensor,
    read_image,
    read_pixels,
    relative_stems,
)


def split_key(key) -> tuple[int, torch.Generator | None]:
    """A training dataset's key: a plain index (crops from the global random stream), or a
    :class:`~degrade_lab.data.samplers.SampleKey` ``(index, seed, ...)``, whose crop and augmentation then
    come from a generator of their own: the same sample in every run, with any number of workers."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), torch.Generator().manual_seed(int(key[1]))
    return int(key), None


class ConcatCrops(Dataset):
    """Several crop datasets as one (several folders of one domain); passes sample keys through."""

    def __init__(self, datasets: list[Dataset]):
        self.datasets = list(datasets)
        self.ends = []
        for dataset in self.datasets:
            self.ends.append((self.ends[-1] if self.ends else 0) + len(dataset))

    def __len__(self):
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, key):
        index = int(key[0]) if isinstance(key, (tuple, list)) else int(key)
        part = bisect.bisect_right(self.ends, index)
        local = index - (self.ends[part - 1] if part else 0)
        return self.datasets[part][(local, *key[1:]) if isinstance(key, (tuple, list)) else local]


def _check_min_size(files: list[Path], size: int, what: str, skipped: dict[str, str] | None = None) -> list[Path]:
    """The files at least ``size`` pixels on each side; an unreadable one stops the run naming it, or with
    ``skipped`` (a dict: ``data.skip_bad=true``) is recorded there and left out."""
    kept = []
    for file in files:
        try:
            height, width = image_size(file)
        except UserInputError as err:
            if skipped is None:
                raise
            skipped[str(file)] = str(err)
            warnings.warn(f"skipped (data.skip_bad=true): {err}", stacklevel=3)
            continue
        if height < size or width < size:
            raise UserInputError(
                f"{what} image '{file}' is {height}x{width}, smaller than the {size}x{size} crop; "
                "lower the crop size (data.crop_size) or remove the image."
            )
        kept.append(file)
    if not kept:
        raise UserInputError(f"every {what} image is unreadable: {next(iter(skipped.values()), '')}")
    return kept


class _CropDataset(Dataset):
    """What the training crop datasets share: decoded pixels from an
    :class:`~degrade_lab.data.image_store.ImageStore` when the data module gives one (``store``; otherwise each
    visit decodes), one sample per ``make(index, generator)`` (each dataset's own), and ``skip_bad``: an image that turns out unreadable during the run (truncated, corrupt,
    deleted) is replaced by the next one of the dataset and named in the item's ``bad`` field, which the data
    module counts; without it the run stops naming the file."""

    store = None
    skip_bad = False

    def pixels(self, path: Path):
        """``H x W x 3`` decoded pixels of ``path`` (the store's, or decoded now)."""
        return self.store.pixels(path) if self.store is not None else read_pixels(path)

    def __getitem__(self, key):
        index, generator = split_key(key)
        bad: list[str] = []
        for attempt in range(len(self)):
            try:
                item = self.make((index + attempt) % len(self), generator)
            except UserInputError as err:
                if not self.skip_bad:
                    raise
                bad.append(str(err))
                continue
            if self.skip_bad:
                item["bad"] = "\n".join(bad)
            return item
        raise UserInputError(f"every image of this training set is unreadable; the last: {bad[-1]}")


class ImageFolderDataset(_CropDataset):
    """Random (augmented) crops from one folder of unpaired images (or the given ``files``): ``{key: crop}``."""

    def __init__(self, root: str | Path | None, crop_size: int, key: str = "clean", augment: bool = True,
                 what: str = "image", files: list[Path] | None = None, skip_bad: bool = False):
        files = list(files) if files is not None else list_images(root, f"{what} folder")
        self.skipped: dict[str, str] = {}
        self.skip_bad = bool(skip_bad)
        self.files = _check_min_size(files, crop_size, what, self.skipped if skip_bad else None)
        self.crop_size, self.key, self.augment = crop_size, key, augment

    def __len__(self):
        return len(self.files)

    def image_files(self) -> list[Path]:
        return list(self.files)

    def make(self, index: int, generator) -> dict:
        file = self.files[index]
        pixels = self.pixels(file)
        top, left = crop_offsets(pixels.shape[0], pixels.shape[1], self.crop_size, f"image '{file}'", generator)
        crop = pixels_to_tensor(pixels[top : top + self.crop_size, left : left + self.crop_size])
        if self.augment:
            (crop,) = random_augment([crop], generator)
        return {self.key: crop}


def files_of(dataset: Dataset) -> list[Path]:
    """The image files behind a folder dataset (or several, concatenated)."""
    if isinstance(dataset, ConcatCrops):
        return [file for part in dataset.datasets for file in files_of(part)]
    return list(getattr(dataset, "files", []))


def crop_datasets(dataset: Dataset) -> list[Dataset]:
    """The crop datasets (folders, pairs) inside a training set, through concatenations and tags."""
    if isinstance(dataset, _CropDataset):
        return [dataset]
    parts = getattr(dataset, "datasets", None)
    if parts is not None:
        return [inner for part in parts for inner in crop_datasets(part)]
    inner = getattr(dataset, "dataset", None)
    return crop_datasets(inner) if inner is not None else []


def spread(files: list[Path], count: int) -> list[Path]:
    """At most ``count`` of ``files``, spread evenly over the list (deterministic)."""
    step = max(len(files) / max(count, 1), 1.0)
    return [files[int(i * step)] for i in range(min(count, len(files)))]


class CleanImageDataset(Dataset):
    """Clean images alone, centre-cropped to ``crop`` (``None``: whole): ``{"clean", "name"}``. The validation
    set of a degradation model trained without any pair (its synthetic images are judged against the degraded
    folder's noise, :class:`~degrade_lab.metrics.noise_match.NoiseMatch`)."""

    def __init__(self, files: list[Path], crop: int | None = None):
        self.files, self.crop = list(files), crop

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        image = read_image(self.files[index])
        return {"clean": center_crop(image, self.crop) if self.crop else image, "name": self.files[index].stem}


class PairedCropDataset(_CropDataset):
    """Aligned random crops from a paired folder (or the given ``pairs``): ``{"clean": HR crop,
    "degraded": LR crop}``."""

    def __init__(self, root: str | Path | None, crop_size: int, scale: int = 1, augment: bool = True,
                 pairs: list[tuple[str, Path, Path]] | None = None, skip_bad: bool = False):
        if crop_size % scale:
            raise UserInputError(f"crop size {crop_size} is not divisible by the scale {scale}.")
        pairs = list(pairs) if pairs is not None else find_pairs(root, scale)
        self.skipped: dict[str, str] = {}
        self.skip_bad = bool(skip_bad)
        kept = set(_check_min_size([d for _, _, d in pairs], crop_size // scale, "degraded",
                                   self.skipped if skip_bad else None))
        self.pairs = [pair for pair in pairs if pair[2] in kept]
        self.crop_size, self.scale, self.augment = crop_size, scale, augment

    def __len__(self):
        return len(self.pairs)

    def image_files(self) -> list[Path]:
        """Both images of every pair (what the decoded-image store prepares)."""
        return [file for _, clean, degraded in self.pairs for file in (clean, degraded)]

    def make(self, index: int, generator) -> dict:
        name, clean_path, degraded_path = self.pairs[index]
        clean, degraded = random_crop_pair(self.pixels(clean_path), self.pixels(degraded_path), self.crop_size,
                                           self.scale, f"pair '{name}'", generator, channels_last=True)
        clean, degraded = pixels_to_tensor(clean), pixels_to_tensor(degraded)
        if self.augment:
            clean, degraded = random_augment([clean, degraded], generator)
        return {"clean": clean, "degraded": degraded}


class PairedImageDataset(Dataset):
    """Whole test/validation pairs ``{"clean", "degraded", "name"}``, optionally centre-cropped.

    A clean image whose size is not a multiple of ``scale`` is cropped to one, with a warning.
    """

    def __init__(self, root, scale: int = 1, crop: int | None = None, pairs: list[tuple[str, Path, Path]] | None = None):
        self.pairs = list(pairs) if pairs is not None else find_pairs(root, scale)
        self.scale, self.crop = scale, crop
        for _, clean_path, _ in self.pairs:
            height, width = image_size(clean_path)
            if height % scale or width % scale:
                warnings.warn(
                    f"test image '{clean_path}' ({height}x{width}) is cropped to a multiple of scale {scale}",
                    stacklevel=2,
                )

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        name, clean_path, degraded_path = self.pairs[index]
        degraded = read_image(degraded_path)
        height, width = degraded.shape[-2:]
        clean = read_image(clean_path)[:, : height * self.scale, : width * self.scale]
        if self.crop:  # the same scene region on both sides
            size = self.crop // self.scale
            top, left = center_offset(height, width, size)
            degraded = degraded[:, top : top + size, left : left + size]
            s = self.scale
            clean = clean[:, top * s : (top + size) * s, left * s : (left + size) * s]
        return {"clean": clean, "degraded": degraded, "name": name}


class DegradedImageDataset(Dataset):
    """Validation / test pairs made from a folder of clean images by a degrader, deterministically:
    image ``name`` is degraded with a generator seeded by (``seed``, ``name``), so every epoch and
    every run sees the same pairs. Items carry the degrader's recorded ``parameters`` (sigma, ...).
    Clean images are cropped to a multiple of the degrader's scale (and centre-cropped to ``crop``)."""

    def __init__(self, root: str | Path | None, degrader, seed: int = 0, crop: int | None = None,
                 files: list[Path] | None = None):
        import hashlib

        if files is not None:  # a data set's clean test images (e.g. a classic test set), named by stem
            self.names = relative_stems(files, Path(files[0]).parent) if len({f.parent for f in files}) == 1 \
                else {f.stem: f for f in files}
        else:
            self.names = relative_stems(list_images(root, "clean image folder"), Path(root).expanduser())
        self.degrader, self.crop, self.scale = degrader, crop, int(getattr(degrader, "scale", 1))
        self.seeds = {name: int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:15], 16)
                      for name in self.names}
        self.items = sorted(self.names.items())

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        import torch

        name, path = self.items[index]
        clean = read_image(path)
        if self.crop:
            clean = center_crop(clean, self.crop)
        height, width = clean.shape[-2:]
        clean = clean[:, : height - height % self.scale, : width - width % self.scale]
        generator = torch.Generator().manual_seed(self.seeds[name])
        with torch.inference_mode():
            degraded = self.degrader(clean[None], generator)[0].clone()
        parameters = {k: v[0].clone() for k, v in getattr(self.degrader, "last_parameters", {}).items()}
        item = {"clean": clean, "degraded": degraded, "name": name}
        if parameters:
            item["parameters"] = parameters
        return item
