"""RRDBNet, the ESRGAN generator (Wang et al., "ESRGAN", ECCVW 2018), as in BasicSR / Real-ESRGAN.

``conv_first`` -> ``blocks`` residual-in-residual dense blocks (each three 5-layer dense blocks with
growth ``growth``, residual scaling 0.2) -> ``conv_body`` + long skip -> two (nearest x2 upsampling,
conv, LeakyReLU 0.2) stages -> ``conv_hr`` -> ``conv_last``. At x4 with the paper's 23 blocks, 64
features and growth 32 it has 16,697,987 parameters. x2 and x1 keep the same body and up-sampler and
fold the input with a pixel unshuffle first (Real-ESRGAN's ``RealESRGAN_x2plus``), so the output is
always exactly ``scale`` times the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing all earlier features (growth ``growth``); x + 0.2 * output."""

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(features + i * growth, growth if i < 4 else features, 3, padding=1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        for conv in self.convs:  # BasicSR's default_init_weights(scale=0.1): small residual branches
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for index, conv in enumerate(self.convs):
            out = conv(torch.cat(features, dim=1))
            if index < 4:
                features.append(self.act(out))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, x + 0.2 * output."""

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.body = nn.Sequential(*(DenseBlock(features, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.body(x)


class RRDBNet(nn.Module):
    """``low-resolution B x 3 x h x w -> B x 3 x (scale h) x (scale w)``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, scale: int = 4, features: int = 64,
                 blocks: int = 23, growth: int = 32):
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, got {scale}")
        self.scale = scale
        self.unshuffle = 4 // scale  # x2 / x1: fold the input so the two x2 up-samplings give `scale`
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv_up2 = nn.Conv2d(features, features, 3, padding=1)
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        x = degraded
        height, width = x.shape[-2:]
        if self.unshuffle > 1:
            pad_h, pad_w = (-height) % self.unshuffle, (-width) % self.unshuffle
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.act(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.act(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.act(self.conv_hr(feat)))
        return out[..., : height * self.scale, : width * self.scale]
