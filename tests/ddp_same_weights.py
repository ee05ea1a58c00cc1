"""A callback for tests/test_deflow.py's DDP run (imported by the training processes through PYTHONPATH): after
training, every rank gathers every other rank's parameters and rank 0 writes whether they are all equal to the
file named by ``DDP_CHECK_OUT``. Parameters initialised from data (DeFlow's ActNorm) differ between replicas
unless rank 0's initialisation is broadcast: DDP syncs weights only when it wraps the model, before any batch."""

from __future__ import annotations

import json
import os

import pytorch_lightning as pl
import torch
import torch.distributed as dist


class SameWeightsOnEveryRank(pl.Callback):
    def on_train_end(self, trainer, pl_module):
        flat = torch.cat([p.detach().flatten().float() for p in pl_module.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, flat)
        if trainer.global_rank == 0:
            differences = [float((g - gathered[0]).abs().max()) for g in gathered]
            with open(os.environ["DDP_CHECK_OUT"], "w") as f:
                json.dump({"ranks": len(gathered), "max_difference": max(differences)}, f)
