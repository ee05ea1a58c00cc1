"""The optimizer and per-step LR scheduler of every LightningModule, from partial configs."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def configure_optimizers(module: nn.Module, optimizer: Callable | None, scheduler: Callable | None):
    """What ``LightningModule.configure_optimizers`` returns for a partial optimizer (called with the
    module's parameters) and an optional partial scheduler stepped every training step."""
    if optimizer is None:
        raise ValueError("model.optimizer is not set (a partial optimizer config is needed to train)")
    built = optimizer(params=module.parameters())
    if scheduler is None:
        return built
    return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler(optimizer=built), "interval": "step"}}
