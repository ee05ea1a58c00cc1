"""Low-light enhancement data as shipped, ``data=lol data.root=DIR``: LOL (Wei et al., BMVC 2018; 485 training and
15 test pairs of low-light / normal-light images, ``our485/{low,high}`` and ``eval15/{low,high}``, equal names) and
EnlightenGAN's unpaired training set (Jiang et al., TIP 2021; ``trainA``: low-light, ``trainB``: normal-light), which
LUD-VAE trains its low-light model on (sec. 4.4, Table 4).

A restorer trains on the 485 pairs (or on normal-light images degraded on the fly); an unpaired model on
EnlightenGAN's folders where they are found (``unpaired=auto``, or ``enlightengan``), otherwise on the 485 pairs'
two sides as unpaired domains (``unpaired=lol``); a semi-supervised one on SeNM-VAE's split of the 485 pairs; every
model tests on ``eval15``.
"""

from __future__ import annotations

from degrade_lab.data.named_sets import Part, build_module, locate, match_pairs
from degrade_lab.errors import UserInputError

PARTS = {"train_low": Part("LOL training low-light images", ("our485/low",)),
         "train_high": Part("LOL training normal-light images", ("our485/high",)),
         "test_low": Part("LOL test low-light images", ("eval15/low",)),
         "test_high": Part("LOL test normal-light images", ("eval15/high",)),
         "unpaired_low": Part("EnlightenGAN low-light images", ("trainA",)),
         "unpaired_high": Part("EnlightenGAN normal-light images", ("trainB",))}
UNPAIRED = ("auto", "enlightengan", "lol")


def lol(kind: str = "paired", root=None, test: str | None = "eval15", unpaired: str = "auto", degrader=None,
        degrader_ckpt=None, num_paired: int | None = None, split_seed: int = 0, val_images: int = 15, val_crop=None,
        weights=None, clean_validation: bool = False, scale: int = 1, **loader):
    """The data module for a model's ``kind`` (``"test"``: the 15 test pairs; ``"clean"``: their normal-light
    images); see the module docstring."""
    if int(scale) != 1:
        raise UserInputError(f"data=lol is an enhancement set (scale 1), got data.scale={scale}.")
    if test not in (None, "eval15"):
        raise UserInputError(f"data.test={test!r}: LOL's test split is 'eval15', or null.")
    if unpaired not in UNPAIRED:
        raise UserInputError(f"data.unpaired={unpaired!r}: choose {', '.join(UNPAIRED)}.")
    testing = ["test_low", "test_high"] if test or kind in ("test", "clean") else []
    training = {"paired": ["train_high"] if degrader is not None else ["train_low", "train_high"],
                "semi": ["train_low", "train_high"],
                "unpaired": {"enlightengan": ["unpaired_low", "unpaired_high"], "lol": ["train_low", "train_high"],
                             "auto": []}[unpaired]}.get(kind, [])
    found = locate(root, "lol", PARTS, testing + training)
    if kind == "unpaired" and unpaired == "auto" and not {"unpaired_low", "unpaired_high"} <= set(found) \
            and not {"train_low", "train_high"} <= set(found):
        locate(root, "lol", PARTS, ["unpaired_low", "unpaired_high"])  # neither set: stops, listing both
    test_pairs = match_pairs(found["test_high"], found["test_low"], "LOL eval15") if testing else None
    if kind == "test":
        from degrade_lab.data.datasets import PairedImageDataset

        return PairedImageDataset(None, pairs=test_pairs)
    if kind == "clean":
        return found["test_high"]
    train = match_pairs(found["train_high"], found["train_low"], "LOL our485") if "train_low" in found else None
    source, target = found.get("train_high"), found.get("train_low")
    if kind == "unpaired" and unpaired != "lol" and "unpaired_low" in found and "unpaired_high" in found:
        source, target = found["unpaired_high"], found["unpaired_low"]
    semi = record = None
    if kind == "semi":
        from degrade_lab.data.splits import describe, split_pair_list

        semi = split_pair_list(train, int(10 if num_paired is None else num_paired), int(split_seed),
                               where=f"LOL under '{root}'")
        record = describe(semi, root, split_seed)
    elif kind == "paired" and num_paired is not None and degrader is None:
        from degrade_lab.data.splits import split_pair_list

        train = split_pair_list(train, int(num_paired), int(split_seed), unpaired=False)["paired"]
    module = build_module(kind, dataset="lol", root=root, scale=1, train_pairs=train, source_files=source,
                          target_files=target, test_pairs=test_pairs, semi_pairs=semi, degrader=degrader,
                          degrader_ckpt=degrader_ckpt, val_count=val_images, val_crop=val_crop, weights=weights,
                          clean_validation=clean_validation, **loader)
    module.split_record = record
    return module
