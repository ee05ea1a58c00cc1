"""JPEG compression with the real codec (libjpeg through torchvision.io)."""

from __future__ import annotations

import torch
from torchvision.io import decode_jpeg, encode_jpeg

from degrade_lab.degradations.base import Degrader, Range, as_range, sample_uniform


def jpeg_roundtrip(images: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """Encode each image of a ``B x 3 x H x W`` [0, 1] batch at its quality and decode it back."""
    as_uint8 = images.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    out = torch.empty_like(as_uint8)
    for quality in sorted(set(qualities)):  # the codec takes one quality per call
        index = [i for i, q in enumerate(qualities) if q == quality]
        encoded = encode_jpeg([as_uint8[i] for i in index], quality=quality)
        for i, decoded in zip(index, decode_jpeg(encoded), strict=True):
            out[i] = decoded
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
        return jpeg_roundtrip(clean, self.sample_quality(clean.shape[0], generator, clean.device))

    def extra_repr(self):
        return f"quality={self.quality}"
