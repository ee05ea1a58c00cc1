"""A callback for tests: rank 1 of a DDP run dies (``os._exit``, as a killed process does) after the training step
given by ``$DDP_KILL_AT_STEP``, once a checkpoint of an earlier step exists."""

from __future__ import annotations

import os

import pytorch_lightning as pl


class KillRankOne(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_rank == 1 and trainer.global_step >= int(os.environ.get("DDP_KILL_AT_STEP", "3")):
            os._exit(9)
