"""Keep an input image's low frequencies in a network's output: a parameterisation for noise-type tasks.

A degradation model trained on unpaired folders of *different scenes* can learn the degraded folder's
colours and scene statistics as part of "the degradation": its synthetic pairs then differ from the clean
image by a colour cast and a low-frequency change that no real camera adds (measured in
``docs/ludvae.md``). With ``sigma > 0`` the output is

    out = G_sigma * image + (d - G_sigma * d),

the low-pass part (Gaussian blur of std ``sigma`` pixels) of the input ``image`` plus the high-pass part of
the network's own output ``d``: the network can only add detail at scales below about ``sigma``
(noise, compression artefacts), never move colours or tones. ``sigma = 0`` leaves ``d`` unchanged (the
papers' models).

Written by hand because no library offers this parameterisation; the blur is kornia's, with replicated
borders (tiles keep their context, so tiled results equal whole-image ones).
"""

from __future__ import annotations

import torch
from kornia.filters import gaussian_blur2d
from torch import nn


class KeepLowFrequencies(nn.Module):
    """``out = blur(image) + d - blur(d)`` with a Gaussian of std ``sigma`` pixels; identity on ``d`` when
    ``sigma`` is 0. No parameters."""

    def __init__(self, sigma: float = 0.0):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"the low-pass sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)

    @property
    def radius(self) -> int:
        """Half the blur kernel's width: the extra context (pixels) every output pixel depends on."""
        return int(3 * self.sigma + 0.5) if self.sigma > 0 else 0

    def blur(self, image: torch.Tensor) -> torch.Tensor:
        size = 2 * self.radius + 1
        # in fp32 even under autocast: CPU bf16 autocast sends the blur's depthwise convolutions to a path
        # thousands of times slower (measured: a 16 x 3 x 32 x 32 batch took minutes instead of 60 ms)
        with torch.autocast(image.device.type, enabled=False):
            return gaussian_blur2d(image.float(), (size, size), (self.sigma, self.sigma), border_type="replicate")

    def forward(self, output: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if self.sigma <= 0:
            return output
        out = output.float()
        return (self.blur(image) + out - self.blur(out)).to(output.dtype)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"
