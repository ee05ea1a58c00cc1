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

from tqdm import tqdm

from degrade_lab.errors import UserInputError
from degrade_lab.metrics.noise_level import PATCH, estimate
from degrade_lab.metrics.pooled_noise import CHANNELS, MAX_PATCHES, pooled_noise
from degrade_lab.tasks.common import markdown_table
from degrade_lab.utils.io import atomic_write_json, list_images, read_image


def estimate_folder(folder: str | Path, bins: int = 16, max_patches: int = MAX_PATCHES, seed: int = 0,
                    per_image: bool = False, progress: bool = True, files: list[Path] | None = None) -> dict:
    """The noise of the images under ``folder`` (or of ``files``, paths under it), pooled
    (:func:`~degrade_lab.metrics.pooled_noise.pooled_noise`), as a JSON-ready dict; ``per_image`` adds each image's
    own std per channel."""
    files = list_images(folder, "degraded folder") if files is None else [Path(f) for f in files]
    images: dict[str, list] = {}

    def read():
        for file in tqdm(files, desc="estimate-noise", unit="image", disable=not progress):
            image = read_image(file)
            if per_image and min(image.shape[-2:]) >= 2 * PATCH:
                images[str(file.relative_to(Path(folder).expanduser()))] = [
                    None if not math.isfinite(v) else round(v, 6) for v in estimate(image).tolist()]
            yield str(file), image

    result = {"folder": str(folder), **pooled_noise(read(), len(files), bins, max_patches, seed)}
    if per_image:
        result["per_image"] = images
    return result


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
