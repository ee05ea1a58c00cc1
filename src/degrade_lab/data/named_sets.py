"""What the data sets read as their authors ship them (:mod:`~degrade_lab.data.realsr`, :mod:`~degrade_lab.data.div2k`,
:mod:`~degrade_lab.data.lol`, :mod:`~degrade_lab.data.testsets`) share: finding each part by its folder name anywhere
under ``data.root``, a clear message when a part is missing, and building the data module a model's kind asks for
from the lists of files and pairs found. (SIDD and DND, whose parts are MATLAB files, have modules of their own.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import ListConfig

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import IMAGE_SUFFIXES

Pair = tuple[str, Path, Path]


def _images_directly_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_folder(root: Path, names: tuple[str, ...], folders: list[Path] | None = None) -> Path | None:
    """The shallowest folder under ``root`` (itself included) whose name is one of ``names`` (any letter case) or
    whose path ends with one of them (``DIV2K_train_LR_bicubic/X4``); ``folders``: the folders under ``root``
    when the caller has walked them already (:func:`folders_under`)."""
    wanted = [tuple(part.lower() for part in Path(name).parts) for name in names]
    found = []
    for folder in folders if folders is not None else folders_under(root):
        parts = tuple(part.lower() for part in folder.parts)
        if any(parts[-len(name):] == name for name in wanted):
            found.append(folder)
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


def folders_under(root: Path) -> list[Path]:
    """``root`` and every folder below it (one walk of the tree)."""
    return [root, *(p for p in root.rglob("*") if p.is_dir())]


def folder_images(folder: Path) -> list[Path]:
    """The images of a data set's folder: directly in it, or in its ``1x/`` sub-folder where DeFlow's
    ``create_DeFlow_train_dataset.py`` moved them (next to ``4x/``, ``8x/`` ... copies, which are left out)."""
    full = folder / "1x"
    images = _images_directly_in(full) if full.is_dir() else []
    return images or _images_directly_in(folder)


@dataclass
class Part:
    """One part of a data set: a folder found under the root by one of ``names``."""

    what: str
    names: tuple[str, ...]


def locate(root, dataset: str, parts: dict[str, Part], needed: list[str]) -> dict[str, list[Path]]:
    """The images of each part of ``parts`` found under ``root`` (a folder, or a list of folders searched in
    order: a data set unpacked in several places, or with ``degrade-lab prepare``'s output next to it); the ``needed`` ones must be there (and hold
    images), else a :class:`UserInputError` lists every part: what was expected, and what was found where."""
    if root is None or str(root) in ("", "None"):
        raise UserInputError(f"data={dataset} needs data.root=DIR: the folder you unpacked {dataset} into.")
    roots = [Path(str(r)).expanduser() for r in (root if isinstance(root, (list, tuple, ListConfig)) else [root])]
    for folder in roots:
        if not folder.is_dir():
            raise UserInputError(f"data.root '{folder}' for data={dataset} does not exist or is not a folder.")
    root = roots[0] if len(roots) == 1 else ", ".join(str(r) for r in roots)
    trees = {r: folders_under(r) for r in roots}  # each root walked once for every part
    found: dict[str, list[Path]] = {}
    report = []
    for key, part in parts.items():
        candidates = [(f, folder_images(f)) for f in (find_folder(r, part.names, trees[r]) for r in roots) if f]
        folder, images = next((c for c in candidates if c[1]), candidates[0] if candidates else (None, []))
        if images:
            found[key] = images
        where = f"found {folder} with {len(images)} images" if folder is not None else "not found"
        report.append(f"  {part.what}: a folder named {' or '.join(part.names)} -> {where}")
    missing = [key for key in needed if key not in found]
    if missing:
        raise UserInputError(
            f"data={dataset}: {', '.join(parts[k].what for k in missing)} not found under '{root}'. Expected, anywhere "
            "under data.root (images directly in the folder or in its 1x/ sub-folder):\n" + "\n".join(report))
    return found


def match_pairs(clean: list[Path], degraded: list[Path], where: str, degraded_name: str = "{stem}",
                scale: int = 1) -> list[Pair]:
    """Pairs of two file lists matched by stem (the degraded stem made from the clean one by ``degraded_name``),
    sorted by name (:func:`~degrade_lab.data.pairing.pair_up`: a file without its partner or a size that does not
    fit ``scale`` stops, naming it)."""
    from degrade_lab.data.pairing import pair_up

    return pair_up({p.stem: p for p in clean}, {p.stem: p for p in degraded},
                   lambda stem: degraded_name.format(stem=stem), scale, where,
                   (clean[0].parent.name if clean else "clean", degraded[0].parent.name if degraded else "degraded"))


def build_module(kind: str, *, dataset: str, root, scale: int, train_pairs: list[Pair] | None,
                 source_files: list[Path] | None, target_files: list[Path] | None, test_pairs: list[Pair] | None,
                 semi_pairs: dict[str, list[Pair]] | None, degrader=None, degrader_ckpt=None, val_count: int = 16,
                 val_crop=None, weights=None, clean_validation: bool = False, **loader):
    """The data module for a model's ``kind`` from what a data set holds:

    - ``paired`` (a restorer): ``train_pairs``, or ``source_files`` degraded on the fly by ``degrader``;
    - ``unpaired``: ``source_files`` (clean) and ``target_files`` (degraded);
    - ``semi``: ``semi_pairs`` (``paired`` / ``source`` / ``target`` lists, e.g. SeNM-VAE's split);
    - validation on up to ``val_count`` of ``test_pairs`` spread over them (``val_crop`` centred crops), testing on
      all of them. ``split_record`` is left for the caller."""
    from degrade_lab.data.datamodules import PairedDataModule, SemiSupervisedDataModule, UnpairedDataModule
    from degrade_lab.data.datasets import PairedImageDataset, spread

    test = PairedImageDataset(None, scale=scale, pairs=test_pairs) if test_pairs else None
    val = PairedImageDataset(None, scale=scale, crop=val_crop, pairs=spread(test_pairs, val_count)) if test_pairs \
        else None
    common = {"test": test, "val": val, "scale": scale, "val_crop": val_crop, **loader}
    if kind == "paired":
        if degrader is not None:
            if not source_files:
                raise UserInputError(f"data={dataset} under '{root}' has no clean training images to degrade.")
            return PairedDataModule(source_files=source_files, degrader=degrader, degrader_ckpt=degrader_ckpt, **common)
        if not train_pairs:
            raise UserInputError(
                f"data={dataset} has no training pairs to train a restorer on: degrade its clean images on the fly "
                "(data.degrader=NAME or a degradation model's .ckpt), or synthesize pairs and use data=folders.")
        return PairedDataModule(pairs=train_pairs, **common)
    if kind == "unpaired":
        if not source_files or not target_files:
            raise UserInputError(f"data={dataset} under '{root}' lacks the clean or the degraded training images an "
                                 "unpaired model needs.")
        return UnpairedDataModule(source_files=source_files, target_files=target_files, weights=weights, **common)
    if kind == "semi":
        if not semi_pairs:
            raise UserInputError(f"data={dataset} has no pairs for a semi-supervised model.")
        return SemiSupervisedDataModule(split=semi_pairs, weights=weights, clean_validation=clean_validation, **common)
    raise UserInputError(f"unknown data kind '{kind}' (paired, unpaired, semi, test or clean).")
