"""The real-world x4 super-resolution challenges as their organisers ship them: AIM 2019 (Lugmayr et al., track 2)
and NTIRE 2020 (track 1), ``data=aim19`` / ``data=ntire20 data.root=DIR``.

Each has unpaired training folders, a source domain of degraded images and a target domain of clean ones, and 100
validation pairs (a clean HR image and its degraded x4-smaller input). Folder names, found anywhere under
``data.root`` (images directly in them, or in the ``1x/`` sub-folder DeFlow's preparation script leaves):

============  =====================  ==================  ===================  ===================
data set      clean training         degraded training   validation clean     validation degraded
============  =====================  ==================  ===================  ===================
``aim19``     ``train-clean-images`` ``train-noisy-images`` ``valid-gt-clean``  ``valid-input-noisy``
``ntire20``   ``Corrupted-tr-y``     ``Corrupted-tr-x``  ``track1-valid-gt``  ``Corrupted-va-x``
============  =====================  ==================  ===================  ===================

The degraded training images are at the LR scale already (LUD-VAE and DeFlow learn the degradation there, after a
bicubic x4 of the clean side: their presets' ``clean_operator``), so the modules' scale is 4 for the validation
pairs and the clean side. SeNM-VAE's split (sec. 4.6, Tables 4-5) keeps the first ``num_paired`` (10) validation pairs
(sorted by name) as its pairs and tests on the other 90; ``test=senmvae`` scores every model on those 90, and a
restorer given no on-the-fly degrader then trains on the 10 (Tables 4-5's "ESRGAN with 10 paired data").
"""

from __future__ import annotations

from degrade_lab.data.named_sets import Part, build_module, locate, match_pairs
from degrade_lab.errors import UserInputError

LAYOUTS = {
    "aim19": {"clean": Part("clean training images", ("train-clean-images",)),
              "degraded": Part("degraded training images", ("train-noisy-images",)),
              "valid_clean": Part("validation ground truth", ("valid-gt-clean",)),
              "valid_degraded": Part("validation inputs", ("valid-input-noisy",))},
    "ntire20": {"clean": Part("clean training images", ("Corrupted-tr-y",)),
                "degraded": Part("degraded training images", ("Corrupted-tr-x",)),
                "valid_clean": Part("validation ground truth", ("track1-valid-gt",)),
                "valid_degraded": Part("validation inputs", ("Corrupted-va-x",))},
}
SCALE = 4
TESTS = ("validation", "senmvae")


def _needed(kind: str, test, degrader) -> list[str]:
    needed = ["valid_clean", "valid_degraded"] if test or kind == "semi" else []
    if kind in ("unpaired", "semi"):
        needed += ["clean", "degraded"]
    elif kind == "paired" and (degrader is not None or test != "senmvae"):  # else: SeNM-VAE's 10 validation pairs
        needed += ["clean"]
    elif kind == "clean":
        needed = ["valid_clean"]
    return needed


def real_world_sr(challenge: str, kind: str = "paired", root=None, test: str | None = "validation",
                  num_paired: int = 10, degrader=None, degrader_ckpt=None, scale: int = SCALE, val_images: int = 16,
                  val_crop=None, weights=None, clean_validation: bool = False, **loader):
    """The data module (or, for ``kind="test"`` / ``"clean"``, the test pairs / clean test images) of ``challenge``
    (``aim19`` or ``ntire20``); see the module docstring. A restorer (``kind="paired"``) needs ``degrader``: the
    challenges have no training pairs."""
    if int(scale) != SCALE:
        raise UserInputError(f"data={challenge} is a x4 super-resolution set, got data.scale={scale}.")
    if test not in (None, *TESTS):
        raise UserInputError(f"data.test={test!r}: choose validation (the 100 pairs), senmvae (the 90 pairs after "
                             f"SeNM-VAE's {num_paired}) or null.")
    found = locate(root, challenge, LAYOUTS[challenge], _needed(kind, test, degrader))
    where = f"data={challenge} validation"
    valid = match_pairs(found["valid_clean"], found["valid_degraded"], where, scale=SCALE) if "valid_degraded" in found else []
    if valid and (test == "senmvae" or kind == "semi") and not 0 < int(num_paired) < len(valid):
        raise UserInputError(f"data.num_paired={num_paired}: {challenge} has {len(valid)} validation pairs.")
    paired, rest = valid[: int(num_paired)], valid[int(num_paired):]
    test_pairs = (rest if test == "senmvae" else valid) if test else None
    if kind == "test":
        if not test_pairs:
            raise UserInputError(f"data={challenge} with data.test=null has no test pairs.")
        from degrade_lab.data.datasets import PairedImageDataset

        return PairedImageDataset(None, scale=SCALE, pairs=test_pairs)
    if kind == "clean":
        return [clean for _, clean, _ in (test_pairs or [])] or found["valid_clean"]
    semi = None
    if kind == "semi":
        semi = {"paired": paired, "source": [(p.stem, p, p) for p in found["clean"]],
                "target": [(p.stem, p, p) for p in found["degraded"]]}
        test_pairs = rest if test else None
    train_pairs = paired if kind == "paired" and degrader is None and test == "senmvae" else None
    module = build_module(kind, dataset=challenge, root=root, scale=SCALE, train_pairs=train_pairs,
                          source_files=found.get("clean"), target_files=found.get("degraded"),
                          test_pairs=test_pairs, semi_pairs=semi, degrader=degrader, degrader_ckpt=degrader_ckpt,
                          val_count=val_images, val_crop=val_crop, weights=weights, clean_validation=clean_validation,
                          **loader)
    module.split_record = {"paired": [name for name, _, _ in paired], "test": [n for n, _, _ in test_pairs or []]} \
        if kind == "semi" else None
    return module


def aim19(**options):
    """``data=aim19``: AIM 2019 real-world SR, track 2 (:func:`real_world_sr`)."""
    return real_world_sr("aim19", **options)


def ntire20(**options):
    """``data=ntire20``: NTIRE 2020 real-world SR, track 1 (:func:`real_world_sr`)."""
    return real_world_sr("ntire20", **options)
