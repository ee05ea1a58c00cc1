"""Metrics: functional forms (per image) and torchmetrics Metrics (DDP-reduced).

Restorers: PSNR, SSIM, LPIPS. Degradation models (synthetic vs real degraded images of the same clean
image): noise-histogram KLD, AKLD, FID, and the MMD between latent sample sets. LPIPS and FID need
installed backbones (``degrade-lab weights install``) and are imported from their modules
(:mod:`degrade_lab.metrics.lpips`, :mod:`degrade_lab.metrics.fid`).
"""

from degrade_lab.metrics.akld import AKLD, akld
from degrade_lab.metrics.image_quality import PSNR, SSIM, psnr, ssim
from degrade_lab.metrics.mmd import MMD, gaussian_mmd
from degrade_lab.metrics.noise_kld import NoiseKLD, noise_kld

__all__ = ["AKLD", "MMD", "PSNR", "SSIM", "NoiseKLD", "akld", "gaussian_mmd", "noise_kld", "psnr", "ssim"]
