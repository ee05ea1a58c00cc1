"""AKLD: average KL divergence between local noise variances (DANet, Yue et al. 2020; used by C2N).

For images in [0, 1] (seed-reference sec. 5, following ``zsyOAOA/DANet``):

1. local variance maps ``V = GaussBlur7x7((noisy - clean)^2)`` per channel (OpenCV's default sigma
   for a 7-tap kernel, 0.3 * ((7 - 1) * 0.5 - 1) + 0.8 = 1.4; reflect padding; clamped at 1e-10), for
   the real and the synthetic image against the same clean image;
2. ``r = clamp(V_synthetic / V_real, 0.1, 10)``, ``KL = 0.5 * (log(1 / r) + r - 1)``, which is
   KL(N(0, V_synthetic) || N(0, V_real)) per pixel, averaged over pixels and channels;
3. averaged over samples and images.

The blur is kornia's; the divergence itself is written out (no library has this metric).
"""

from __future__ import annotations

import torch
from kornia.filters import gaussian_blur2d

from degrade_lab.metrics.per_image import MeanOverImages

KERNEL, SIGMA = 7, 0.3 * ((7 - 1) * 0.5 - 1) + 0.8


def local_variance(noise: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean of the squared noise (7x7, sigma 1.4, reflect border)."""
    squared = noise.double().pow(2)
    blurred = gaussian_blur2d(squared, (KERNEL, KERNEL), (SIGMA, SIGMA), border_type="reflect")
    return blurred.clamp(min=1e-10)


def akld(synthetic: torch.Tensor, real: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image AKLD (before averaging over samples), shape ``B``."""
    ratio = (local_variance(synthetic - clean) / local_variance(real - clean)).clamp(0.1, 10.0)
    return (0.5 * (torch.log(1.0 / ratio) + ratio - 1.0)).flatten(1).mean(dim=1).float()


class AKLD(MeanOverImages):
    """Mean per-image :func:`akld` over every (sample, image) update (lower is better). ``update(synthetic, real, clean)``."""

    higher_is_better = False

    def __init__(self, **kwargs):
        super().__init__(akld, **kwargs)
