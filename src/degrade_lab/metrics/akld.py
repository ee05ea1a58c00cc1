"""AKLD: average KL divergence between local noise variances (DANet, Yue et al. 2020; used by C2N, LUD-VAE).

As DANet computes it (``zsyOAOA/DANet`` ``utils.py`` / ``demo_AKLD.py``, seed-reference sec. 5), images in [0, 1]:

1. local variance maps ``V = blur((noisy - clean)^2)`` per channel, for the real and the synthetic image against
   the same clean image. The blur is the outer product of ``cv2.getGaussianKernel(7, -1)``: for 7 taps and no
   sigma OpenCV returns its fixed binomial-like table :data:`OPENCV_7_TAP` (1/32, 7/64, 7/32, 9/32, ...), *not*
   the sigma = 0.3 * ((7 - 1) * 0.5 - 1) + 0.8 = 1.4 Gaussian its documentation formula gives (the two differ
   by 1-5 % in AKLD); reflect padding without repeating the edge (``F.pad(mode="reflect")``); clamped at 1e-10;
2. ``r = clamp(V_synthetic / V_real, 0.1, 10)``, ``KL = 0.5 * (log(1 / r) + r - 1)``, which is
   KL(N(0, V_synthetic) || N(0, V_real)) per pixel, averaged over pixels and channels;
3. averaged over samples (DANet and LUD-VAE Table 2: 50 per image, ``metrics.samples=50``) and images (LUD-VAE:
   128 x 128 centre crops, ``metrics.center_crop=128``).

The blur is kornia's separable filter; the divergence itself is written out (no library has this metric).
"""

from __future__ import annotations

import torch
from kornia.filters import filter2d_separable

from degrade_lab.metrics.per_image import MeanOverImages

#: ``cv2.getGaussianKernel(7, -1)``: OpenCV's ``small_gaussian_tab`` row for 7 taps (imgproc/src/smooth.dispatch.cpp)
OPENCV_7_TAP = (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125)


def local_variance(noise: torch.Tensor) -> torch.Tensor:
    """Local mean of the squared noise under DANet's 7 x 7 window (:data:`OPENCV_7_TAP`, reflect border)."""
    squared = noise.double().pow(2)
    taps = torch.tensor(OPENCV_7_TAP, dtype=squared.dtype, device=squared.device)[None]
    return filter2d_separable(squared, taps, taps, border_type="reflect").clamp(min=1e-10)


def akld(synthetic: torch.Tensor, real: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image AKLD (before averaging over samples), shape ``B``."""
    ratio = (local_variance(synthetic - clean) / local_variance(real - clean)).clamp(0.1, 10.0)
    return (0.5 * (torch.log(1.0 / ratio) + ratio - 1.0)).flatten(1).mean(dim=1).float()


class AKLD(MeanOverImages):
    """Mean per-image :func:`akld` over every (sample, image) update (lower is better). ``update(synthetic, real, clean)``."""

    higher_is_better = False

    def __init__(self, **kwargs):
        super().__init__(akld, **kwargs)
