"""Additive white Gaussian noise and signal-dependent Poisson-Gaussian noise."""

from __future__ import annotations

import torch

from degrade_lab.degradations.base import Degrader, Range, as_range, per_image, sample_uniform


class AWGN(Degrader):
    """y = x + n, n ~ N(0, sigma^2), sigma on the 0-255 scale, fixed or drawn per image.

    ``sigma=25`` adds sigma 25/255; ``sigma=[5, 50]`` draws sigma ~ U[5, 50] for each image
    (the blind-denoising protocol of DnCNN and VDIR). ``clip`` keeps the result in [0, 1] as a
    saved 8-bit image would be.
    """

    def __init__(self, sigma: Range = 25.0, clip: bool = True):
        super().__init__()
        self.sigma = as_range(sigma, "sigma")
        self.clip = clip

    def sample_sigma(self, batch: int, generator, device) -> torch.Tensor:
        return sample_uniform(self.sigma, batch, generator, device) / 255.0

    def degrade(self, clean, generator=None):
        sigma = per_image(self.sample_sigma(clean.shape[0], generator, clean.device))
        self.record("sigma", sigma * 255.0)
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
        return noisy.clamp(0, 1) if self.clip else noisy

    def extra_repr(self):
        return f"sigma={self.sigma}, clip={self.clip}"


def poisson_gaussian(
    signal: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Exact Poisson-Gaussian noise: ``shot * Poisson(signal / shot) + N(0, read)``.

    Its variance is ``shot * signal + read`` (``shot`` and ``read`` broadcast over the image).
    """
    photons = torch.poisson((signal.clamp(min=0) / shot).float(), generator=generator).to(signal.dtype)
    gauss = torch.randn(signal.shape, generator=generator, device=signal.device, dtype=signal.dtype)
    return photons * shot + gauss * read.sqrt()


class PoissonGaussian(Degrader):
    """Signal-dependent noise with variance ``a * x + b`` (heteroscedastic sensor model).

    ``shot`` (a) and ``read`` (b) are fixed or ``[low, high]`` ranges drawn log-uniformly per image,
    in [0, 1] intensity units; e.g. shot 0.01 and read 1e-4 give a std of ~0.07 at mid grey.
    """

    def __init__(self, shot: Range = 0.01, read: Range = 1e-4, clip: bool = True):
        super().__init__()
        self.shot = as_range(shot, "shot")
        self.read = as_range(read, "read")
        self.clip = clip

    def degrade(self, clean, generator=None):
        batch, device = clean.shape[0], clean.device
        shot = per_image(sample_uniform(self.shot, batch, generator, device, log=True))
        read = per_image(sample_uniform(self.read, batch, generator, device, log=True))
        noisy = poisson_gaussian(clean, shot, read, generator)
        return noisy.clamp(0, 1) if self.clip else noisy

    def extra_repr(self):
        return f"shot={self.shot}, read={self.read}, clip={self.clip}"
