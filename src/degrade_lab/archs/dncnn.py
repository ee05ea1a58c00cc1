"""DnCNN (Zhang et al., TIP 2017): a plain CNN that predicts the noise and subtracts it."""

from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """Conv+ReLU, ``depth - 2`` x (Conv+BN+ReLU), Conv; output = input - predicted noise.

    The defaults are the KAIR colour DnCNN used downstream by LUD-VAE (17 layers, 64 channels,
    559,363 parameters; biases kept in every conv as in KAIR). ``depth=20`` gives VDIR's
    Table II variant.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, channels: int = 64, depth: int = 17,
                 batch_norm: bool = True):
        super().__init__()
        if depth < 3:
            raise ValueError(f"DnCNN needs depth >= 3, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels, momentum=0.1, eps=1e-4))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.residual = in_channels == out_channels
        self.scale = 1

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        noise = self.body(degraded)
        return degraded - noise if self.residual else noise
