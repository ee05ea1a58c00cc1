"""A one-channel (grey) network applied to each channel of a colour image separately.

KAIR's grey denoisers (``dncnn_15/25/50.pth``, ``ffdnet_gray.pth``, ``drunet_gray.pth``) restore colour photos
channel by channel this way; the noise level of a non-blind network is given to each of an image's channels.
"""

from __future__ import annotations

import torch
from torch import nn


class PerChannel(nn.Module):
    """``forward(x [, noise_level])``: ``net`` on every channel of ``x`` as its own 1-channel image."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.noise_map = bool(getattr(net, "noise_map", False))
        self.scale = int(getattr(net, "scale", 1))

    def forward(self, x: torch.Tensor, *condition) -> torch.Tensor:
        batch, channels = x.shape[:2]
        flat = x.reshape(batch * channels, 1, *x.shape[-2:])
        if condition and condition[0] is not None and not (
                isinstance(condition[0], torch.Tensor) and condition[0].dim() == 4):
            level = torch.as_tensor(condition[0], dtype=x.dtype, device=x.device).reshape(-1)
            condition = (level.expand(batch).repeat_interleave(channels), *condition[1:])
        out = self.net(flat, *condition)
        return out.reshape(batch, channels, *out.shape[-2:])
