"""A camera-like noise pipeline: linear RGB -> camera RGB -> Bayer mosaic -> Poisson-Gaussian -> demosaic
-> colour correction -> sRGB gamma -> JPEG.

The order follows how a camera makes an sRGB image (Brooks et al., "Unprocessing images",
CVPR 2019; CBDNet's ``AddNoiseMosai``): the sensor noise is signal-dependent and added to one
colour sample per pixel, so after bilinear demosaicking it is spatially correlated; the colour
correction matrix (camera RGB -> sRGB) mixes the channels, so it is channel correlated too; the
tone curve (sRGB gamma) then amplifies it in the shadows and JPEG smears it into blocks.
Colour conversions, mosaicking and demosaicking are kornia's.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from kornia.color import CFA

from degrade_lab.degradations.base import Degrader, Range, as_range, per_image, sample_uniform
from degrade_lab.degradations.jpeg import JPEG
from degrade_lab.degradations.noise import poisson_gaussian

#: camera RGB -> linear sRGB colour correction (rows sum to 1, so grey stays grey); a typical
#: consumer-sensor matrix of the magnitude Brooks et al. sample from
CAM_TO_RGB = torch.tensor([[1.80, -0.60, -0.20], [-0.25, 1.60, -0.35], [0.05, -0.55, 1.50]])


def _apply_matrix(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(images.device, images.dtype), images)


class CameraPipeline(Degrader):
    """Camera-like noise; every parameter is fixed or a ``[low, high]`` range drawn per image.

    Args:
        shot: Poisson gain ``a`` of the raw noise variance ``a * x + b`` (linear [0, 1] units),
            drawn log-uniformly.
        read: read-noise variance ``b``, drawn log-uniformly.
        quality: JPEG quality of the final encoding (``null`` for none).
    """

    def __init__(self, shot: Range = (2e-3, 2e-2), read: Range = (1e-5, 1e-3), quality: Range | None = (80, 95)):
        super().__init__()
        self.shot = as_range(shot, "shot")
        self.read = as_range(read, "read")
        self.jpeg = JPEG(quality) if quality is not None else None

    def degrade(self, clean, generator=None):
        batch, device = clean.shape[0], clean.device
        height, width = clean.shape[-2:]
        shot = per_image(sample_uniform(self.shot, batch, generator, device, log=True))
        read = per_image(sample_uniform(self.read, batch, generator, device, log=True))
        # the Bayer pattern needs even sizes: mirror one row/column where needed, crop after
        padded = F.pad(clean, (0, width % 2, 0, height % 2), mode="replicate")
        linear = kornia.color.rgb_to_linear_rgb(padded.clamp(0, 1))
        camera = _apply_matrix(linear, torch.linalg.inv(CAM_TO_RGB)).clamp(0, 1)
        raw = kornia.color.rgb_to_raw(camera, CFA.BG)
        noisy_raw = poisson_gaussian(raw, shot, read, generator).clamp(0, 1)
        demosaicked = kornia.color.raw_to_rgb(noisy_raw, CFA.BG)
        rgb = _apply_matrix(demosaicked, CAM_TO_RGB).clamp(0, 1)
        srgb = kornia.color.linear_rgb_to_rgb(rgb).clamp(0, 1)[..., :height, :width]
        return self.jpeg(srgb, generator) if self.jpeg is not None else srgb

    def extra_repr(self):
        return f"shot={self.shot}, read={self.read}"
