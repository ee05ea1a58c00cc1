"""The noise of degraded images with no clean reference: weak-texture patches and PCA.

Liu, Tanaka & Okutomi, "Single-image noise level estimation for blind denoising", IEEE TIP 22(12), 2013.
For a patch ``y = z + n`` (``n ~ N(0, sigma^2 I)``), the smallest eigenvalue of the patches' covariance is
``sigma^2`` when the clean patches ``z`` span a subspace of lower dimension (eq. 7), which holds for
weak-texture patches. Texture is the patch's gradient energy ``||D y||^2`` (``D``: central differences
inside the patch, eq. 13); for a flat patch it follows ``sigma^2 Gamma(r / 2, 2 tr(D^T D) / r)``
(``r = rank(D^T D)``, eq. 17), so the patches below that distribution's ``1 - 1e-6`` quantile are
weak-textured. The algorithm alternates: estimate ``sigma`` from the selected patches (all at first), select
again with the new threshold (3 rounds, patches of 7 x 7, as the authors' code). Per channel, on the 0-255
scale; like the authors' code, the second-moment matrix is not mean-centred. Unlike it, patches with a clipped
pixel (0 or 255) are left out: clipping squashes their noise and, flat, they would be chosen first.

Signal-dependent noise: the same estimate on the patches of each band of mean intensity gives the noise level
function ``sigma(intensity)``; a weighted least-squares line through ``sigma^2 = shot * x + read`` gives the
Poisson-Gaussian parameters in the units of :class:`~degrade_lab.degradations.noise.PoissonGaussian`.

A folder is estimated as one image: its patches are pooled (a seeded random subset of each image when the
folder has more than ``max_patches``) and the algorithm runs once, so a folder has one threshold per channel
and intensity band. Written here because no maintained Python library has it (scikit-image's
``estimate_sigma`` is the wavelet median estimator, which texture biases upward).

Measured on the builtin clean tiles with white Gaussian noise (``benchmarks/bench_noise_level.py``): within a
few percent above sigma = 5; it reads noise that is spatially correlated (demosaicked, JPEG'd, denoised)
as weaker than its per-pixel std, because the smallest eigenvalue belongs to the highest frequencies, where
correlated noise has the least power. Compare like with like (synthetic images against real ones through this
same estimator) and that bias cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

PATCH = 7
CONFIDENCE = 1 - 1e-6
ROUNDS = 3
#: a band of intensities needs this many patches per dimension to be estimated
MIN_PATCHES_PER_DIMENSION = 10


@dataclass
class Patches:
    """Patches of one or more images, per channel: ``values`` ``C x N x P^2`` (0-255), ``texture`` ``C x N``
    (gradient energy, eq. 13), ``mean`` ``C x N`` (the patch's mean intensity, 0-255)."""

    values: torch.Tensor
    texture: torch.Tensor
    mean: torch.Tensor

    @property
    def count(self) -> int:
        return self.values.shape[1]

    @staticmethod
    def cat(parts: list[Patches]) -> Patches:
        return Patches(torch.cat([p.values for p in parts], dim=1), torch.cat([p.texture for p in parts], dim=-1),
                       torch.cat([p.mean for p in parts], dim=-1))


def gradient_operator(patch: int = PATCH) -> torch.Tensor:
    """``D``: the horizontal and vertical central differences (``[-1/2, 0, 1/2]``) that fit inside a
    ``patch x patch`` patch, as a matrix acting on the flattened patch (eq. 13)."""
    eye = torch.eye(patch * patch, dtype=torch.float64).reshape(-1, patch, patch)
    horizontal = (eye[:, :, 2:] - eye[:, :, :-2]) / 2
    vertical = (eye[:, 2:, :] - eye[:, :-2, :]) / 2
    return torch.cat([horizontal.flatten(1), vertical.flatten(1)], dim=1).T


def texture_threshold(patch: int = PATCH, confidence: float = CONFIDENCE) -> float:
    """``tau_0``: the ``confidence`` quantile of a flat patch's gradient energy divided by ``sigma^2``
    (eq. 17-18)."""
    from scipy.stats import gamma  # the inverse regularised incomplete gamma function

    operator = gradient_operator(patch)
    gram = operator.T @ operator
    rank = int(torch.linalg.matrix_rank(gram))
    return float(gamma.ppf(confidence, rank / 2, scale=2 * float(gram.trace()) / rank))


def patches(image: torch.Tensor, patch: int = PATCH, max_patches: int | None = None,
            generator: torch.Generator | None = None) -> Patches:
    """All overlapping ``patch x patch`` patches of a ``C x H x W`` image in [0, 1] (or a random subset of
    ``max_patches``), with their texture and mean intensity, on the 0-255 scale. A patch with a clipped pixel
    (0 or 255) in a channel gets an infinite texture there: the estimate leaves it out."""
    x = image.float() * 255
    gradient_h = ((x[:, :, 2:] - x[:, :, :-2]) / 2) ** 2
    gradient_v = ((x[:, 2:, :] - x[:, :-2, :]) / 2) ** 2
    inner = patch * (patch - 2)  # the gradients that fit inside a patch, each way
    texture = (F.avg_pool2d(gradient_h[:, None], (patch, patch - 2), stride=1)
               + F.avg_pool2d(gradient_v[:, None], (patch - 2, patch), stride=1)).flatten(1) * inner
    mean = F.avg_pool2d(x[:, None], patch, stride=1).flatten(1)
    # a patch touching black or white was clipped: its noise is squashed, and being flat it would be chosen
    clipped = F.max_pool2d(((image == 0) | (image == 1)).float()[:, None], patch, stride=1).flatten(1) > 0
    texture = texture.masked_fill(clipped, math.inf)
    rows, cols = x.shape[1] - patch + 1, x.shape[2] - patch + 1
    chosen = torch.arange(rows * cols)
    if max_patches is not None and rows * cols > max_patches:  # chosen before any patch is copied
        chosen = torch.randperm(rows * cols, generator=generator)[:max_patches].sort().values
    offset = torch.arange(patch)
    top, left = chosen // cols, chosen % cols
    y = (top[:, None, None] + offset[None, :, None]).expand(-1, patch, patch).reshape(len(chosen), -1)
    x_ = (left[:, None, None] + offset[None, None, :]).expand(-1, patch, patch).reshape(len(chosen), -1)
    values = image.float()[:, y, x_].mul_(255)  # C x N x P^2: a patch per row, so subsets are row gathers
    return Patches(values, texture[:, chosen], mean[:, chosen])


def _smallest_eigenvalue(values: torch.Tensor) -> float:
    """The smallest eigenvalue of ``values^T values / (n - 1)`` (``values``: ``n x P^2``), in float64."""
    moments = torch.zeros(values.shape[1], values.shape[1], dtype=torch.float64)
    for start in range(0, values.shape[0], 1 << 18):  # float64 accumulation, bounded memory
        chunk = values[start:start + (1 << 18)].double()
        moments += chunk.T @ chunk
    return float(torch.linalg.eigvalsh(moments / (values.shape[0] - 1))[0])


def _weak_texture_level(values: torch.Tensor, texture: torch.Tensor, threshold: float, rounds: int) -> tuple[float, int]:
    """Liu et al.'s alternation on one channel's patches: ``(sigma^2, patches used)``."""
    dimensions = values.shape[1]
    usable = torch.isfinite(texture)  # patches with clipped pixels are left out
    values, texture = values[usable], texture[usable]
    if values.shape[0] < dimensions:
        return math.nan, values.shape[0]
    variance = _smallest_eigenvalue(values)
    for _ in range(1, rounds):
        weak = texture < variance * threshold
        if int(weak.sum()) < dimensions:
            break
        values, texture = values[weak], texture[weak]
        variance = _smallest_eigenvalue(values)
    return max(variance, 0.0), values.shape[0]


def noise_level(found: Patches, rounds: int = ROUNDS, confidence: float = CONFIDENCE) -> torch.Tensor:
    """The noise standard deviation per channel (0-255) of the pooled patches."""
    patch = math.isqrt(found.values.shape[2])
    threshold = texture_threshold(patch, confidence)
    levels = [_weak_texture_level(found.values[c], found.texture[c], threshold, rounds)[0]
              for c in range(found.values.shape[0])]
    return torch.tensor(levels).sqrt()


@dataclass
class NoiseLevelFunction:
    """``sigma`` (``C x bins``, 0-255; NaN where a band has too few patches) at the band centres
    ``intensity`` (0-255), with the patches each estimate used (``count``)."""

    intensity: torch.Tensor
    sigma: torch.Tensor
    count: torch.Tensor

    def poisson_gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shot, read)`` per channel of ``sigma^2 = shot * x + read`` with ``x`` and the noise on [0, 1]
        (:class:`~degrade_lab.degradations.noise.PoissonGaussian`'s units): least squares weighted by the
        patch counts, over the bands that have an estimate."""
        shots, reads = [], []
        x = self.intensity.double() / 255
        for sigma, count in zip(self.sigma.double() / 255, self.count.double(), strict=True):
            ok = torch.isfinite(sigma) & (count > 0)
            if int(ok.sum()) < 2:
                shots.append(math.nan)
                reads.append(math.nan)
                continue
            design = torch.stack([x[ok], torch.ones_like(x[ok])], dim=1) * count[ok].sqrt()[:, None]
            target = sigma[ok] ** 2 * count[ok].sqrt()
            shot, read = torch.linalg.lstsq(design, target[:, None]).solution.flatten().tolist()
            shots.append(shot)
            reads.append(read)
        return torch.tensor(shots), torch.tensor(reads)


def noise_level_function(found: Patches, bins: int = 16, rounds: int = ROUNDS,
                         confidence: float = CONFIDENCE) -> NoiseLevelFunction:
    """The noise level per band of patch mean intensity (``bins`` equal bands over 0-255), each band
    estimated on its own (its own weak-texture threshold), so signal-dependent noise is followed."""
    patch = math.isqrt(found.values.shape[2])
    threshold = texture_threshold(patch, confidence)
    minimum = MIN_PATCHES_PER_DIMENSION * patch * patch
    band = (found.mean / 255 * bins).long().clamp(0, bins - 1)
    sigma = torch.full((found.values.shape[0], bins), math.nan)
    count = torch.zeros(found.values.shape[0], bins, dtype=torch.long)
    for c in range(found.values.shape[0]):
        for b in range(bins):
            inside = band[c] == b
            if int(inside.sum()) < minimum:
                continue
            variance, used = _weak_texture_level(found.values[c][inside], found.texture[c][inside], threshold, rounds)
            sigma[c, b], count[c, b] = math.sqrt(variance), used
    centres = (torch.arange(bins) + 0.5) * 255 / bins
    return NoiseLevelFunction(centres, sigma, count)


def estimate(image: torch.Tensor) -> torch.Tensor:
    """The noise standard deviation per channel (0-255) of one ``C x H x W`` image in [0, 1]."""
    return noise_level(patches(image))
