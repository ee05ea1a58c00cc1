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
    random_augment,
    random_crop,
    random_crop_pair,
)
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import image_size, list_images, read_image, relative_stems


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


def _check_min_size(files: list[Path], size: int, what: str) -> None:
    for file in files:
        height, width = image_size(file)
        if height < size or width < size:
            raise UserInputError(
                f"{what} image '{file}' is {height}x{width}, smaller than the {size}x{size} crop; "
                "lower the crop size (data.crop_size) or remove the image."
            )


class ImageFolderDataset(Dataset):
    """Random (augmented) crops from one folder of unpaired images (or the given ``files``): ``{key: crop}``."""

    def __init__(self, root: str | Path | None, crop_size: int, key: str = "clean", augment: bool = True,
                 what: str = "image", files: list[Path] | None = None):
        self.files = list(files) if files is not None else list_images(root, f"{what} folder")
        _check_min_size(self.files, crop_size, what)
        self.crop_size, self.key, self.augment = crop_size, key, augment

    def __len__(self):
        return len(self.files)

    def __getitem__(self, key):
        index, generator = split_key(key)
        file = self.files[index]
        crop = random_crop(read_image(file), self.crop_size, f"image '{file}'", generator)
        if self.augment:
            (crop,) = random_augment([crop], generator)
        return {self.key: crop}


def files_of(dataset: Dataset) -> list[Path]:
    """The image files behind a folder dataset (or several, concatenated)."""
    if isinstance(dataset, ConcatCrops):
        return [file for part in dataset.datasets for file in files_of(part)]
    return list(getattr(dataset, "files", []))


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


class PairedCropDataset(Dataset):
    """Aligned random crops from a paired folder (or the given ``pairs``): ``{"clean": HR crop,
    "degraded": LR crop}``."""

    def __init__(self, root: str | Path | None, crop_size: int, scale: int = 1, augment: bool = True,
                 pairs: list[tuple[str, Path, Path]] | None = None):
        if crop_size % scale:
            raise UserInputError(f"crop size {crop_size} is not divisible by the scale {scale}.")
        self.pairs = list(pairs) if pairs is not None else find_pairs(root, scale)
        _check_min_size([d for _, _, d in self.pairs], crop_size // scale, "degraded")
        self.crop_size, self.scale, self.augment = crop_size, scale, augment

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, key):
        index, generator = split_key(key)
        name, clean_path, degraded_path = self.pairs[index]
        clean, degraded = random_crop_pair(
            read_image(clean_path), read_image(degraded_path), self.crop_size, self.scale, f"pair '{name}'",
            generator,
        )
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
