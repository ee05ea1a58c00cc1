"""Where a training step's time goes: the network, waiting for the data loader, making pairs on the fly.

:class:`StepTimer` measures each training step from one ``on_train_batch_start`` to the next: the time inside
the step (forward, backward, optimizer: the network's), and the time between steps, which Lightning spends
fetching the next batch from the loader, moving it to the device and running the data module's
``on_after_batch_transfer`` (where an on-the-fly degrader makes the degraded half; the data module reports those
seconds as ``degrade_seconds``). It logs ``time/steps_per_second`` and ``time/data_wait_share`` and gives the
totals to the run's summary (``throughput``). The first ``skip`` steps (start-up, first allocations) are left out.
Written by hand: Lightning's ``ThroughputMonitor`` counts samples per second but cannot tell waiting for data
from computing, and its profilers report per-hook totals, not per-step shares.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl


class StepTimer(pl.Callback):
    def __init__(self, skip: int = 3, log_every: int = 50):
        self.skip, self.log_every = int(skip), int(log_every)
        self.steps = 0
        self.step_seconds = self.between_seconds = self.degrade_seconds = 0.0
        self._started: float | None = None
        self._ended: float | None = None
        self._degrade_at_end = 0.0
        self._seen = 0

    @staticmethod
    def _degrade_total(trainer) -> float:
        return float(getattr(trainer.datamodule, "degrade_seconds", 0.0)) if trainer.datamodule is not None else 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        self._seen += 1
        if self._ended is not None and self._seen > self.skip + 1:
            self.between_seconds += now - self._ended
            self.degrade_seconds += self._degrade_total(trainer) - self._degrade_at_end
        self._started = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        if self._started is not None and self._seen > self.skip:
            self.step_seconds += now - self._started
            self.steps += 1
        self._ended, self._degrade_at_end = now, self._degrade_total(trainer)
        if self.steps and self.log_every and self.steps % self.log_every == 0:
            summary = self.summary()
            pl_module.log_dict({"time/steps_per_second": summary["steps_per_second"],
                                "time/data_wait_share": summary["data_wait_share"]}, on_step=True, on_epoch=False)

    def on_validation_start(self, trainer, pl_module):
        self._ended = None  # validation time is not data waiting

    def summary(self) -> dict:
        """Steps timed, steps per second, and the shares of the time spent in the step (the network), waiting for
        the loader, and degrading on the fly."""
        between = max(0.0, self.between_seconds - self.degrade_seconds)
        total = self.step_seconds + self.between_seconds
        if not self.steps or total <= 0:
            return {"steps_timed": self.steps}
        return {"steps_timed": self.steps, "steps_per_second": round(self.steps / total, 4),
                "network_share": round(self.step_seconds / total, 4), "data_wait_share": round(between / total, 4),
                "degrade_share": round(self.degrade_seconds / total, 4)}
