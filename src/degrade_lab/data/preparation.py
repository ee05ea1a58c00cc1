"""The preprocessing the papers did to the data sets, as recipes for ``degrade-lab prepare``: what is read from a
data set as shipped and which files are made from it. :mod:`degrade_lab.tasks.prepare` writes them (atomically,
with a manifest, resuming after a kill).

==================  =====================================================================================
recipe              what it writes under ``output``
==================  =====================================================================================
``sidd``            SIDD training pairs cut into ``crop_size`` (512) tiles on a grid of ``stride`` (= crop_size):
                    ``clean/`` + ``degraded/``, LUD-VAE's SIDD training data (sec. 4.2); a paired folder
``sidd_senmvae``    ``crops_per_image`` (300) random ``crop_size`` (256) crops per SIDD-Medium pair, the same
                    window on both sides, seeded per image: SeNM-VAE's unpaired pool (seed-reference 2.3)
``div2k``           ``DIV2K_{train,valid}_LR_bicubic/X{scale}/{stem}x{scale}.png`` from the HR images, MATLAB
                    bicubic as the released LR images and DeFlow's conditioning were made
``dnd``             DND's 1000 noisy 512 x 512 crops as 16-bit PNGs, ``dnd/IIII_BB.png``: a degraded folder for
                    unpaired training (LUD-VAE Table 3: DND noisy against SIDD clean)
``luma``            every image under ``data.root`` as its MATLAB ``rgb2ycbcr`` luma (8 bits, the same relative
                    path, ``.png``), a grey image unchanged: the Y-channel data of the JPEG artifact papers (VDIR
                    Table VI; Classic5 is grey already, LIVE1 and DIV2K are converted)
==================  =====================================================================================

A grey image is read as three equal channels, and libjpeg encodes such an RGB image with the luminance table only
(constant chroma), exactly as it encodes the grey image: so the Y-channel JPEG protocol needs no grey data path,
only grey files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import image_size, read_image


@dataclass
class Job:
    """One source read once and the files made from it: ``make()`` returns ``{relative path: 3 x H x W in [0, 1]}``
    for exactly ``outputs``."""

    source: str
    outputs: list[str]
    make: Callable[[], dict[str, torch.Tensor]]
    bits: int = 8


def _seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:15], 16)


def _grid(length: int, size: int, stride: int) -> list[int]:
    return list(range(0, length - size + 1, stride))


def _flat(name: str) -> str:
    return name.replace("/", "_")


def _crop_job(name: str, clean: Path, noisy: Path, windows: list[tuple[int, int]], size: int) -> Job:
    outputs = []
    for top, left in windows:
        stem = f"{_flat(name)}_{top:04d}_{left:04d}"
        outputs += [f"clean/{stem}.png", f"degraded/{stem}.png"]

    def make():
        images = {"clean": read_image(clean), "degraded": read_image(noisy)}
        made = {}
        for top, left in windows:
            stem = f"{_flat(name)}_{top:04d}_{left:04d}"
            for side, image in images.items():
                made[f"{side}/{stem}.png"] = image[:, top : top + size, left : left + size]
        return made

    return Job(f"{clean} + {noisy.name}", outputs, make)


def sidd_grid(root, train: str = "auto", crop_size: int = 512, stride: int | None = None, **unused) -> list[Job]:
    """``sidd``: every training pair cut into ``crop_size`` tiles on a grid (see the module docstring)."""
    from degrade_lab.data.sidd import find_sidd

    size, step = int(crop_size), int(stride or crop_size)
    jobs = []
    for name, clean, noisy in find_sidd(root).training_pairs(train):
        height, width = image_size(clean)
        windows = [(t, left) for t in _grid(height, size, step) for left in _grid(width, size, step)]
        if not windows:
            raise UserInputError(f"'{clean}' is {height}x{width}, smaller than crop_size={size}.")
        jobs.append(_crop_job(name, clean, noisy, windows, size))
    return jobs


def sidd_random(root, train: str = "medium", crop_size: int = 256, crops_per_image: int = 300, seed: int = 0,
                **unused) -> list[Job]:
    """``sidd_senmvae``: random crops per training pair, seeded by (seed, pair name) (see the module docstring)."""
    from degrade_lab.data.sidd import find_sidd

    size, count = int(crop_size), int(crops_per_image)
    jobs = []
    for name, clean, noisy in find_sidd(root).training_pairs(train):
        height, width = image_size(clean)
        if height < size or width < size:
            raise UserInputError(f"'{clean}' is {height}x{width}, smaller than crop_size={size}.")
        generator = torch.Generator().manual_seed(_seed(seed, name))
        tops = torch.randint(0, height - size + 1, (count,), generator=generator).tolist()
        lefts = torch.randint(0, width - size + 1, (count,), generator=generator).tolist()
        windows = list(dict.fromkeys(zip(tops, lefts, strict=True)))  # a repeated window is written once
        jobs.append(_crop_job(name, clean, noisy, windows, size))
    return jobs


def div2k_bicubic(root, scale: int = 4, **unused) -> list[Job]:
    """``div2k``: the bicubic LR copies of DIV2K's HR images (see the module docstring)."""
    from degrade_lab.data.named_sets import find_folder, folder_images
    from degrade_lab.degradations.resize import imresize

    s = int(scale)
    roots = [Path(str(r)).expanduser() for r in (root if isinstance(root, (list, tuple)) else [root])]
    jobs = []
    for split in ("train", "valid"):
        folder = next((f for f in (find_folder(r, (f"DIV2K_{split}_HR",)) for r in roots if r.is_dir())
                       if f is not None), None)
        if folder is None:
            continue
        for hr in folder_images(folder):
            target = f"DIV2K_{split}_LR_bicubic/X{s}/{hr.stem}x{s}.png"

            def make(hr=hr, target=target):
                image = read_image(hr)
                height, width = image.shape[-2:]
                image = image[:, : height - height % s, : width - width % s]
                return {target: imresize(image[None], 1 / s).clamp(0, 1)[0]}

            jobs.append(Job(str(hr), [target], make))
    if not jobs:
        raise UserInputError(f"no DIV2K_train_HR or DIV2K_valid_HR folder (with images) under data.root={root}.")
    return jobs


def dnd_crops(root, **unused) -> list[Job]:
    """``dnd``: the 1000 benchmark crops as 16-bit PNGs, one job per photo (see the module docstring)."""
    from degrade_lab.data.dnd import DndCrops
    from degrade_lab.utils.matfile import read_mat

    crops = DndCrops(root)
    per_photo = crops.boxes.shape[1]
    jobs = []
    for photo in range(crops.boxes.shape[0]):
        outputs = [f"dnd/{photo + 1:04d}_{box + 1:02d}.png" for box in range(per_photo)]

        def make(photo=photo):  # its own read of the photo: jobs may run in parallel threads
            array = read_mat(crops.files[photo], "InoisySRGB")
            made = {}
            for box, (top, left, bottom, right) in enumerate(crops.boxes[photo].tolist()):
                crop = np.ascontiguousarray(array[int(top) - 1 : int(bottom), int(left) - 1 : int(right)],
                                            dtype=np.float32)
                made[f"dnd/{photo + 1:04d}_{box + 1:02d}.png"] = torch.from_numpy(crop).permute(2, 0, 1).clamp(0, 1)
            return made

        jobs.append(Job(str(crops.files[photo]), outputs, make, bits=16))
    return jobs


def luma(root, **unused) -> list[Job]:
    """``luma``: every image under ``root`` as its 8-bit MATLAB luma, grey images as they are (see the module
    docstring)."""
    from degrade_lab.metrics.image_quality import rgb_to_y
    from degrade_lab.utils.io import list_images

    roots = [Path(str(r)).expanduser() for r in (root if isinstance(root, (list, tuple)) else [root])]
    jobs = []
    for base in roots:
        for image_path in list_images(base, "data.root"):
            target = image_path.relative_to(base).with_suffix(".png").as_posix()

            def make(image_path=image_path, target=target):
                image = read_image(image_path)
                if torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]):  # grey: the Y itself
                    return {target: image}
                y = rgb_to_y(image[None])[0].mul(255).round().div(255)  # MATLAB rgb2ycbcr on uint8: rounded
                return {target: y.expand(3, -1, -1)}

            jobs.append(Job(str(image_path), [target], make))
    if not jobs:
        raise UserInputError(f"no images under data.root={root}.")
    return jobs


RECIPES = {"sidd": sidd_grid, "sidd_senmvae": sidd_random, "div2k": div2k_bicubic, "dnd": dnd_crops, "luma": luma}
