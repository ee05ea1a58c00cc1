"""The degrader interface shared by hand-made pipelines and learned degradation models."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

Range = float | Sequence[float]


class Degrader(nn.Module, ABC):
    """Maps a clean batch and a random generator to a degraded batch.

    ``forward(clean, generator)``: ``clean`` is ``B x 3 x H x W`` in [0, 1]; the output is
    ``B x 3 x H/scale x W/scale`` in the input's dtype. All randomness is drawn from ``generator`` (on the batch's
    device), so a fixed seed gives the same result on every run. Per-image parameters (a noise
    level drawn from a range, say) are drawn for the whole batch at once.
    """

    #: how many times smaller the output is than the input (1 for noise, 4 for x4 SR)
    scale: int = 1

    def forward(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.last_parameters: dict[str, torch.Tensor] = {}
        # the output keeps the input's dtype (float32 parameters would otherwise promote bf16/fp16)
        return self.degrade(clean, generator).to(clean.dtype)

    def record(self, name: str, values: torch.Tensor) -> None:
        """Remember a per-image parameter of the last batch (``sigma`` on 0-255, ``quality``,
        ``blur_sigma`` in pixels): restorers that estimate or use a known degradation read it from
        ``batch["parameters"]`` (VDIR's EST(c) target, DRUNet's noise-level map)."""
        if not hasattr(self, "last_parameters"):
            self.last_parameters = {}
        self.last_parameters[name] = values.detach().float().reshape(-1)

    def parameter_names(self) -> set[str]:
        """The names this degrader records per image, found by degrading one small grey image."""
        size = 32 * self.scale
        parameter = next(iter(self.parameters()), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.inference_mode():
            self(torch.full((1, 3, size, size), 0.5, device=device), torch.Generator(device=device).manual_seed(0))
        return set(self.last_parameters)

    @abstractmethod
    def degrade(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The degradation itself; ``forward`` calls it."""

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class Identity(Degrader):
    """Leaves the image unchanged (the 'no degradation' baseline)."""

    def degrade(self, clean, generator=None):
        return clean


def as_range(value: Range, name: str) -> tuple[float, float]:
    """A fixed value ``v`` becomes ``(v, v)``; a two-element list is checked and kept."""
    if isinstance(value, (int, float)):
        return float(value), float(value)
    values = [float(v) for v in value]
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(f"{name} must be a number or a [low, high] pair with low <= high, got {list(value)}")
    return values[0], values[1]


def sample_uniform(
    low_high: tuple[float, float], batch: int, generator: torch.Generator | None, device, log: bool = False
) -> torch.Tensor:
    """``batch`` values drawn uniformly (or log-uniformly) from ``[low, high]``, one per image."""
    low, high = low_high
    u = torch.rand(batch, generator=generator, device=device)
    if log:
        low_t, high_t = torch.log(torch.tensor(low)), torch.log(torch.tensor(high))
        return torch.exp(low_t.to(device) + u * (high_t - low_t).to(device))
    return low + u * (high - low)


def per_image(values: torch.Tensor) -> torch.Tensor:
    """Shape ``B`` -> ``B x 1 x 1 x 1`` for broadcasting over an image batch."""
    return values.view(-1, 1, 1, 1)
