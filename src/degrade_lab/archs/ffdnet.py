"""FFDNet (Zhang, Zuo & Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image Denoising",
TIP 2018): a plain CNN that works on the image folded into four half-resolution sub-images, with the noise
level given as an extra input map.

Also the restorer inside VDIR's Table XI ("Ours (FFDNet)"): there the map is VDIR's latent ``c`` (eq. 8)
instead of the noise level, so the same network becomes blind.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FFDNet(nn.Module):
    """``forward(degraded, condition) -> restored``.

    Fig. 1 of the paper: the reversible down-sampling folds each 2 x 2 block of pixels into channels
    (pixel unshuffle: ``4 * in_channels`` channels at half resolution), the condition map is concatenated,
    then ``depth`` 3 x 3 convolutions (Conv+ReLU, ``depth - 2`` x Conv(+BN)+ReLU, Conv to
    ``4 * out_channels``) and the inverse folding (pixel shuffle). The network predicts the clean image
    itself: FFDNet uses no residual learning (sec. III-B). Odd sizes are padded by replication and cropped
    back, as the KAIR release does.

    ``condition`` is either the noise level sigma on the 0-255 scale (a float or one value per image:
    the paper's uniform map M = sigma / 255, eq. 3), or a ``B x condition_channels x h x w`` map at any
    resolution, bilinearly resized to the half-resolution grid (a spatially varying noise map, or VDIR's
    latent). ``condition_channels=0`` makes a blind FFDNet (no map input).

    Defaults: the colour model of the paper and of the KAIR release (12 layers, 96 channels; 852,108
    parameters). KAIR's release has no batch normalisation (merged into the convolutions), so
    ``batch_norm=False`` loads it; the paper trained with it (``batch_norm=True``). Grey model:
    ``in_channels=out_channels=1, channels=64, depth=15`` (485,316 parameters).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, channels: int = 96, depth: int = 12,
                 condition_channels: int = 1, batch_norm: bool = False):
        super().__init__()
        if depth < 3:
            raise ValueError(f"FFDNet needs depth >= 3, got {depth}")
        self.condition_channels, self.scale = condition_channels, 1
        self.noise_map = condition_channels > 0  # RestorationModule passes the noise level when True
        layers: list[nn.Module] = [nn.Conv2d(4 * in_channels + condition_channels, channels, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels, momentum=0.1, eps=1e-4))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(channels, 4 * out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def condition_map(self, condition: torch.Tensor | float, batch: int, size: tuple[int, int],
                      like: torch.Tensor) -> torch.Tensor:
        """The ``B x condition_channels x h x w`` map on the half-resolution grid."""
        condition = torch.as_tensor(condition, dtype=like.dtype, device=like.device)
        if condition.dim() == 4:
            if condition.shape[1] != self.condition_channels:
                raise ValueError(f"this FFDNet takes a {self.condition_channels}-channel condition map, "
                                 f"got {condition.shape[1]} channels")
            if tuple(condition.shape[-2:]) != tuple(size):
                condition = F.interpolate(condition, size=size, mode="bilinear", align_corners=False)
            return condition.expand(batch, -1, -1, -1)
        if self.condition_channels != 1:
            raise ValueError(f"a noise level (sigma) is one channel; this FFDNet takes "
                             f"{self.condition_channels} condition channels: pass a map")
        level = condition.reshape(-1, 1, 1, 1) / 255.0
        return level.expand(batch, 1, *size)

    def forward(self, degraded: torch.Tensor, condition: torch.Tensor | float | None = None) -> torch.Tensor:
        height, width = degraded.shape[-2:]
        pad_h, pad_w = height % 2, width % 2
        x = F.pad(degraded, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else degraded
        x = F.pixel_unshuffle(x, 2)
        if self.condition_channels:
            if condition is None:
                raise ValueError("this FFDNet takes a noise level map: pass the noise level (sigma on the "
                                 "0-255 scale) or a condition map")
            x = torch.cat([x, self.condition_map(condition, x.shape[0], x.shape[-2:], x)], dim=1)
        return F.pixel_shuffle(self.body(x), 2)[..., :height, :width]
