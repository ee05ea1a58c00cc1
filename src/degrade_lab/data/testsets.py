"""The classic test sets as clean images, ``data=testset data.name=CBSD68 data.root=DIR``, for ``evaluate``'s level
sweeps (each image degraded with a fixed per-image seed: VDIR Tables I, IV-VII; DnCNN, DRUNet)::

    degrade-lab evaluate ckpt=... data=testset data.name=CBSD68 data.root=~/testsets \\
        sweep.degrader=awgn sweep.parameter=sigma sweep.values=[15,25,50] +sweep.options.clip=false

The set is the folder named ``data.name`` (or a usual alias, any letter case) anywhere under ``data.root``; its
images lie directly in it or in the ground-truth sub-folder the common releases use (``GTmod12`` of BasicSR's Set5
/ Set14, ``HR``, ``GT``, ``original``); in the SelfExSR layout (``image_SRF_4/img_001_SRF_4_HR.png``) the ``_HR``
files are the clean ones.
"""

from __future__ import annotations

from pathlib import Path

from degrade_lab.data.named_sets import find_folder, folder_images
from degrade_lab.errors import UserInputError

#: each set's folder names as the usual releases spell them, and what it is for
SETS = {
    "CBSD68": (("CBSD68",), "colour denoising, 68 images (DnCNN, DRUNet, VDIR)"),
    "Kodak24": (("Kodak24", "Kodak"), "colour denoising, 24 images"),
    "McMaster": (("McMaster", "McM"), "colour denoising / demosaicking, 18 images"),
    "Set5": (("Set5",), "super-resolution, 5 images"),
    "Set14": (("Set14",), "super-resolution, 14 images"),
    "BSD100": (("BSD100", "B100"), "super-resolution, 100 images"),
    "Urban100": (("Urban100",), "super-resolution, 100 images"),
    "Classic5": (("Classic5",), "JPEG deblocking, 5 grey images"),
    "LIVE1": (("LIVE1",), "JPEG deblocking, 29 images"),
}
GROUND_TRUTH = ("GTmod12", "HR", "GT", "original")


def clean_images(root, name: str) -> list[Path]:
    """The clean images of the classic test set ``name`` under ``root``; see the module docstring."""
    key = next((k for k in SETS if k.lower() == str(name).lower() or str(name).lower() in
                (alias.lower() for alias in SETS[k][0])), None)
    if key is None:
        raise UserInputError(f"data.name={name!r}: not a classic test set; choose from {', '.join(SETS)} "
                             "(or use data=folders data.test=DIR for any folder).")
    if root is None or not Path(str(root)).expanduser().is_dir():
        raise UserInputError(f"data=testset needs data.root=DIR, a folder holding {key} (got {root!r}).")
    root = Path(str(root)).expanduser()
    folder = find_folder(root, SETS[key][0])
    if folder is None:
        raise UserInputError(f"{key} not found under '{root}': expected a folder named "
                             f"{' or '.join(SETS[key][0])} (any letter case) holding its images.")
    for sub in GROUND_TRUTH:
        if (folder / sub).is_dir() and folder_images(folder / sub):
            return folder_images(folder / sub)
    images = folder_images(folder)
    if not images:
        nested = sorted(p for p in folder.rglob("*") if p.is_file() and p.stem.endswith("_HR"))
        images = nested
    if not images:
        raise UserInputError(f"{key} folder '{folder}' holds no images directly, in {'/'.join(GROUND_TRUTH)}/, or as "
                             "*_HR files.")
    return images


def classic_set(kind: str = "clean", root=None, name: str = "CBSD68", **unused):
    """``data=testset``: the clean images of a classic test set (``kind="clean"``, what evaluate's sweeps degrade)."""
    if kind == "clean":
        return clean_images(root, name)
    if kind == "test":
        raise UserInputError(f"data=testset ({name}) holds clean images only: evaluate it with a level sweep "
                             "(sweep.degrader=awgn sweep.parameter=sigma sweep.values=[15,25,50]).")
    raise UserInputError(f"data=testset is a test set, not training data (a model asked for '{kind}' data).")
