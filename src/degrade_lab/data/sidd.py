"""SIDD (Abdelhamed, Lin & Brown, CVPR 2018), sRGB, read as its authors ship it (``data=sidd data.root=DIR``).

Every part is found anywhere under ``data.root``, wherever the archives were unpacked:

- training pairs, one folder per scene instance (``<instance>_<scene>_<phone>_<ISO>_<shutter>_<temperature>_<L|N|H>``)
  in a ``Data`` folder: SIDD-Small sRGB holds ``GT_SRGB_010.PNG`` / ``NOISY_SRGB_010.PNG`` (160 pairs), SIDD-Medium
  sRGB ``NNNN_GT_SRGB_010.PNG`` / ``NNNN_NOISY_SRGB_010.PNG`` and the same with ``_011`` (320 pairs);
- the validation blocks, ``ValidationGtBlocksSrgb.mat`` / ``ValidationNoisyBlocksSrgb.mat`` (MATLAB arrays of
  40 images x 32 blocks of 256 x 256 x 3, uint8): the test split the papers report (LUD-VAE Table 2, SeNM-VAE
  Table 1, DeFlow's SIDD rows);
- the benchmark blocks, ``BenchmarkNoisyBlocksSrgb.mat`` (the same layout, no ground truth), whose denoised
  blocks go to the benchmark server as ``SubmitSrgb.mat`` (:func:`write_submission`).

A part that is asked for and not found stops with a message saying what was expected where and what was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from degrade_lab.data.transforms import center_crop
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import find_file
from degrade_lab.utils.matfile import mat_shape, read_mat

#: a scene-instance folder's name, e.g. 0052_002_S6_01600_01000_5500_N
SCENE = re.compile(r"^\d{4}_\d{3}_[A-Z0-9]{2}_\d{5}_\d{5}_\d{4}_[LNH]$")
#: a ground-truth image: SIDD-Small names it GT_SRGB_010.PNG, SIDD-Medium NNNN_GT_SRGB_010.PNG (and _011)
GT_FILE = re.compile(r"^(?:(\d{4})_)?GT_SRGB_(01[01])\.png$", re.IGNORECASE)
VALIDATION = {"clean": ("ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb"),
              "degraded": ("ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb")}
BENCHMARK = ("BenchmarkNoisyBlocksSrgb.mat", "BenchmarkNoisyBlocksSrgb")
BLOCKS_SHAPE = (40, 32, 256, 256, 3)

Pair = tuple[str, Path, Path]


@dataclass
class SiddLayout:
    """What :func:`find_sidd` found under ``root``."""

    root: Path
    small: list[Pair] = field(default_factory=list)
    medium: list[Pair] = field(default_factory=list)
    validation: dict[str, Path] = field(default_factory=dict)
    benchmark: Path | None = None

    def found(self) -> str:
        parts = [f"{len(self.small)} SIDD-Small pairs" if self.small else "",
                 f"{len(self.medium)} SIDD-Medium pairs" if self.medium else "",
                 ", ".join(str(p) for p in self.validation.values()),
                 str(self.benchmark or "")]
        return "; ".join(p for p in parts if p) or "nothing of SIDD"

    def training_pairs(self, subset: str = "auto") -> list[Pair]:
        """The sRGB training pairs of ``subset``: ``small``, ``medium`` or ``auto`` (Medium where it was found, as
        it holds Small's scenes twice over, else Small)."""
        if subset not in ("auto", "small", "medium"):
            raise UserInputError(f"data.train={subset!r}: choose auto, small or medium.")
        pairs = {"small": self.small, "medium": self.medium,
                 "auto": self.medium or self.small}[subset]
        if not pairs:
            wanted = {"small": "SIDD-Small sRGB", "medium": "SIDD-Medium sRGB"}.get(subset, "SIDD-Small or -Medium sRGB")
            raise UserInputError(
                f"no {wanted} training pairs under data.root='{self.root}': expected scene folders such as "
                "Data/0001_001_S6_00100_00060_3200_L/ holding GT_SRGB_010.PNG and NOISY_SRGB_010.PNG (Small) or "
                f"0001_GT_SRGB_010.PNG and 0001_NOISY_SRGB_010.PNG (Medium). Found: {self.found()}.")
        return pairs

    def validation_blocks(self, crop: int | None = None, count: int | None = None) -> SiddBlocks:
        missing = [VALIDATION[side][0] for side in ("clean", "degraded") if side not in self.validation]
        if missing:
            raise UserInputError(
                f"no {' and '.join(missing)} under data.root='{self.root}' (SIDD's sRGB validation blocks, the "
                f"papers' test split; or set data.test=null). Found: {self.found()}.")
        return SiddBlocks(self.validation["degraded"], VALIDATION["degraded"][1], self.validation["clean"],
                          VALIDATION["clean"][1], crop=crop, count=count)

    def benchmark_blocks(self) -> SiddBlocks:
        if self.benchmark is None:
            raise UserInputError(f"no {BENCHMARK[0]} under data.root='{self.root}' (SIDD's sRGB benchmark blocks). "
                                 f"Found: {self.found()}.")
        return SiddBlocks(self.benchmark, BENCHMARK[1])


def find_sidd(root: str | Path) -> SiddLayout:
    """Every SIDD sRGB part under ``root`` (see the module docstring); a training ground truth without its noisy
    image stops with an error naming both files."""
    root = Path(root).expanduser() if root else None
    if root is None or not root.is_dir():
        raise UserInputError(f"data.root='{root}' is not a folder: set data.root to where SIDD was unpacked.")
    layout = SiddLayout(root)
    for file in sorted(root.rglob("*")):
        match = GT_FILE.match(file.name)
        if not match or not SCENE.match(file.parent.name):
            continue
        noisy = file.with_name(file.name.replace("GT_SRGB", "NOISY_SRGB").replace("gt_srgb", "noisy_srgb"))
        if not noisy.is_file():
            raise UserInputError(f"SIDD ground truth '{file}' has no noisy image next to it: expected '{noisy}'.")
        pair = (f"{file.parent.name}/{match.group(2)}", file, noisy)
        (layout.medium if match.group(1) else layout.small).append(pair)
    for side, (name, _) in VALIDATION.items():
        found = find_file(root, name)
        if found is not None:
            layout.validation[side] = found
    layout.benchmark = find_file(root, BENCHMARK[0])
    return layout


class SiddBlocks(Dataset):
    """SIDD's 40 x 32 blocks of 256 x 256 from a ``.mat`` file (and their ground truth when given), as test pairs
    ``{"clean", "degraded", "name"}`` (``name``: ``IIII_BB``, image and block from 1 as MATLAB counts them) or,
    without ground truth, ``{"degraded", "name"}``. ``count`` keeps that many blocks spread evenly over the 1280
    (validation during training); ``crop`` centre-crops them. The arrays are read when first needed."""

    def __init__(self, degraded: Path, degraded_key: str, clean: Path | None = None, clean_key: str | None = None,
                 crop: int | None = None, count: int | None = None):
        self.files = {"degraded": (Path(degraded), degraded_key)}
        if clean is not None:
            self.files["clean"] = (Path(clean), clean_key)
        for path, key in self.files.values():
            shape = mat_shape(path, key)
            if len(shape) != 5 or shape[-1] != 3:
                raise UserInputError(f"'{path}': '{key}' has shape {shape}, expected images x blocks x height x "
                                     f"width x 3 (SIDD ships {BLOCKS_SHAPE}).")
            self.shape = shape
        shapes = {mat_shape(path, key) for path, key in self.files.values()}
        if len(shapes) > 1:
            raise UserInputError(f"SIDD blocks of different shapes: {', '.join(map(str, shapes))} "
                                 f"({', '.join(str(p) for p, _ in self.files.values())}).")
        images, blocks = self.shape[:2]
        every = [(i, b) for i in range(images) for b in range(blocks)]
        step = len(every) / count if count and count < len(every) else 1.0
        self.index = [every[int(k * step)] for k in range(min(count or len(every), len(every)))]
        self.crop = crop
        self._arrays: dict[str, np.ndarray] = {}
        #: the benchmark blocks have none: ``evaluate`` restores them and writes ``SubmitSrgb.mat``
        self.ground_truth = "clean" in self.files

    def submission(self, folder: str | Path) -> SiddSubmission:
        """A writer of the restored blocks into ``folder/SubmitSrgb.mat`` (see :class:`SiddSubmission`)."""
        return SiddSubmission(Path(folder) / "SubmitSrgb.mat", self.shape)

    def __len__(self):
        return len(self.index)

    def array(self, side: str) -> np.ndarray:
        if side not in self._arrays:
            path, key = self.files[side]
            array = read_mat(path, key)
            if array.dtype != np.uint8:
                raise UserInputError(f"'{path}': '{key}' holds {array.dtype}, expected uint8 sRGB blocks.")
            self._arrays[side] = array
        return self._arrays[side]

    def __getitem__(self, index):
        image, block = self.index[index]
        item = {"name": f"{image + 1:04d}_{block + 1:02d}"}
        for side in self.files:
            tensor = torch.from_numpy(np.ascontiguousarray(self.array(side)[image, block])).permute(2, 0, 1)
            tensor = tensor.float().div_(255.0)
            item[side] = center_crop(tensor, self.crop) if self.crop else tensor
        return item


class SiddSubmission:
    """Restored blocks given one at a time (``add("IIII_BB", block)``), kept as uint8 (the 1280 blocks: 250 MB), and
    written as SIDD's ``SubmitSrgb.mat`` by ``close`` once every block is there."""

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path = path
        self.blocks = np.zeros(tuple(shape), dtype=np.uint8)
        self.filled = np.zeros(tuple(shape[:2]), dtype=bool)

    def add(self, name: str, block: torch.Tensor) -> None:
        image, index = (int(part) - 1 for part in name.split("_"))
        self.blocks[image, index] = (block.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
                                     .permute(1, 2, 0).cpu().numpy())
        self.filled[image, index] = True

    def close(self, seconds_per_megapixel: float) -> Path:
        if not self.filled.all():
            missing = int((~self.filled).sum())
            raise UserInputError(f"SIDD submission: {missing} of {self.filled.size} blocks were not restored.")
        return write_submission(self.path, self.blocks, seconds_per_megapixel)


def write_submission(path: str | Path, denoised: torch.Tensor | np.ndarray, seconds_per_megapixel: float,
                     method: str = "degrade_lab") -> Path:
    """SIDD's sRGB submission file (what the benchmark's ``SubmitSrgb.mat`` holds): ``DenoisedBlocksSrgb``, a 40 x 32
    MATLAB cell array of 256 x 256 x 3 uint8 blocks, ``TimeMPSrgb`` (seconds per megapixel) and ``OptionalData``
    with the method's name; written atomically. ``denoised``: ``images x blocks x 3 x H x W`` floats in [0, 1]
    (as the model outputs them) or ``images x blocks x H x W x 3`` uint8."""
    from scipy.io import savemat

    from degrade_lab.utils.io import atomic_write

    if isinstance(denoised, torch.Tensor):
        denoised = (denoised.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
                    .permute(0, 1, 3, 4, 2).cpu().numpy())
    if denoised.ndim != 5 or denoised.shape[-1] != 3 or denoised.dtype != np.uint8:
        raise UserInputError(f"SIDD submission: expected images x blocks x H x W x 3 uint8 blocks, got "
                             f"{denoised.shape} {denoised.dtype}.")
    cells = np.empty(denoised.shape[:2], dtype=object)
    for i in range(denoised.shape[0]):
        for b in range(denoised.shape[1]):
            cells[i, b] = denoised[i, b]
    payload = {"DenoisedBlocksSrgb": cells, "TimeMPSrgb": float(seconds_per_megapixel),
               "OptionalData": {"MethodName": method}}
    path = Path(path)
    atomic_write(path, lambda file: savemat(file, payload))
    return path


def sidd(kind: str = "paired", root: str | None = None, train: str = "auto", test: str | None = "validation",
         val_blocks: int = 64, num_paired: int | None = None, split_seed: int = 0, degrader=None,
         degrader_ckpt: str | None = None, crop_size: int = 64, batch_size: int = 16, num_workers: int | str = "auto",
         batches_per_epoch: int = 1000, val_crop: int | None = None, weights: dict | None = None,
         augment: bool = True, seed: int = 0, clean_validation: bool = False, scale: int = 1,
         pairs_from: str | None = None, num_unpaired: int | None = None, **loading):
    """The data module for ``data=sidd`` (``conf/data/sidd.yaml``), by the model's ``kind``:

    - ``paired`` (a restorer): the training pairs of ``train`` (``num_paired``: that many of them, chosen as
      SeNM-VAE's split chooses), or with ``degrader`` their clean images degraded on the fly;
    - ``unpaired`` (LUD-VAE, DeFlow): the ground-truth and the noisy images as two unpaired domains, as LUD-VAE
      trains on SIDD (the two domains share scenes);
    - ``semi`` (SeNM-VAE): ``num_paired`` pairs (default 10), the rest halved into clean-only and noisy-only images;
    - ``test`` (what ``evaluate`` scores): the validation blocks alone, a dataset.

    ``pairs_from``: a paired folder to train on in place of the images as shipped (``degrade-lab prepare
    sidd_senmvae``'s 300 random crops per pair, which SeNM-VAE splits: the 10 pairs are crops, the rest halved into
    clean-only and noisy-only crops); validation and test stay SIDD's blocks. ``num_unpaired``: SeNM-VAE's unpaired
    domains cut to that many images each (Table 7). ``loading``: how training images are read (``cache``,
    ``cache_gb``, ``cache_dir``, ``crops_per_image``, ``skip_bad``; :class:`~degrade_lab.data.datamodules.DomainDataModule`).

    ``test=validation`` (the default) tests on the 1280 validation blocks and validates on ``val_blocks`` of them
    spread over the 40 images; ``test=null`` uses none (an unpaired model then validates without pairs)."""
    from degrade_lab.data.datamodules import (
        PairedDataModule,
        SemiSupervisedDataModule,
        UnpairedDataModule,
    )
    from degrade_lab.data.splits import describe, split_pair_list

    if int(scale) != 1:
        raise UserInputError(f"data=sidd is a denoising set (scale 1), got data.scale={scale}.")
    if test not in (None, "validation", "benchmark"):
        raise UserInputError(f"data.test={test!r}: SIDD's test split is 'validation' (its ground truth is public), "
                             "'benchmark' (no ground truth: evaluate writes the submission), or null for none.")
    layout = find_sidd(root)
    if kind == "test":  # what evaluate scores: the validation blocks (training pairs not needed)
        if not test:
            raise UserInputError("data=sidd with data.test=null has no test pairs: evaluate needs data.test=validation.")
        return layout.benchmark_blocks() if test == "benchmark" else layout.validation_blocks()
    if test == "benchmark":
        raise UserInputError("data.test=benchmark (no ground truth) is for evaluate, which writes the submission; "
                             "training validates on pairs: data.test=validation or null.")
    if pairs_from:
        from degrade_lab.data.datasets import find_pairs

        pairs = find_pairs(pairs_from)
    else:
        pairs = layout.training_pairs(train)
    test_set = layout.validation_blocks() if test else None
    val_set = layout.validation_blocks(crop=val_crop, count=int(val_blocks)) if test else None
    common = {"test": test_set, "val": val_set, "crop_size": crop_size, "val_crop": val_crop, "augment": augment,
              "batch_size": batch_size, "num_workers": num_workers, "batches_per_epoch": batches_per_epoch,
              "seed": seed, **loading}
    where = f"the pairs of '{pairs_from}'" if pairs_from else f"SIDD under '{layout.root}'"
    split = None
    if kind == "paired":
        if num_paired is not None:
            split = split_pair_list(pairs, int(num_paired), int(split_seed), unpaired=False, where=where)
            pairs = split["paired"]
        if degrader is not None:
            module = PairedDataModule(source_files=[clean for _, clean, _ in pairs], degrader=degrader,
                                      degrader_ckpt=degrader_ckpt, **common)
        else:
            module = PairedDataModule(pairs=pairs, **common)
    elif kind == "unpaired":
        module = UnpairedDataModule(source_files=[clean for _, clean, _ in pairs],
                                    target_files=[noisy for _, _, noisy in pairs], weights=weights, **common)
    elif kind == "semi":
        split = split_pair_list(pairs, int(10 if num_paired is None else num_paired), int(split_seed), where=where,
                                num_unpaired=num_unpaired)
        module = SemiSupervisedDataModule(split=split, weights=weights, clean_validation=clean_validation, **common)
    else:
        raise UserInputError(f"unknown data kind '{kind}' (paired, unpaired or semi).")
    module.split_record = describe(split, layout.root, split_seed) if split else None
    return module
