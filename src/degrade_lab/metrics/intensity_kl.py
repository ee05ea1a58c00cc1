"""SeNM-VAE's "KL": the KL divergence between the grey-level histograms of the generated and the real noisy images
(SeNM-VAE Tables 1, 6, 7; ``zhengdihan/SeNM-VAE`` ``SIDD/compute_kl.py``, seed-reference sec. 2).

Not the noise-histogram KLD of NoiseFlow (:mod:`degrade_lab.metrics.noise_kld`): it compares the images' intensity
distributions, with no clean image, so the scene content dominates it. As the authors compute it:

1. each image read as 8-bit grey (KAIR's ``imread_uint(path, 1)`` = ``cv2.imread(path, 0)``; for PNG OpenCV asks
   libpng for ``png_set_rgb_to_gray(1, 0.299, 0.587)``, which libpng turns into 15-bit fixed-point weights
   9797 / 19234 / 3737 and rounds): :func:`grey_levels`;
2. a 256-bin histogram over [0, 255] (``numpy.histogram(bins=256, range=(0, 255))``: each grey level its own bin);
3. ``p`` = the generated image's histogram / N, ``q`` = the real one's / N + 1e-8, renormalised;
   ``KL(p || q) = sum p log(p / q)`` over the bins where ``p > 0`` (``scipy.stats.entropy(p, q)``);
4. averaged over images (and here over samples).

Written by hand: it is a handful of tensor operations on histograms no library computes.
"""

from __future__ import annotations

import torch

#: libpng's weights for ``png_set_rgb_to_gray(1, 0.299, 0.587)``: floor(0.299 * 32768), floor(0.587 * 32768), the rest
_GREY_WEIGHTS = (9797, 19234, 3737)
EPSILON = 1e-8


def grey_levels(images: torch.Tensor) -> torch.Tensor:
    """``B x 3 x H x W`` images in [0, 1] as the integer grey levels (0-255, int64) the authors' reader makes."""
    rgb = (images.double() * 255).round().clamp(0, 255).long()
    if rgb.shape[1] == 1:
        return rgb[:, 0]
    weights = torch.tensor(_GREY_WEIGHTS, device=images.device).view(1, 3, 1, 1)
    return ((rgb * weights).sum(dim=1) + (1 << 14)) >> 15


def grey_histograms(images: torch.Tensor) -> torch.Tensor:
    """Per-image grey-level probabilities ``B x 256`` (float64)."""
    levels = grey_levels(images).flatten(1)
    batch = levels.shape[0]
    index = levels + torch.arange(batch, device=levels.device).view(-1, 1) * 256
    counts = torch.bincount(index.flatten(), minlength=batch * 256).view(batch, 256).double()
    return counts / counts.sum(dim=1, keepdim=True)


def intensity_kl(synthetic: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image KL(P_generated || P_real) of grey-level histograms (SeNM-VAE's definition), shape ``B``."""
    p = grey_histograms(synthetic)
    q = grey_histograms(real) + EPSILON
    q = q / q.sum(dim=1, keepdim=True)
    return torch.where(p > 0, p * torch.log(p.where(p > 0, 1.0) / q), 0.0).sum(dim=1).float()
