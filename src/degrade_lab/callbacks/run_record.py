"""Stores the resolved config, seed and package versions inside every checkpoint."""

from __future__ import annotations

import pytorch_lightning as pl

from degrade_lab.utils.runs import package_versions


class RunRecord(pl.Callback):
    """Adds ``checkpoint["degrade_lab"] = {config, seed, versions, global_step}`` so a checkpoint alone
    rebuilds its model (see :func:`degrade_lab.utils.checkpoint.load_model`)."""

    def __init__(self, config: dict, seed: int):
        self.config, self.seed = config, seed

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["degrade_lab"] = {
            "config": self.config,
            "seed": self.seed,
            "versions": package_versions(),
            "global_step": trainer.global_step,
        }
