"""Chaining degraders: ``Compose([blur, bicubic, noise, jpeg])``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from degrade_lab.degradations.base import Degrader


class Compose(Degrader):
    """Applies degraders in order; the overall scale is the product of theirs."""

    def __init__(self, degraders: Sequence[Degrader]):
        super().__init__()
        self.degraders = nn.ModuleList(degraders)
        self.scale = 1
        for degrader in self.degraders:
            self.scale *= int(getattr(degrader, "scale", 1))

    def degrade(self, clean, generator=None):
        out = clean
        for degrader in self.degraders:
            out = degrader(out, generator)
            for name, values in getattr(degrader, "last_parameters", {}).items():
                self.record(name, values)
        return out
