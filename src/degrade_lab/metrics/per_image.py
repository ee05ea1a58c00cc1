"""A torchmetrics Metric that averages any per-image score over every image it is fed (DDP-reduced)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchmetrics import Metric


class MeanOverImages(Metric):
    """Mean of ``function(*inputs)`` (a ``B``-vector of per-image values) over all updates."""

    full_state_update = False

    def __init__(self, function: Callable[..., torch.Tensor], **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, *inputs: torch.Tensor) -> None:
        values = self.function(*inputs).double()
        self.total += values.sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()
