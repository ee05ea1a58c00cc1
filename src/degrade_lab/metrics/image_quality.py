"""PSNR and SSIM with the conventions restoration papers use (BasicSR/KAIR).

* images in [0, 1]; ``crop_border`` pixels removed on each side first (= scale for SR);
* ``y_channel=True`` scores the BT.601 luma of MATLAB's ``rgb2ycbcr`` (studio range,
  16-235), not kornia's full-range Y, because that is what the SR literature reports;
* values are per image and then averaged (not PSNR of the pooled MSE).

SSIM comes in two variants, both Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, per channel then averaged:

* ``torchmetrics`` (the default): torchmetrics' implementation, whose map is computed on a reflect-padded image and
  averaged over the padded border too;
* ``matlab``: Wang et al.'s ``ssim_index.m`` as KAIR / BasicSR / LUD-VAE's ``calculate_ssim`` compute it: the
  ``valid`` region only (5 pixels less at each side), in float64 on the 0-255 scale. The papers' tables use this
  one; the two differ most on small or flat images (0.291 vs 0.261 on a 64 x 80 test image).

PSNR is computed in float64. The Metric classes only add crop/Y handling around the functional forms
and reduce a sum and a count, so DDP averages over all images of all processes.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from degrade_lab.metrics.per_image import MeanOverImages

#: the side of SSIM's Gaussian window: images must be at least this large after the border crop
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
#: the SSIM implementations by name (``metrics.ssim``), and what metrics.json says of each
SSIM_VARIANTS = {
    "torchmetrics": "SSIM: torchmetrics (Gaussian 11x11, sigma 1.5; map averaged over the reflect-padded image)",
    "matlab": "SSIM: MATLAB ssim_index / KAIR calculate_ssim (Gaussian 11x11, sigma 1.5; valid region, 0-255 float64)",
}
_Y_WEIGHTS = torch.tensor([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luma for [0, 1] RGB: (16 + 65.481 R + 128.553 G + 24.966 B) / 255."""
    weights = _Y_WEIGHTS.to(images.device, images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True) + 16.0 / 255.0


def prepare(images: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    if crop_border:
        images = images[..., crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(images) if y_channel else images


def psnr(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Per-image PSNR (dB) of ``B x 3 x H x W`` [0, 1] batches; ``inf`` for identical images."""
    if pred.shape != target.shape:
        raise ValueError(f"PSNR of mismatched shapes {tuple(pred.shape)} and {tuple(target.shape)}")
    pred = prepare(pred.double(), crop_border, y_channel)
    target = prepare(target.double(), crop_border, y_channel)
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)
    return (10 * torch.log10(1.0 / mse)).float()


def _ssim_valid(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM over the ``valid`` region of the 11x11 Gaussian window, 0-255 float64 (MATLAB's ``ssim_index``;
    a few convolutions, written out because no maintained library offers the valid-region form on tensors)."""
    pred, target = pred.double() * 255, target.double() * 255
    channels = pred.shape[1]
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64, device=pred.device) - SSIM_WINDOW // 2
    taps = torch.exp(-offsets ** 2 / (2 * SSIM_SIGMA ** 2))
    taps = taps / taps.sum()
    window = torch.outer(taps, taps).expand(channels, 1, -1, -1)

    def blur(images):
        return F.conv2d(images, window, groups=channels)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x ** 2
    var_y = blur(target * target) - mu_y ** 2
    cov = blur(pred * target) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(2, 3)).mean(dim=1).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False,
         variant: str = "torchmetrics") -> torch.Tensor:
    """Per-image SSIM of ``B x 3 x H x W`` [0, 1] batches (mean over channels); ``variant`` one of
    :data:`SSIM_VARIANTS` (see the module docstring)."""
    if pred.shape != target.shape:
        raise ValueError(f"SSIM of mismatched shapes {tuple(pred.shape)} and {tuple(target.shape)}")
    if variant not in SSIM_VARIANTS:
        raise ValueError(f"unknown SSIM variant '{variant}': expected one of {sorted(SSIM_VARIANTS)}")
    pred = prepare(pred.float(), crop_border, y_channel)
    target = prepare(target.float(), crop_border, y_channel)
    if variant == "matlab":
        return _ssim_valid(pred, target)
    return structural_similarity_index_measure(
        pred, target, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_WINDOW, data_range=1.0,
        reduction="none"
    )


class PSNR(MeanOverImages):
    """Mean per-image PSNR (dB), with ``crop_border`` and ``y_channel`` options."""

    higher_is_better = True

    def __init__(self, crop_border: int = 0, y_channel: bool = False, **kwargs):
        super().__init__(partial(psnr, crop_border=crop_border, y_channel=y_channel), **kwargs)


class SSIM(MeanOverImages):
    """Mean per-image SSIM, with ``crop_border``, ``y_channel`` and ``variant`` options."""

    higher_is_better = True

    def __init__(self, crop_border: int = 0, y_channel: bool = False, variant: str = "torchmetrics", **kwargs):
        super().__init__(partial(ssim, crop_border=crop_border, y_channel=y_channel, variant=variant), **kwargs)
