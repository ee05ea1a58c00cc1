"""DRUNet (Zhang et al., "Plug-and-Play Image Restoration with Deep Denoiser Prior", TPAMI 2021).

A U-Net of residual blocks: 4 scales (64/128/256/512 channels), ``blocks`` residual blocks
(conv-ReLU-conv + skip, no batch norm, no biases) per scale, 2x2 stride-2 convolutions down and 2x2
transposed convolutions up, additive skips between the scales. With ``noise_map=True`` a fourth input
channel carries the noise level sigma/255 as a constant map (the DPIR release: 32,640,960 parameters);
without it the network is blind. Inputs of any size are replicate-padded to a multiple of 8 and the
output cropped back, as in KAIR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """x + conv(ReLU(conv(x))), 3x3, no biases (KAIR ``ResBlock`` mode 'CRC')."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DRUNet(nn.Module):
    """``degraded [, sigma] -> restored``; ``forward(degraded, noise_level=None)`` with ``noise_level``
    a ``B`` tensor (or float) on the 0-255 scale when ``noise_map=True``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, channels: tuple[int, ...] = (64, 128, 256, 512),
                 blocks: int = 4, noise_map: bool = True):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"DRUNet has 4 scales; got channels={list(channels)}")
        c1, c2, c3, c4 = channels
        self.noise_map, self.scale = noise_map, 1
        self.head = nn.Conv2d(in_channels + int(noise_map), c1, 3, padding=1, bias=False)

        def stage(width: int) -> list[nn.Module]:
            return [ResidualBlock(width) for _ in range(blocks)]

        self.down1 = nn.Sequential(*stage(c1), nn.Conv2d(c1, c2, 2, stride=2, bias=False))
        self.down2 = nn.Sequential(*stage(c2), nn.Conv2d(c2, c3, 2, stride=2, bias=False))
        self.down3 = nn.Sequential(*stage(c3), nn.Conv2d(c3, c4, 2, stride=2, bias=False))
        self.body = nn.Sequential(*stage(c4))
        self.up3 = nn.Sequential(nn.ConvTranspose2d(c4, c3, 2, stride=2, bias=False), *stage(c3))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 2, stride=2, bias=False), *stage(c2))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, stride=2, bias=False), *stage(c1))
        self.tail = nn.Conv2d(c1, out_channels, 3, padding=1, bias=False)

    def forward(self, degraded: torch.Tensor, noise_level: torch.Tensor | float | None = None) -> torch.Tensor:
        height, width = degraded.shape[-2:]
        x = degraded
        if self.noise_map:
            if noise_level is None:
                raise ValueError("this DRUNet takes a noise level map: pass noise_level (sigma on the 0-255 scale)")
            level = torch.as_tensor(noise_level, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1) / 255.0
            x = torch.cat([x, level.expand(x.shape[0], 1, height, width)], dim=1)
        pad_h, pad_w = (-height) % 8, (-width) % 8
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x1 = self.head(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.body(x4)
        x = self.up3(x + x4)
        x = self.up2(x + x3)
        x = self.up1(x + x2)
        x = self.tail(x + x1)
        return x[..., :height, :width]
