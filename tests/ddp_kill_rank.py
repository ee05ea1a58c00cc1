"""Helpers for tests that kill one rank of a two-process run, as a killed process dies (``os._exit``)."""

from __future__ import annotations

import os

import pytorch_lightning as pl

from degrade_lab.degradations.noise import AWGN


class KillRankOne(pl.Callback):
    """Training: rank 1 dies after the training step given by ``$DDP_KILL_AT_STEP``, once a checkpoint of an earlier
    step exists."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_rank == 1 and trainer.global_step >= int(os.environ.get("DDP_KILL_AT_STEP", "3")):
            os._exit(9)


class DyingAWGN(AWGN):
    """Synthesis: AWGN whose rank 1 (``LOCAL_RANK``, set by Lightning's launcher) dies when asked for its
    ``$DDP_KILL_AT_IMAGE``-th image; without that variable, plain AWGN."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def degrade(self, clean, generator=None):
        self.calls += 1
        kill_at = int(os.environ.get("DDP_KILL_AT_IMAGE", "0"))
        if kill_at and os.environ.get("LOCAL_RANK") == "1" and self.calls >= kill_at:
            os._exit(9)
        return super().degrade(clean, generator)
