"""Calibration of a learned degrader from the degraded folder alone: one option (LUD-VAE's pre-noise level,
DeFlow's temperature, SeNM-VAE's level) chosen so that the noise of its synthetic images matches the noise read
on the real degraded images. No clean / degraded pair is used: the synthetic images are made from the clean
folder, the reference is read from the degraded folder by the blind estimator
(:func:`~degrade_lab.metrics.pooled_noise.pooled_noise`: multi-scale stds and the noise level function).

Three statistics of the synthetic images (``statistic``):

* ``reading`` (LUD-VAE, SeNM-VAE): the same blind estimator on the synthetic images, so that its bias on
  correlated noise cancels. It reads weak-texture patches only, so it measures a model whose noise is as
  strong in flat regions as in textured ones;
* ``residual`` (DeFlow): the per-pixel std of ``synthetic - T(clean)`` over every unclipped pixel (each image's
  per-channel mean removed; T the model's task operator, x4 bicubic for real-world SR), against the target's
  reading. A model whose noise grows with texture (DeFlow's at CPU budgets: its textured regions carry twice the
  noise of its flat ones) reads low in flat patches, so matching the reading over-amplifies it; its own residual
  measures all of it. The estimator's bias is then not cancelled (it under-reads spatially correlated and
  JPEG'd noise, docs/metrics.md);
* ``residual_reading``: the blind estimator on ``synthetic - T(clean)`` laid over T(clean) blurred by a 3-pixel
  Gaussian (:func:`~degrade_lab.metrics.pooled_noise.residual_fields`): like ``reading`` it compares the
  estimator with itself, so its bias on correlated noise cancels; like ``residual`` it sees the noise of textured
  regions, which the field no longer hides behind texture.

The option is searched on a log scale, first on a coarse grid, then by golden-section search inside the best
grid cell; every evaluation synthesizes the same images with the same seeds, so the
distance is a smooth function of the option.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from tqdm import tqdm

from degrade_lab.errors import UserInputError
from degrade_lab.metrics.noise_match import STATISTICS
from degrade_lab.metrics.pooled_noise import (
    noise_distance,
    noise_ratio,
    per_pixel_std,
    pooled_noise,
    residual_fields,
    residual_std,
)

log = logging.getLogger(__name__)

GOLDEN = (math.sqrt(5) - 1) / 2
#: weak-texture patches read from the synthetic images of each evaluation (the same positions every time)
PATCHES = 1 << 16


def synthesize(degrader, clean: list[torch.Tensor], option: str, value: float, seed: int = 0,
               batch_size: int = 8) -> list[torch.Tensor]:
    """``degrader`` applied to ``clean`` (``C x H x W`` images on the degrader's device; consecutive images of one
    size are batched) with ``option`` fixed at ``value``; the degrader's random numbers come from ``seed``."""
    degrader.set_option(option, value)
    device = clean[0].device
    generator = torch.Generator(device=device).manual_seed(seed)
    synthetic, batch = [], []

    def flush():
        if batch:
            synthetic.extend(degrader(torch.stack(batch), generator).float().cpu())
            batch.clear()

    with torch.inference_mode():
        for image in clean:
            if batch and (len(batch) == batch_size or batch[0].shape != image.shape):
                flush()
            batch.append(image)
        flush()
    return synthetic


def reading_of(images: list[torch.Tensor], label: str) -> dict:
    """The pooled noise reading of ``images`` (:data:`PATCHES` patches in all), each named ``label i``."""
    return pooled_noise(((f"{label} {i}", image) for i, image in enumerate(images)), len(images), max_patches=PATCHES)


def synthetic_reading(degrader, clean: list[torch.Tensor], option: str, value: float, seed: int = 0) -> dict:
    """The pooled noise reading of the synthetic images (:func:`synthesize`)."""
    return reading_of(synthesize(degrader, clean, option, value, seed), "synthetic")


def operated(degrader, clean: list[torch.Tensor]) -> list[torch.Tensor]:
    """``clean`` after the model's task operator T (x4 bicubic for real-world SR, the identity for denoising):
    what its synthetic images are compared with by the residual. T is deterministic (the task's known operator)."""
    operator = getattr(getattr(degrader, "module", None), "clean_operator", None)
    if operator is None:
        return clean
    with torch.inference_mode():
        return [operator(image[None].float())[0] for image in clean]


def search(distance: Callable[[float], float], low: float, high: float, grid: int = 7, refine: int = 8,
           progress: bool = False) -> tuple[float, list[tuple[float, float]]]:
    """The ``value`` in ``[low, high]`` (> 0) minimising ``distance``: a log-spaced grid of ``grid`` points,
    then ``refine`` golden-section steps between the best point's neighbours. Returns the best value and
    every ``(value, distance)`` evaluated, in order."""
    if not 0 < low < high:
        raise ValueError(f"the search range must satisfy 0 < low < high, got [{low}, {high}]")
    tried: list[tuple[float, float]] = []
    bar = tqdm(total=grid + refine, desc="calibrate", unit="try", disable=not progress)

    def evaluate(log_value: float) -> float:
        value = math.exp(log_value)
        result = distance(value)
        tried.append((value, result))
        bar.update(1)
        bar.set_postfix(value=f"{value:.3g}", distance=f"{result:.3g}")
        return result

    a, b = math.log(low), math.log(high)
    points = [a + (b - a) * i / (grid - 1) for i in range(grid)]
    values = [evaluate(p) for p in points]
    best = min(range(grid), key=values.__getitem__)
    lo, hi = points[max(best - 1, 0)], points[min(best + 1, grid - 1)]
    x1, x2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    f1, f2 = evaluate(x1), evaluate(x2)
    for _ in range(refine - 2):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - GOLDEN * (hi - lo)
            f1 = evaluate(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + GOLDEN * (hi - lo)
            f2 = evaluate(x2)
    bar.close()
    value, _ = min(tried, key=lambda pair: pair[1])
    return value, tried


def calibrate(degrader, clean: list[torch.Tensor], reference: dict, option: str, low: float, high: float,
              seed: int = 0, progress: bool = False, statistic: str = "reading") -> dict:
    """Choose ``option`` of ``degrader`` (a :class:`~degrade_lab.degradations.learned.LearnedDegrader`) so that
    its synthetic images from ``clean`` match ``reference`` (the pooled reading of the degraded folder) by
    ``statistic`` (see the module docstring). Returns the JSON-ready calibration record stored in checkpoints."""
    if statistic not in STATISTICS:
        raise UserInputError(f"calibration statistic must be one of {STATISTICS}, got {statistic!r}")
    readings: dict[float, dict] = {}
    target_std = per_pixel_std(reference)
    references = clean if statistic == "reading" else operated(degrader, clean)

    def distance(value: float) -> float:
        if statistic == "reading":
            readings[value] = synthetic_reading(degrader, clean, option, value, seed)
            return noise_distance(readings[value], reference)
        if statistic == "residual_reading":
            readings[value] = reading_of(residual_fields(synthesize(degrader, clean, option, value, seed), references),
                                         "residual")
            return noise_distance(readings[value], reference)
        std = residual_std(synthesize(degrader, clean, option, value, seed), references)
        readings[value] = {"residual_std": std}
        return math.log(std / target_std) ** 2 if std > 0 else math.inf

    if not math.isfinite(target_std):
        raise UserInputError("no noise could be read in the degraded folder (no flat, unclipped patch).")
    best, tried = search(distance, low, high, progress=progress)
    if not math.isfinite(min(d for _, d in tried)):
        raise UserInputError(f"no noise could be read in the synthetic images at any {option} in [{low:g}, {high:g}] "
                             "(flat or clipped outputs).")
    reading, value = readings[best], float(f"{best:.5g}")
    degrader.set_option(option, value)
    at_edge = min(abs(math.log(value / low)), abs(math.log(value / high))) < 0.02
    if at_edge:
        log.warning("the calibrated %s = %g lies at the edge of the range searched [%g, %g]: the model's noise "
                    "cannot be matched inside it (range=[LOW,HIGH] searches wider; a model still denoising "
                    "needs more training).", option, value, low, high)
    if statistic != "residual":
        synthetic_std, ratio = per_pixel_std(reading), noise_ratio(reading, reference)
    else:
        synthetic_std = reading["residual_std"]
        ratio = synthetic_std / target_std
    return {
        "option": option, "value": value, "statistic": statistic,
        "distance": round(min(d for _, d in tried), 6),
        "ratio": round(ratio, 4),
        "noise_std_synthetic": round(synthetic_std, 3),
        "noise_std_target": round(target_std, 3),
        "tried": [[float(f"{v:.5g}"), float(f"{d:.5g}")] for v, d in tried],
        "images": len(clean), "seed": seed, "at_edge": at_edge,
    }
