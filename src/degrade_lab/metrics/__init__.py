"""Image-quality metrics: functional forms (per image) and torchmetrics Metrics (DDP-reduced)."""

from degrade_lab.metrics.image_quality import PSNR, SSIM, psnr, ssim

__all__ = ["PSNR", "SSIM", "psnr", "ssim"]
