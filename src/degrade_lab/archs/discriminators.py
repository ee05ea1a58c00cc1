"""Discriminators for the adversarial restorers.

* :class:`VGGStyleDiscriminator`: ESRGAN's (BasicSR ``VGGStyleDiscriminator``): five stages of
  (3x3 conv, 4x4 stride-2 conv) with batch norm and LeakyReLU 0.2, 64 -> 512 channels, then two linear
  layers to one logit per image. ``input_size`` (128 in ESRGAN) must be a multiple of 32.
* :class:`PatchDiscriminator`: VDIR's spectral-norm patch discriminator (official code: 3x3 convs
  64, 64/2, 128, 128/2, 256, 256/2, 512, 512/2, 512, 512/2, LeakyReLU 0.2, a final 3x3 conv to one logit
  per 32x32 patch; 9,409,601 parameters).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class VGGStyleDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, features: int = 64, input_size: int = 128):
        super().__init__()
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.input_size = input_size
        widths = [features, features * 2, features * 4, features * 8, features * 8]
        layers: list[nn.Module] = []
        previous = in_channels
        for stage, width in enumerate(widths):
            layers.append(nn.Conv2d(previous, width, 3, padding=1, bias=stage == 0))
            if stage > 0:
                layers.append(nn.BatchNorm2d(width, affine=True))
            layers += [nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(width, width, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(width, affine=True), nn.LeakyReLU(0.2, inplace=True)]
            previous = width
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * side * side, 100),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(100, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"this discriminator takes {self.input_size}x{self.input_size} crops, "
                             f"got {tuple(images.shape[-2:])}: set the discriminator's input_size to the crop size")
        return self.classifier(self.features(images))


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512, 512)):
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            for stride in (1, 2):
                layers += [spectral_norm(nn.Conv2d(previous, width, 3, stride=stride, padding=1)),
                           nn.LeakyReLU(0.2, inplace=True)]
                previous = width
        layers.append(spectral_norm(nn.Conv2d(previous, 1, 3, padding=1)))
        self.body = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Patch logits, ``B x 1 x H/32 x W/32``."""
        return self.body(images)


class NLayerDiscriminator(nn.Module):
    """pix2pix's PatchGAN (Isola et al. 2017), as SeNM-VAE uses it: 4x4 convs 64 (stride 2, no norm),
    128 and 256 (stride 2) and 512 (stride 1) with batch norm and LeakyReLU 0.2, then a 4x4 conv to one
    logit per patch (``layers=3``, 64 features: 2,765,633 parameters)."""

    def __init__(self, in_channels: int = 3, features: int = 64, layers: int = 3):
        super().__init__()
        modules: list[nn.Module] = [nn.Conv2d(in_channels, features, 4, stride=2, padding=1),
                                    nn.LeakyReLU(0.2, inplace=True)]
        width = features
        for index in range(1, layers + 1):
            previous, width = width, features * min(2**index, 8)
            modules += [nn.Conv2d(previous, width, 4, stride=2 if index < layers else 1, padding=1, bias=False),
                        nn.BatchNorm2d(width), nn.LeakyReLU(0.2, inplace=True)]
        modules.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*modules)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)
