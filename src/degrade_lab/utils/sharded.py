"""A folder task's per-image work on Lightning's engine, across processes and machines (``hardware=ddp``,
``ddp_cpu``, ``trainer.num_nodes``): ``Trainer.predict`` over this rank's shard of the images and a prediction writer
that writes each result behind the network in threads.

The task gives the same four functions as to :func:`~degrade_lab.utils.overlap.overlapped` (``read`` an item,
``compute`` it on a device, ``write`` the result, record it with ``done``), so a sharded run computes what a
single-process run computes, image by image: each image's randomness is seeded by its name, never by its rank or
order. Rank 0's item list is broadcast (every rank shards the same list) and rank ``r`` of ``n`` takes items
``r, r + n, ...``. Lightning launches the other ranks (re-running the command, in the same run folder) and does the
process-group work; nothing here is a distributed engine of its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset


def wants_several_processes(trainer: dict) -> bool:
    """Whether a ``hardware=`` choice asks for more than one process (devices > 1, all GPUs, or several nodes)."""
    devices = trainer.get("devices", 1)
    many = devices in (-1, "-1", "auto") and str(trainer.get("accelerator", "cpu")) in ("gpu", "cuda") \
        and torch.cuda.device_count() > 1
    if isinstance(devices, int) or str(devices).isdigit():
        many = int(devices) > 1
    elif isinstance(devices, (list, tuple)) or str(devices).count(",") > 0:
        many = len(devices if isinstance(devices, (list, tuple)) else [d for d in str(devices).split(",") if d]) > 1
    return many or int(trainer.get("num_nodes", 1) or 1) > 1


def _as_is(sample):
    return sample


class _Items(Dataset):
    def __init__(self, items: list, read: Callable):
        self.items, self.read = items, read

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        tic = time.perf_counter()
        data = self.read(self.items[index])
        return index, data, time.perf_counter() - tic


class _Shards(pl.LightningDataModule):
    def __init__(self, items: list, read: Callable, workers: int):
        super().__init__()
        self.items, self.read, self.workers = items, read, workers
        self.shard: list = []

    def setup(self, stage=None):
        items = self.trainer.strategy.broadcast(self.items, src=0)  # every rank shards rank 0's list
        self.shard = items[self.trainer.global_rank :: self.trainer.world_size]

    def predict_dataloader(self):
        return DataLoader(_Items(self.shard, self.read), batch_size=None, shuffle=False, collate_fn=_as_is,
                          num_workers=self.workers, persistent_workers=False)


class _Compute(pl.LightningModule):
    """Holds the networks (so Lightning moves them to the rank's device) and calls ``compute`` per item."""

    def __init__(self, compute: Callable, networks: torch.nn.Module | None):
        super().__init__()
        self.compute, self.networks = compute, networks
        self.seconds = 0.0

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        index, data, read_seconds = batch
        tic = time.perf_counter()
        result = self.compute(self.trainer.datamodule.shard[index], data, self.device)
        self.seconds += time.perf_counter() - tic
        return index, result, read_seconds


class _Writer(BasePredictionWriter):
    """Writes each result in writer threads and calls ``done`` in order, in the rank's main thread; ``flush`` once
    the rank's last result is written."""

    def __init__(self, write: Callable, done: Callable, threads: int, flush: Callable | None = None):
        super().__init__(write_interval="batch")
        self.write, self.done, self.threads, self.flush = write, done, max(1, threads), flush
        self.read_seconds = self.write_seconds = 0.0
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque = deque()

    def _timed(self, item, result):
        tic = time.perf_counter()
        written = self.write(item, result)
        return written, time.perf_counter() - tic

    def _finish(self, block: bool) -> None:
        while self.pending and (block or self.pending[0][2].done() or len(self.pending) > self.threads + 1):
            item, result, future = self.pending.popleft()
            written, seconds = future.result()
            self.write_seconds += seconds
            self.done(item, result, written)

    def on_predict_start(self, trainer, pl_module):
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="write")

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        index, result, read_seconds = prediction
        self.read_seconds += read_seconds
        if result is not None:
            item = trainer.datamodule.shard[index]
            self.pending.append((item, result, self.pool.submit(self._timed, item, result)))
        self._finish(block=False)

    def on_predict_end(self, trainer, pl_module):
        self._finish(block=True)
        self.pool.shutdown()
        if self.flush is not None:
            self.flush()


def sharded(items: list, read: Callable, compute: Callable, write: Callable, done: Callable, trainer: dict,
            networks: torch.nn.Module | None = None, threads: int = 2, progress: bool = True,
            root: str | None = None, flush: Callable | None = None) -> dict:
    """Run ``read -> compute(item, data, device) -> write -> done`` over this rank's shard of ``items`` with
    ``Trainer.predict`` (``trainer``: the ``hardware=`` choice's accelerator, devices, strategy, num_nodes; the
    networks run at their own precision, so Lightning's is fixed at 32-true). ``networks`` (a module holding every
    network ``compute`` uses) is moved to the rank's device. ``flush`` (recording what the rank wrote) runs on every
    rank once its shard is written, even when another rank has died, and before the ranks meet. Returns this rank's ``rank``, ``world`` and the seconds
    of each stage (``read`` in the loader, ``compute``, ``write``, ``wall``); every rank has finished writing when
    it returns."""
    began = time.perf_counter()
    options = {key: trainer[key] for key in ("accelerator", "devices", "strategy", "num_nodes") if key in trainer}
    writer = _Writer(write, done, threads, flush)
    engine = pl.Trainer(**options, precision="32-true", logger=False, enable_checkpointing=False,
                        enable_progress_bar=progress, enable_model_summary=False, callbacks=[writer],
                        use_distributed_sampler=False, inference_mode=True, default_root_dir=root)
    module = _Compute(compute, networks)
    engine.predict(module, datamodule=_Shards(list(items), read, workers=1 if threads else 0),
                   return_predictions=False)
    engine.strategy.barrier("sharded-written")
    return {"rank": engine.global_rank, "world": engine.world_size, "is_global_zero": engine.is_global_zero,
            "read": round(writer.read_seconds, 3), "compute": round(module.seconds, 3),
            "write": round(writer.write_seconds, 3), "wall": round(time.perf_counter() - began, 3),
            "strategy": engine.strategy}
