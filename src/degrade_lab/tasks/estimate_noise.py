"""``degrade-lab estimate-noise DIR``: the noise of a folder of degraded images, with no clean reference.

Prints the noise standard deviation per channel (also read on 2x2- and 4x4-averaged images, which shows
spatially correlated noise), the noise level function (the std per band of intensity)
and its Poisson-Gaussian fit, and writes them as JSON (``--json``; default ``noise_<folder>.json`` in the
current folder, never inside ``DIR``). The estimator is Liu, Tanaka & Okutomi (2013), weak-texture patches
and PCA (:mod:`degrade_lab.metrics.noise_level`); the folder is estimated as one image (its patches pooled).
It under-reads spatially correlated noise (demosaicked, JPEG'd): compare folders through it rather than
reading its figure as the per-pixel std.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from degrade_lab.errors import UserInputError
from degrade_lab.metrics.noise_level import (
    PATCH,
    Patches,
    estimate,
    noise_level,
    noise_level_function,
    patches,
)
from degrade_lab.tasks.common import markdown_table
from degrade_lab.utils.io import atomic_write_json, list_images, read_image

#: box-averaging factors of the multi-scale reading (white noise reads the same at each; correlated noise rises)
SCALES = (1, 2, 4)
#: patches pooled from a whole folder (a seeded random subset of each image above it), and from one image
MAX_PATCHES, MAX_PATCHES_PER_IMAGE = 1 << 21, 1 << 19
CHANNELS = ("R", "G", "B")


def _number(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def estimate_folder(folder: str | Path, bins: int = 16, max_patches: int = MAX_PATCHES, seed: int = 0,
                    per_image: bool = False, progress: bool = True) -> dict:
    """The noise of the images under ``folder`` as a JSON-ready dict (see the module docstring)."""
    files = list_images(folder, "degraded folder")
    share = max(PATCH * PATCH * 10, min(MAX_PATCHES_PER_IMAGE, max_patches // len(files)))
    generator = torch.Generator().manual_seed(seed)
    pooled, images = {scale: [] for scale in SCALES}, {}
    for file in tqdm(files, desc="estimate-noise", unit="image", disable=not progress):
        image = read_image(file)
        if min(image.shape[-2:]) < 2 * PATCH:
            raise UserInputError(f"image '{file}' is {image.shape[-2]}x{image.shape[-1]}: too small to estimate its "
                                 f"noise (at least {2 * PATCH} pixels each way).")
        for scale in SCALES:
            if min(image.shape[-2:]) >= 2 * PATCH * scale:
                averaged = F.avg_pool2d(image[None], scale)[0] if scale > 1 else image
                pooled[scale].append(patches(averaged, max_patches=share, generator=generator))
        if per_image:
            images[str(file.relative_to(Path(folder).expanduser()))] = [_number(v) for v in estimate(image).tolist()]
    found = Patches.cat(pooled[1])
    sigma = noise_level(found)
    by_scale = {scale: noise_level(Patches.cat(parts)) * scale for scale, parts in pooled.items() if parts}
    function = noise_level_function(found, bins=bins)
    shot, read = function.poisson_gaussian()
    result = {
        "folder": str(folder), "images": len(files), "patches": found.count,
        "estimator": "Liu, Tanaka & Okutomi 2013 (IEEE TIP 22(12)): weak-texture 7x7 patches, PCA",
        "scale": "0-255 (sigma, intensity); shot / read in [0, 1] units (variance = shot * x + read)",
        "sigma": dict(zip(CHANNELS, (_number(v) for v in sigma.tolist()), strict=True)),
        "sigma_mean": _number(float(sigma.mean())),
        "sigma_by_scale": {str(scale): dict(zip(CHANNELS, (_number(v) for v in value.tolist()), strict=True))
                           for scale, value in by_scale.items()},
        "noise_level_function": {
            "intensity": [_number(v) for v in function.intensity.tolist()],
            "sigma": {c: [_number(v) for v in row] for c, row in zip(CHANNELS, function.sigma.tolist(), strict=True)},
            "patches": {c: row for c, row in zip(CHANNELS, function.count.tolist(), strict=True)},
        },
        "poisson_gaussian": {c: {"shot": _number(a), "read": _number(b)}
                             for c, a, b in zip(CHANNELS, shot.tolist(), read.tolist(), strict=True)},
    }
    if per_image:
        result["per_image"] = images
    return result


def per_pixel_std(result: dict) -> float:
    """One figure for the folder's per-pixel noise std (0-255): the largest of the three scales' readings
    (averaged over channels). White noise reads the same at each; correlated noise reads low at full resolution
    and approaches its std at 4x4 (docs/metrics.md)."""
    readings = [[v for v in by_channel.values() if v is not None] for by_channel in result["sigma_by_scale"].values()]
    return max(sum(values) / len(values) for values in readings if values)


def summary(result: dict) -> str:
    """The printed report: sigma and the Poisson-Gaussian fit per channel, then the noise level function."""
    def show(value):
        return "n/a" if value is None else f"{value:.3g}" if abs(value) < 0.1 else f"{value:.2f}"

    fit = result["poisson_gaussian"]
    scales = result["sigma_by_scale"]
    lines = [f"noise of {result['folder']}: {result['images']} images, {result['patches']} patches "
             f"({result['estimator']})", "",
             markdown_table(["channel", "sigma (0-255)", *(f"x{s} averaged, times {s}" for s in scales if s != "1"),
                             "shot", "read"],
                            [[c, show(result["sigma"][c]), *(show(scales[s][c]) for s in scales if s != "1"),
                              show(fit[c]["shot"]), show(fit[c]["read"])] for c in CHANNELS]), "",
             "The x2 / x4 columns read the images box-averaged 2x2 / 4x4, times 2 / 4: white noise reads the same "
             "in every column; values rising with the scale mean spatially correlated noise (demosaicking, "
             "JPEG), whose per-pixel std the last column approaches.", "",
             "noise level function (sigma, 0-255, per band of mean intensity; n/a: too few flat patches):", ""]
    function = result["noise_level_function"]
    rows = [[f"{x:.0f}", *(show(function["sigma"][c][i]) for c in CHANNELS)]
            for i, x in enumerate(function["intensity"])]
    lines.append(markdown_table(["intensity", *CHANNELS], rows))
    return "\n".join(lines)


def _default_json(folder: Path) -> Path:
    return Path.cwd() / f"noise_{folder.resolve().name or 'folder'}.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="degrade-lab estimate-noise", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of degraded images (searched recursively)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the result (default: "
                        "noise_<folder>.json in the current folder)")
    parser.add_argument("--bins", type=int, default=16, help="bands of intensity of the noise level function")
    parser.add_argument("--max-patches", type=int, default=MAX_PATCHES, help="patches pooled from the folder")
    parser.add_argument("--per-image", action="store_true", help="also estimate each image on its own")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patch subset of large folders")
    args = parser.parse_args(argv)
    try:
        if args.bins < 1 or args.max_patches < PATCH * PATCH * 10:
            raise UserInputError(f"--bins must be >= 1 and --max-patches >= {PATCH * PATCH * 10}.")
        target = (args.json or _default_json(args.folder)).expanduser().resolve()
        if args.folder.expanduser().resolve() in target.parents:
            raise UserInputError(f"--json {target} lies inside the input folder {args.folder}; inputs are never written.")
        result = estimate_folder(args.folder, args.bins, args.max_patches, args.seed, args.per_image)
    except UserInputError as err:
        print(f"degrade-lab estimate-noise: error: {err}", file=sys.stderr)
        return 2
    print(summary(result))
    atomic_write_json(target, result)
    print(f"\nwritten: {target}")
    return 0
