"""JPEG compression with the real codec (libjpeg, through Pillow).

Pillow rather than ``torchvision.io``: torchvision 0.29 deprecates its image codecs for removal.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from degrade_lab.degradations.base import Degrader, Range, as_range, sample_uniform


def jpeg_roundtrip(images: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """Encode each image of a ``B x 3 x H x W`` [0, 1] batch at its quality and decode it back."""
    as_uint8 = images.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    decoded = []
    for array, quality in zip(as_uint8, qualities, strict=True):  # a codec: one call per image
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=int(quality))
        buffer.seek(0)
        with Image.open(buffer) as image:
            decoded.append(np.asarray(image.convert("RGB")))
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2)
    return out.to(images.device, images.dtype) / 255.0


class JPEG(Degrader):
    """JPEG at a quality factor fixed or drawn per image from ``[low, high]`` (integers, 1-100)."""

    def __init__(self, quality: Range = (30, 95)):
        super().__init__()
        self.quality = as_range(quality, "quality")
        if not 1 <= self.quality[0] <= self.quality[1] <= 100:
            raise ValueError(f"JPEG quality must lie in [1, 100], got {self.quality}")

    def sample_quality(self, batch: int, generator, device) -> list[int]:
        values = sample_uniform((self.quality[0], self.quality[1] + 1 - 1e-6), batch, generator, device)
        return [int(v) for v in values.floor().tolist()]

    def degrade(self, clean, generator=None):
        quality = self.sample_quality(clean.shape[0], generator, clean.device)
        self.record("quality", torch.tensor(quality, dtype=torch.float32, device=clean.device))
        return jpeg_roundtrip(clean, quality)

    def extra_repr(self):
        return f"quality={self.quality}"
