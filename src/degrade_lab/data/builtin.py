"""The embedded default dataset: real photographs shipped inside installed packages.

Ten colour photos from scikit-image, scikit-learn and matplotlib are cut into 256x256 tiles
(photos of 800 px or more are first halved with MATLAB bicubic, which also cleans their own
sensor noise and JPEG artefacts). Whole photos go to one split, so the splits share no scene:

* ``source/``             clean tiles (the clean domain)
* ``target/``             camera-degraded tiles of OTHER photos (the degraded domain, never paired)
* ``paired/{clean,degraded}``  the source tiles with their true degradation (the oracle's pairs)
* ``test/{clean,degraded}``    held-out photos, same degradation (the benchmark)

``builtin_semi`` (SeNM-VAE's semi-supervised setting) cuts every training photo into 128x128 tiles,
degrades them all (``all/``) and splits them into 10 true pairs plus disjoint clean-only and
degraded-only tiles (``paired/``, ``source/``, ``target/``); its test pairs are the builtin ones.

Two degradations, different in kind, with fixed parameters and seeds, so that no recipe is tuned to one:

* ``camera`` (``builtin``, ``builtin_sr``, ``builtin_semi``): :class:`~degrade_lab.degradations.camera.CameraPipeline`
  with ``CAMERA`` below: shot-noise-dominated Poisson-Gaussian noise in linear camera RGB on a Bayer mosaic,
  bilinear demosaic, colour correction, sRGB gamma, JPEG q90. A bright-light camera photo.
* ``phone`` (``builtin_phone``, ``builtin_phone_semi``): ``PHONE`` below, a dim-light phone photo sent through a
  messaging app: lens and ISP softening (Gaussian blur, std 0.7 px), then the same camera chain with read noise
  dominating (high analogue gain: the raw noise is nearly flat in intensity, so the tone curve makes the shadows
  the noisiest, the opposite noise level function of ``camera``'s), then a strong re-compression (JPEG q60,
  blocks and smeared, spatially correlated noise). Its own photo split (``SPLITS_PHONE``).

``builtin_sr`` first shrinks the clean tile x4 with MATLAB bicubic (the papers' real-world SR setting), so its
degraded side is 64x64. Materialised once into ``<cache>/<name>/`` with ``manifest.json`` (SHA-256 of every
file).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from degrade_lab.degradations.base import Degrader
from degrade_lab.degradations.blur import GaussianBlur
from degrade_lab.degradations.camera import CameraPipeline
from degrade_lab.degradations.compose import Compose
from degrade_lab.degradations.resize import imresize
from degrade_lab.utils.io import atomic_write_json, sha256_file, write_png

TILE = 256
VERSION = 2
#: the builtin degradation, fixed (shot gain, read variance, JPEG quality)
CAMERA = {"shot": 0.01, "read": 2e-4, "quality": 90}
SPLITS = {
    "test": ["chelsea", "coffee", "grace_hopper"],
    "source": ["astronaut", "rocket", "china", "immunohistochemistry"],
    "target": ["flower", "hubble_deep_field", "retina"],
}
#: the second builtin degradation (see the module docstring): blur std (px), shot gain, read variance, JPEG quality
PHONE = {"blur": 0.7, "shot": 2e-3, "read": 1.5e-3, "quality": 60}
#: ``phone`` splits the same photos differently, no photo in the role it has in ``SPLITS`` (7 test, 13 source
#: and 6 target tiles)
SPLITS_PHONE = {
    "test": ["astronaut", "rocket", "hubble_deep_field"],
    "source": ["grace_hopper", "coffee", "chelsea", "flower", "retina"],
    "target": ["china", "immunohistochemistry"],
}
SEEDS = {"target": 1, "paired": 2, "test": 3, "semi": 4}
#: name -> (degradation, scale, layout): layout ``unpaired`` (source / target / paired / test) or ``semi``
VARIANTS = {
    "builtin": ("camera", 1, "unpaired"),
    "builtin_sr": ("camera", 4, "unpaired"),
    "builtin_semi": ("camera", 1, "semi"),
    "builtin_phone": ("phone", 1, "unpaired"),
    "builtin_phone_semi": ("phone", 1, "semi"),
}


def degradation(kind: str) -> Degrader:
    """The builtin degradation ``kind`` (``camera`` or ``phone``) as a Degrader."""
    if kind == "camera":
        return CameraPipeline(**CAMERA)
    if kind == "phone":
        camera = CameraPipeline(shot=PHONE["shot"], read=PHONE["read"], quality=PHONE["quality"])
        return Compose([GaussianBlur(sigma=PHONE["blur"]), camera])
    raise ValueError(f"unknown builtin degradation '{kind}'; choose camera or phone")
#: true pairs kept by builtin_semi (the paper's smallest setting)
NUM_PAIRED_SEMI = 10


def _load_photo(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            from PIL import Image

            return np.asarray(Image.open(handle).convert("RGB"))
    import skimage.data

    image = getattr(skimage.data, name)()
    if name == "retina":  # keep the lit disc, not the black surround
        image = image[450:962, 450:962]
    return image


def photo_tiles(name: str) -> list[torch.Tensor]:
    """Non-overlapping ``3 x 256 x 256`` tiles of one photo, float in [0, 1]."""
    image = torch.from_numpy(np.array(_load_photo(name)[..., :3])).permute(2, 0, 1).float() / 255
    if min(image.shape[-2:]) >= 800:
        image = imresize(image, 0.5).clamp(0, 1)
    image = (image * 255).round() / 255  # what an 8-bit PNG holds
    rows, cols = image.shape[1] // TILE, image.shape[2] // TILE
    top, left = (image.shape[1] - rows * TILE) // 2, (image.shape[2] - cols * TILE) // 2
    return [
        image[:, top + r * TILE : top + (r + 1) * TILE, left + c * TILE : left + (c + 1) * TILE]
        for r in range(rows)
        for c in range(cols)
    ]


def _degrade(clean: torch.Tensor, seed: int, scale: int, kind: str = "camera") -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    lr = imresize(clean, 1 / scale).clamp(0, 1) if scale > 1 else clean
    lr = (lr * 255).round() / 255
    return degradation(kind)(lr, generator)


def _build_semi(folder: Path, kind: str, splits: dict) -> None:
    """``builtin_semi``: every training photo (source and target photos alike) cut into 128x128 tiles
    and degraded (``all/``, 76 true pairs), split as SeNM-VAE does (``paired/`` 10 pairs, the rest
    halved into clean-only ``source/`` and degraded-only ``target/``, seed 0; ``split.json``), and the
    builtin test pairs (``test/``)."""
    from degrade_lab.data.splits import semi_supervised_split

    half = TILE // 2
    tiles = [(f"{n}_{i:02d}{j}", tile[:, r * half : (r + 1) * half, c * half : (c + 1) * half])
             for n in splits["source"] + splits["target"] for i, tile in enumerate(photo_tiles(n))
             for j, (r, c) in zip("abcd", ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True)]
    batch = torch.stack([t for _, t in tiles])
    for (name, tile), image in zip(tiles, _degrade(batch, SEEDS["semi"], 1, kind), strict=True):
        write_png(folder / "all" / "clean" / f"{name}.png", tile)
        write_png(folder / "all" / "degraded" / f"{name}.png", image)
    record = semi_supervised_split(folder / "all", folder, NUM_PAIRED_SEMI, seed=0)
    atomic_write_json(folder / "split.json", {**record, "from": "all"})  # not the temporary build folder
    test = [(f"{n}_{i:02d}", t) for n in splits["test"] for i, t in enumerate(photo_tiles(n))]
    for (name, tile), image in zip(test, _degrade(torch.stack([t for _, t in test]), SEEDS["test"], 1, kind),
                                   strict=True):
        write_png(folder / "test" / "clean" / f"{name}.png", tile)
        write_png(folder / "test" / "degraded" / f"{name}.png", image)


def _build(folder: Path, kind: str, scale: int, splits: dict) -> None:
    tiles = {split: [(f"{n}_{i:02d}", t) for n in names for i, t in enumerate(photo_tiles(n))]
             for split, names in splits.items()}
    for name, tile in tiles["source"]:
        write_png(folder / "source" / f"{name}.png", tile)
    batch = torch.stack([t for _, t in tiles["target"]])
    for (name, _), image in zip(tiles["target"], _degrade(batch, SEEDS["target"], scale, kind), strict=True):
        write_png(folder / "target" / f"{name}.png", image)
    for split, out in (("source", "paired"), ("test", "test")):
        batch = torch.stack([t for _, t in tiles[split]])
        for (name, tile), image in zip(tiles[split], _degrade(batch, SEEDS[out], scale, kind), strict=True):
            write_png(folder / out / "clean" / f"{name}.png", tile)
            write_png(folder / out / "degraded" / f"{name}.png", image)


def _manifest_ok(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    if data.get("version") != VERSION:
        return False
    return all((folder / rel).is_file() for rel in data["files"])


def ensure_builtin(name: str = "builtin", root: str | Path | None = None, verify: bool = False) -> Path:
    """Materialise the builtin dataset ``name`` (a key of ``VARIANTS``) once and return its folder.

    Built in a temporary folder and renamed into place, so an interrupted build leaves nothing
    half-written. ``verify=True`` re-checks every SHA-256 in the manifest.
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown builtin dataset '{name}'; choose {sorted(VARIANTS)}")
    from degrade_lab.paths import home_dir

    root = Path(root) if root else home_dir() / "data"
    folder = root / name
    if _manifest_ok(folder):
        if verify:
            files = json.loads((folder / "manifest.json").read_text())["files"]
            bad = [rel for rel, digest in files.items() if sha256_file(folder / rel) != digest]
            if bad:
                raise RuntimeError(f"builtin dataset '{folder}' is corrupted ({bad[:3]}); delete the folder to rebuild.")
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-"))
    try:
        kind, scale, layout = VARIANTS[name]
        splits = SPLITS_PHONE if kind == "phone" else SPLITS
        if layout == "semi":
            _build_semi(tmp, kind, splits)
        else:
            _build(tmp, kind, scale, splits)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*.png"))}
        atomic_write_json(
            tmp / "manifest.json",
            {"name": name, "version": VERSION, "scale": scale, "degradation": kind,
             kind: CAMERA if kind == "camera" else PHONE, "seeds": SEEDS, "splits": splits, "tile": TILE,
             "files": files},
        )
        if folder.exists() and not _manifest_ok(folder):  # an outdated or broken copy
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not _manifest_ok(folder):
                raise
            shutil.rmtree(tmp)  # another process finished the same build first; keep its copy
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
