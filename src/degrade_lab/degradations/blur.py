"""Isotropic and anisotropic Gaussian blur with a kernel drawn per image."""

from __future__ import annotations

import math

import kornia
import torch

from degrade_lab.degradations.base import Degrader, Range, as_range, sample_uniform


def gaussian_kernels(
    sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor, size: int
) -> torch.Tensor:
    """A batch of normalised 2-D Gaussian kernels ``B x size x size``.

    ``sigma_x``/``sigma_y`` are the standard deviations along the kernel's principal axes and
    ``theta`` its rotation (radians); ``sigma_x == sigma_y`` gives the isotropic kernel.
    """
    half = (size - 1) / 2
    grid = torch.arange(size, device=sigma_x.device, dtype=torch.float32) - half
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    sx, sy = sigma_x.view(-1, 1, 1), sigma_y.view(-1, 1, 1)
    kernel = torch.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return kernel / kernel.sum(dim=(1, 2), keepdim=True)


class GaussianBlur(Degrader):
    """Blur with a Gaussian kernel drawn per image.

    ``sigma`` (pixels) is fixed or a ``[low, high]`` range. ``anisotropic=True`` draws the two
    axis deviations independently from ``sigma`` and a rotation in [0, pi) (the blind-SR kernels
    of VDIR and Real-ESRGAN); ``False`` keeps the kernel isotropic; a number in (0, 1) is the share of
    images that get an anisotropic kernel, the others an isotropic one (VDIR's single SR model for both kinds,
    sec. VI). ``kernel_size`` defaults to ``2 * ceil(3 * max sigma) + 1`` (VDIR: 15). ``axes`` and ``theta`` give
    one fixed kernel instead, e.g. VDIR's anisotropic test kernel g_ani: ``axes=[4.0, 1.0], theta=-0.5`` (radians).
    """

    def __init__(self, sigma: Range = (0.2, 2.0), anisotropic: bool | float = False, kernel_size: int | None = None,
                 axes: tuple[float, float] | None = None, theta: float = 0.0):
        super().__init__()
        if axes is not None:  # one fixed kernel: sigma spans its axes (for the kernel size)
            if len(axes) != 2 or min(axes) <= 0:
                raise ValueError(f"axes must be two positive widths, got {axes}")
            sigma = (min(axes), max(axes))
        self.axes, self.theta = (tuple(float(a) for a in axes) if axes is not None else None), float(theta)
        self.sigma = as_range(sigma, "sigma")
        if not 0.0 <= float(anisotropic) <= 1.0:
            raise ValueError(f"anisotropic must be true, false or a share in [0, 1], got {anisotropic}")
        self.anisotropic = float(anisotropic)
        self.kernel_size = kernel_size or 2 * math.ceil(3 * self.sigma[1]) + 1
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")

    def sample_kernels(self, batch: int, generator, device) -> torch.Tensor:
        if self.axes is not None:
            sigma_x = torch.full((batch,), self.axes[0], device=device)
            sigma_y = torch.full((batch,), self.axes[1], device=device)
            self.record("blur_sigma", (sigma_x * sigma_y).sqrt())
            return gaussian_kernels(sigma_x, sigma_y, torch.full((batch,), self.theta, device=device), self.kernel_size)
        sigma_x = sample_uniform(self.sigma, batch, generator, device)
        if self.anisotropic > 0:
            sigma_y = sample_uniform(self.sigma, batch, generator, device)
            theta = sample_uniform((0.0, math.pi), batch, generator, device)
            if self.anisotropic < 1:  # a share of the images: the rest get the isotropic kernel of sigma_x
                chosen = sample_uniform((0.0, 1.0), batch, generator, device) < self.anisotropic
                sigma_y, theta = torch.where(chosen, sigma_y, sigma_x), torch.where(chosen, theta, 0.0)
        else:
            sigma_y, theta = sigma_x, torch.zeros_like(sigma_x)
        # the kernel width (VDIR's f(T) = k for SR); anisotropic kernels: the geometric mean of the axes
        self.record("blur_sigma", (sigma_x * sigma_y).sqrt())
        return gaussian_kernels(sigma_x.clamp(min=1e-3), sigma_y.clamp(min=1e-3), theta, self.kernel_size)

    def degrade(self, clean, generator=None):
        kernels = self.sample_kernels(clean.shape[0], generator, clean.device).to(clean.dtype)
        # reflect padding needs the image larger than the kernel radius; tiny images replicate
        border = "reflect" if min(clean.shape[-2:]) > self.kernel_size // 2 else "replicate"
        return kornia.filters.filter2d(clean, kernels, border_type=border)

    def extra_repr(self):
        return f"sigma={self.sigma}, anisotropic={self.anisotropic}, kernel_size={self.kernel_size}"
