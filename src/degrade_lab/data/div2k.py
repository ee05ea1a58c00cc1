"""DIV2K (Agustsson & Timofte, CVPRW 2017) as shipped, ``data=div2k data.root=DIR``: 800 training and 100 validation
HR images and their bicubic LR copies (``X2``, ``X3``, ``X4``; ``0001.png`` -> ``0001x4.png``).

Folders, found anywhere under ``data.root``: ``DIV2K_train_HR``, ``DIV2K_valid_HR``,
``DIV2K_train_LR_bicubic/X{scale}`` and ``DIV2K_valid_LR_bicubic/X{scale}``. A restorer trains on the HR / bicubic
LR pairs (the classic bicubic SR benchmark) or on HR images degraded on the fly (``data.degrader=...``); an
unpaired model sees the HR images as the clean domain and the LR ones as the degraded domain; tests are the
validation pairs. Without the LR folders, ``degrade-lab prepare div2k`` writes them (MATLAB bicubic, as the
released ones were made).
"""

from __future__ import annotations

from degrade_lab.data.named_sets import Part, build_module, locate, match_pairs
from degrade_lab.errors import UserInputError


def _parts(scale: int) -> dict[str, Part]:
    return {"train_hr": Part("training HR images", ("DIV2K_train_HR",)),
            "valid_hr": Part("validation HR images", ("DIV2K_valid_HR",)),
            "train_lr": Part(f"training bicubic x{scale} images", (f"DIV2K_train_LR_bicubic/X{scale}",)),
            "valid_lr": Part(f"validation bicubic x{scale} images", (f"DIV2K_valid_LR_bicubic/X{scale}",))}


def div2k(kind: str = "paired", root=None, scale: int = 4, test: str | None = "validation", degrader=None,
          degrader_ckpt=None, val_images: int = 16, val_crop=None, weights=None, clean_validation: bool = False,
          num_paired: int | None = None, split_seed: int = 0, **loader):
    """The data module for a model's ``kind`` (``"test"``: the validation pairs; ``"clean"``: the validation HR
    images); see the module docstring. ``num_paired``: a semi-supervised model's pairs (SeNM-VAE's split of the
    training pairs, seeded by ``split_seed``)."""
    scale = int(scale)
    needs_lr = kind in ("test", "unpaired", "semi") or (kind == "paired" and degrader is None) \
        or (bool(test) and kind != "clean")
    if needs_lr and scale not in (2, 3, 4):
        raise UserInputError(f"DIV2K ships bicubic LR images for scales 2, 3 and 4, got data.scale={scale} (a restorer "
                             "that degrades the HR images on the fly, data.degrader=..., takes any scale with "
                             "data.test=null).")
    if test not in (None, "validation"):
        raise UserInputError(f"data.test={test!r}: DIV2K's test split is 'validation' (its 100 HR images), or null.")
    needed = {"test": ["valid_hr", "valid_lr"], "clean": ["valid_hr"],
              "paired": ["train_hr"] if degrader is not None else ["train_hr", "train_lr"],
              "unpaired": ["train_hr", "train_lr"], "semi": ["train_hr", "train_lr"]}.get(kind, [])
    if test and kind not in ("test", "clean"):
        needed += ["valid_hr", "valid_lr"]
    found = locate(root, "div2k", _parts(scale), needed)
    template = f"{{stem}}x{scale}"

    def pairs(hr: str, lr: str):
        return match_pairs(found[hr], found[lr], f"DIV2K {hr} / {lr}", template, scale) if lr in found else None

    test_pairs = pairs("valid_hr", "valid_lr") if test or kind == "test" else None
    if kind == "test":
        from degrade_lab.data.datasets import PairedImageDataset

        return PairedImageDataset(None, scale=scale, pairs=test_pairs)
    if kind == "clean":
        return found["valid_hr"]
    train = pairs("train_hr", "train_lr")
    semi, record = None, None
    if kind == "semi":
        from degrade_lab.data.splits import describe, split_pair_list

        semi = split_pair_list(train, int(10 if num_paired is None else num_paired), int(split_seed),
                               where=f"DIV2K under '{root}'")
        record = describe(semi, root, split_seed)
    module = build_module(kind, dataset="div2k", root=root, scale=scale, train_pairs=train,
                          source_files=found.get("train_hr"), target_files=found.get("train_lr"),
                          test_pairs=test_pairs, semi_pairs=semi, degrader=degrader, degrader_ckpt=degrader_ckpt,
                          val_count=val_images, val_crop=val_crop, weights=weights, clean_validation=clean_validation,
                          **loader)
    module.split_record = record
    return module
