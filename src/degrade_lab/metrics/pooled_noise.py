"""The noise of a set of images pooled as one (a folder, or a batch of synthetic images), and how far two
such readings lie apart.

:func:`pooled_noise` pools the weak-texture patches of every image (:mod:`degrade_lab.metrics.noise_level`,
Liu, Tanaka & Okutomi 2013) and reads: the std per channel, the same on 2x2- and 4x4-averaged images
(times 2 and 4; white noise reads the same at every scale, spatially correlated noise rises), the noise
level function (std per band of intensity) and its Poisson-Gaussian fit. The result is a JSON-ready dict
(``degrade-lab estimate-noise`` writes it).

:func:`noise_distance` compares two readings like with like (the estimator's bias on correlated noise
cancels): the mean squared log ratio of the multi-scale stds and of the noise level function's bands that
both readings have. Calibration and unpaired validation minimise it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d

from degrade_lab.errors import UserInputError
from degrade_lab.metrics.noise_level import PATCH, Patches, noise_level, noise_level_function, patches

#: std (pixels) of the Gaussian that takes the texture out of the background a residual is laid over
FIELD_SIGMA = 3.0
#: box-averaging factors of the multi-scale reading (white noise reads the same at each; correlated noise rises)
SCALES = (1, 2, 4)
#: patches pooled from a set of images (a seeded random subset of each image above it), and from one image
MAX_PATCHES, MAX_PATCHES_PER_IMAGE = 1 << 21, 1 << 19
CHANNELS = ("R", "G", "B")
ESTIMATOR = "Liu, Tanaka & Okutomi 2013 (IEEE TIP 22(12)): weak-texture 7x7 patches, PCA"


def _number(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def pooled_noise(images: Iterable[tuple[str, torch.Tensor]], count: int, bins: int = 16,
                 max_patches: int = MAX_PATCHES, seed: int = 0) -> dict:
    """The pooled noise reading of ``count`` images given as ``(name, C x H x W tensor in [0, 1])``; ``name``
    only names an image that is too small. See the module docstring for the keys."""
    share = max(PATCH * PATCH * 10, min(MAX_PATCHES_PER_IMAGE, max_patches // max(count, 1)))
    generator = torch.Generator().manual_seed(seed)
    pooled: dict[int, list[Patches]] = {scale: [] for scale in SCALES}
    for name, image in images:
        if min(image.shape[-2:]) < 2 * PATCH:
            raise UserInputError(f"image '{name}' is {image.shape[-2]}x{image.shape[-1]}: too small to estimate its "
                                 f"noise (at least {2 * PATCH} pixels each way).")
        for scale in SCALES:
            if min(image.shape[-2:]) >= 2 * PATCH * scale:
                averaged = F.avg_pool2d(image[None], scale)[0] if scale > 1 else image
                pooled[scale].append(patches(averaged, max_patches=share, generator=generator))
    if not pooled[1]:
        raise UserInputError("no image to estimate the noise of.")
    found = Patches.cat(pooled[1])
    sigma = noise_level(found)
    by_scale = {scale: noise_level(Patches.cat(parts)) * scale for scale, parts in pooled.items() if parts}
    function = noise_level_function(found, bins=bins)
    shot, read = function.poisson_gaussian()
    channels = CHANNELS[: sigma.numel()]
    return {
        "images": len(pooled[1]), "patches": found.count, "estimator": ESTIMATOR,
        "scale": "0-255 (sigma, intensity); shot / read in [0, 1] units (variance = shot * x + read)",
        "sigma": dict(zip(channels, (_number(v) for v in sigma.tolist()), strict=True)),
        "sigma_mean": _number(float(sigma.mean())),
        "sigma_by_scale": {str(scale): dict(zip(channels, (_number(v) for v in value.tolist()), strict=True))
                           for scale, value in by_scale.items()},
        "noise_level_function": {
            "intensity": [_number(v) for v in function.intensity.tolist()],
            "sigma": {c: [_number(v) for v in row] for c, row in zip(channels, function.sigma.tolist(), strict=True)},
            "patches": {c: row for c, row in zip(channels, function.count.tolist(), strict=True)},
        },
        "poisson_gaussian": {c: {"shot": _number(a), "read": _number(b)}
                             for c, a, b in zip(channels, shot.tolist(), read.tolist(), strict=True)},
    }


def per_pixel_std(reading: dict) -> float:
    """One figure for the per-pixel noise std (0-255): the largest of the scales' readings (averaged over
    channels). White noise reads the same at each; correlated noise reads low at full resolution and
    approaches its std at 4x4 (docs/metrics.md). NaN when no scale could be read (no weak-texture patch)."""
    readings = [[v for v in by_channel.values() if v is not None] for by_channel in reading["sigma_by_scale"].values()]
    return max((sum(values) / len(values) for values in readings if values), default=math.nan)


def _centred_residual(fake: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``fake - image`` (on the CPU, float) with its per-channel mean over the unclipped pixels of ``fake``
    removed (a colour shift is not noise), and the mask of those pixels."""
    if fake.shape != image.shape:
        raise UserInputError("calibration by the synthetic residual needs a degrader that keeps the image size "
                             f"(got {tuple(image.shape)} -> {tuple(fake.shape)}): use statistic=reading.")
    fake = fake.float().cpu()
    residual, valid = fake - image.float().cpu(), (fake > 0) & (fake < 1)
    mean = (residual * valid).sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp_min(1)
    return (residual - mean[:, None, None]) * valid, valid


def residual_sums(synthetic: list[torch.Tensor], clean: list[torch.Tensor]) -> tuple[float, int]:
    """The sum of squares ([0, 1] units) of ``synthetic - clean`` over the pixels where the synthetic image is not
    clipped, each image's per-channel mean removed (a colour shift is not noise), and the number of those pixels:
    the parts of :func:`residual_std`, which add up over batches and DDP ranks."""
    total, count = 0.0, 0
    for fake, image in zip(synthetic, clean, strict=True):
        residual, valid = _centred_residual(fake, image)
        total += float((residual ** 2).sum())
        count += int(valid.sum())
    return total, count


def residual_std(synthetic: list[torch.Tensor], clean: list[torch.Tensor]) -> float:
    """Per-pixel std (0-255) of ``synthetic - clean`` (:func:`residual_sums`); NaN when every pixel is clipped."""
    total, count = residual_sums(synthetic, clean)
    return 255.0 * math.sqrt(total / count) if count else math.nan


def residual_fields(synthetic: list[torch.Tensor], clean: list[torch.Tensor],
                    sigma: float = FIELD_SIGMA) -> list[torch.Tensor]:
    """Each ``synthetic - clean`` residual (its per-channel mean removed, as in :func:`residual_sums`) laid over
    ``clean`` blurred by a Gaussian of ``sigma`` pixels: the synthetic noise with its own spatial correlation and
    its strength everywhere, textured regions included, on a background of the same intensities with no texture.
    The blind estimator reads such a field as it reads the real folder's noise (like with like: its bias on
    correlated or JPEG'd noise is the same on both) but, unlike on the synthetic image itself, it also sees the
    noise a model puts in textured regions. Pixels the synthetic image clipped are set to 0, so that the estimator
    leaves the patches touching them out."""
    fields = []
    size = 2 * math.ceil(3 * sigma) + 1
    for fake, image in zip(synthetic, clean, strict=True):
        residual, valid = _centred_residual(fake, image)
        background = gaussian_blur2d(image.float().cpu()[None], (size, size), (sigma, sigma),
                                     border_type="replicate")[0]
        fields.append(torch.where(valid, background + residual, 0.0))
    return fields


def noise_std_per_image(images: torch.Tensor) -> torch.Tensor:
    """Each image's per-pixel noise std (0-255, :func:`per_pixel_std` of its own reading) for a ``B x C x H x W``
    batch in [0, 1]: the level a non-blind restorer is given with ``noise_level=auto``."""
    levels = [per_pixel_std(pooled_noise([(f"image {i}", image.float().cpu())], 1)) for i, image in enumerate(images)]
    return torch.tensor(levels, device=images.device)


def _log_ratios(reading: dict, reference: dict) -> tuple[list[float], list[float]]:
    """``log(reading / reference)`` of the multi-scale stds, and of the noise-level-function bands, that both
    readings have."""
    scales, bands = [], []
    for scale, by_channel in reference["sigma_by_scale"].items():
        for channel, value in by_channel.items():
            other = reading["sigma_by_scale"].get(scale, {}).get(channel)
            if value and other:
                scales.append(math.log(other / value))
    ours = reading["noise_level_function"]["sigma"]
    for channel, row in reference["noise_level_function"]["sigma"].items():
        for value, other in zip(row, ours.get(channel, []), strict=False):
            if value and other:
                bands.append(math.log(other / value))
    return scales, bands


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def noise_distance(reading: dict, reference: dict) -> float:
    """How far the noise ``reading`` (of synthetic images) lies from ``reference`` (of the real degraded
    folder): the mean squared log ratio of their multi-scale stds, averaged with that of the noise level
    function's bands both have (0 = the same; 0.01 is about a 10 % difference). ``inf`` when they share no
    reading."""
    parts = [_mean([r * r for r in ratios]) for ratios in _log_ratios(reading, reference) if ratios]
    return _mean(parts) if parts else math.inf


def noise_ratio(reading: dict, reference: dict) -> float:
    """The geometric mean of ``reading / reference`` over the multi-scale stds: above 1, the synthetic noise
    is too strong."""
    scales, _ = _log_ratios(reading, reference)
    return math.exp(_mean(scales)) if scales else math.nan
