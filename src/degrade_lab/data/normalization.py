"""Channel-wise colour normalisation of one domain to another's statistics (LUD-VAE's AIM19 setting)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ColorNormalization(nn.Module):
    """``y' = clamp((y - mean_from) / std_from * std_to + mean_to, 0, 1)`` per colour channel, and its
    inverse (without the clamp, which the final 8-bit conversion performs).

    LUD-VAE normalises the AIM19 degraded domain to the clean domain's per-channel mean and standard
    deviation before training (seed-reference 1.3) and maps generated images back with the inverse.
    Statistics are given on the 0-255 scale.
    """

    def __init__(self, mean_from: Sequence[float], std_from: Sequence[float], mean_to: Sequence[float],
                 std_to: Sequence[float]):
        super().__init__()
        stats = {"mean_from": mean_from, "std_from": std_from, "mean_to": mean_to, "std_to": std_to}
        for name, values in stats.items():
            values = [float(v) for v in values]
            if len(values) != 3 or (name.startswith("std") and min(values) <= 0):
                raise ValueError(f"{name} must hold 3 values (positive for std), got {values}")
            self.register_buffer(name, torch.tensor(values).view(1, 3, 1, 1) / 255.0, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return ((image - self.mean_from) / self.std_from * self.std_to + self.mean_to).clamp(0, 1)

    def inverse(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean_to) / self.std_to * self.std_from + self.mean_from


class NoNormalization(nn.Module):
    """The identity, with the same interface as :class:`ColorNormalization`."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def inverse(self, image: torch.Tensor) -> torch.Tensor:
        return image
