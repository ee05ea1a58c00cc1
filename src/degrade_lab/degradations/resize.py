"""MATLAB-compatible bicubic down-sampling as a Degrader (the classical SR degradation); the resizing itself,
``imresize``, is :mod:`degrade_lab.utils.imresize`."""

from __future__ import annotations

from degrade_lab.degradations.base import Degrader
from degrade_lab.utils.imresize import imresize, resize_matrix  # noqa: F401  (imported from here by callers)


class Bicubic(Degrader):
    """x1/``scale`` MATLAB bicubic down-sampling (antialiased), the classical SR degradation."""

    def __init__(self, scale: int = 4, clip: bool = True):
        super().__init__()
        self.scale = int(scale)
        self.clip = clip

    def degrade(self, clean, generator=None):
        height, width = clean.shape[-2:]
        if height % self.scale or width % self.scale:
            raise ValueError(f"image size {height}x{width} is not divisible by the scale {self.scale}")
        out = imresize(clean, 1.0 / self.scale)
        return out.clamp(0, 1) if self.clip else out


class Decimate(Degrader):
    """Direct x1/``scale`` subsampling (every ``scale``-th pixel, no anti-aliasing): after a Gaussian
    blur, the "g^d" degradation of VDIR's and IKC's blind SR benchmarks. Images whose size is not a
    multiple of the scale lose their last rows / columns."""

    def __init__(self, scale: int = 2):
        super().__init__()
        self.scale = int(scale)

    def degrade(self, clean, generator=None):
        height, width = clean.shape[-2:]
        return clean[..., : height - height % self.scale : self.scale, : width - width % self.scale : self.scale]
