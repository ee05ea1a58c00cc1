"""A Real-ESRGAN-style second-order degradation (Wang et al., ICCVW 2021, sec. 3.1).

Two rounds of blur -> random resize -> noise -> JPEG, then a final resize to the target scale.
Simplified from the paper: no sinc filter and a fixed stage order; the ranges are the paper's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from degrade_lab.degradations.base import Degrader, Range, as_range, per_image, sample_uniform
from degrade_lab.degradations.blur import GaussianBlur
from degrade_lab.degradations.jpeg import JPEG
from degrade_lab.degradations.noise import poisson_gaussian

_MODES = ("area", "bilinear", "bicubic")


def _choice(options, generator, device):
    return options[int(torch.randint(len(options), (1,), generator=generator, device=device))]


class SecondOrder(Degrader):
    """Real-ESRGAN's high-order pipeline; ``scale`` is the overall down-sampling factor."""

    def __init__(
        self,
        scale: int = 4,
        blur_sigma: Range = (0.2, 3.0),
        blur_sigma2: Range = (0.2, 1.5),
        resize_range: Range = (0.15, 1.5),
        resize_range2: Range = (0.3, 1.2),
        noise_sigma: Range = (1.0, 30.0),
        noise_sigma2: Range = (1.0, 25.0),
        poisson_prob: float = 0.4,
        quality: Range = (30, 95),
    ):
        super().__init__()
        self.scale = int(scale)
        self.blur1 = GaussianBlur(blur_sigma, anisotropic=True, kernel_size=21)
        self.blur2 = GaussianBlur(blur_sigma2, anisotropic=True, kernel_size=21)
        self.resize_ranges = (as_range(resize_range, "resize_range"), as_range(resize_range2, "resize_range2"))
        self.noise_ranges = (as_range(noise_sigma, "noise_sigma"), as_range(noise_sigma2, "noise_sigma2"))
        self.poisson_prob = poisson_prob
        self.jpeg = JPEG(quality)

    def _noise(self, x, sigma_range, generator):
        batch, device = x.shape[0], x.device
        if float(torch.rand(1, generator=generator, device=device)) < self.poisson_prob:
            shot = per_image(sample_uniform((0.05 / 255, 3.0 / 255), batch, generator, device, log=True))
            return poisson_gaussian(x, shot, torch.zeros_like(shot), generator)
        sigma = per_image(sample_uniform(sigma_range, batch, generator, device)) / 255.0
        return x + sigma * torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)

    def degrade(self, clean, generator=None):
        height, width = clean.shape[-2:]
        out_size = (height // self.scale, width // self.scale)
        x = clean
        for stage, blur in enumerate((self.blur1, self.blur2)):
            x = blur(x, generator)
            factor = float(sample_uniform(self.resize_ranges[stage], 1, generator, x.device))
            base = (height, width) if stage == 0 else (height / self.scale, width / self.scale)
            size = (max(int(base[0] * factor), 4), max(int(base[1] * factor), 4))
            mode = _choice(_MODES, generator, x.device)
            x = F.interpolate(x, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))
            x = self._noise(x, self.noise_ranges[stage], generator).clamp(0, 1)
            if stage == 0:
                x = self.jpeg(x, generator)
        mode = _choice(_MODES, generator, x.device)
        x = F.interpolate(x, size=out_size, mode=mode, **({} if mode == "area" else {"align_corners": False}))
        return self.jpeg(x.clamp(0, 1), generator)
