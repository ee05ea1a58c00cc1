"""What every trained degradation model shares as a degrader: loading its checkpoint, per-image options,
autocast, per-image seeds.

A learned degrader wraps the LightningModule of a checkpoint written by ``degrade-lab train`` (rebuilt
from the checkpoint's own config, safely: :func:`~degrade_lab.utils.checkpoint.load_model_of`). Its
network does the translation itself (``net.synthesize(image, seeds, ..., tile_size=...)``: position-
addressed noise, seamless tiles); the degrader draws each image's options (a number, or a ``[low, high]``
range drawn per image) and a seed per image from the caller's generator, and runs the network under
bfloat16 autocast when asked. A new learned model subclasses :class:`LearnedDegrader` with the dotted name of
its LightningModule (``trained_by``) and its config name; nothing here knows the models.
"""

from __future__ import annotations

import contextlib

import torch

from degrade_lab.degradations.base import Degrader, Range, as_range, sample_uniform
from degrade_lab.errors import UserInputError
from degrade_lab.utils.checkpoint import load_model_of


class LearnedDegrader(Degrader):
    """Base of the degraders of trained models. Args: ``ckpt`` (a run's ``checkpoints/last.ckpt`` or
    ``best.ckpt``), ``module`` (an already loaded LightningModule instead), ``tile_size`` (pixels; 0 = never
    tile), ``bf16`` (bfloat16 autocast)."""

    #: the LightningModule class (dotted path) whose checkpoints this degrader runs
    trained_by: str = ""
    #: the degrader's config name (``degrader=NAME``)
    name: str = ""

    def __init__(self, ckpt: str | None = None, module=None, tile_size: int = 512, bf16: bool = False):
        super().__init__()
        if module is None:
            module = load_model_of(ckpt, self.trained_by, self.name).requires_grad_(False)
        self.module = module.eval()
        self.tile_size, self.bf16 = int(tile_size or 0), bool(bf16)

    @staticmethod
    def option(value: Range, name: str, minimum: float = 0.0) -> tuple[float, float]:
        """A per-image option given as a number or a ``[low, high]`` range, checked against ``minimum``."""
        low_high = as_range(value, name)
        if low_high[0] < minimum:
            raise UserInputError(f"degrader.{name} must be >= {minimum:g}, got {value}.")
        return low_high

    @staticmethod
    def seeds(batch: int, generator: torch.Generator | None, device) -> list[int]:
        """One seed per image: it addresses every random number of that image's translation."""
        return torch.randint(2**62, (batch,), generator=generator, device=device).tolist()

    @staticmethod
    def draw(low_high: tuple[float, float], batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
        return sample_uniform(low_high, batch, generator, device)

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
