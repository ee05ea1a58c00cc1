"""PSNR and SSIM with the conventions restoration papers use (BasicSR/KAIR).

* images in [0, 1]; ``crop_border`` pixels removed on each side first (= scale for SR);
* ``y_channel=True`` scores the BT.601 luma of MATLAB's ``rgb2ycbcr`` (studio range,
  16-235), not kornia's full-range Y, because that is what the SR literature reports;
* values are per image and then averaged (not PSNR of the pooled MSE).

The SSIM itself is torchmetrics' (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03); PSNR is
computed in float64. The Metric classes only add crop/Y handling around the functional forms
and reduce a sum and a count, so DDP averages over all images of all processes.
"""

from __future__ import annotations

from functools import partial

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from degrade_lab.metrics.per_image import MeanOverImages

#: the side of SSIM's Gaussian window: images must be at least this large after the border crop
SSIM_WINDOW = 11
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


def ssim(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Per-image SSIM of ``B x 3 x H x W`` [0, 1] batches (mean over channels)."""
    if pred.shape != target.shape:
        raise ValueError(f"SSIM of mismatched shapes {tuple(pred.shape)} and {tuple(target.shape)}")
    pred = prepare(pred.float(), crop_border, y_channel)
    target = prepare(target.float(), crop_border, y_channel)
    return structural_similarity_index_measure(
        pred, target, gaussian_kernel=True, sigma=1.5, kernel_size=SSIM_WINDOW, data_range=1.0, reduction="none"
    )


class PSNR(MeanOverImages):
    """Mean per-image PSNR (dB), with ``crop_border`` and ``y_channel`` options."""

    higher_is_better = True

    def __init__(self, crop_border: int = 0, y_channel: bool = False, **kwargs):
        super().__init__(partial(psnr, crop_border=crop_border, y_channel=y_channel), **kwargs)


class SSIM(MeanOverImages):
    """Mean per-image SSIM, with ``crop_border`` and ``y_channel`` options."""

    higher_is_better = True

    def __init__(self, crop_border: int = 0, y_channel: bool = False, **kwargs):
        super().__init__(partial(ssim, crop_border=crop_border, y_channel=y_channel), **kwargs)
