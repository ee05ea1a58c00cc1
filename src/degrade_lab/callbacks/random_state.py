"""Global random streams in checkpoints, so that a resumed run continues exactly where it stopped.

Lightning restores weights, optimizers, schedulers and loop counters, but not the global random
generators that training steps draw from (VAE sampling noise, dropout, random posterior choices).
:class:`RandomState` stores them (torch CPU and CUDA, numpy, Python) in every checkpoint and restores
them right before the first training step of a resumed run. Validation runs on a forked state that is
put back afterwards, so validating (or not, after a resume) never shifts the training stream.
Written by hand: Lightning 2.x has no public callback for this.
"""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


def collect_states() -> dict:
    """The global random states as tensors and plain data (loadable with ``weights_only=True``)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached"]))
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RandomState(pl.Callback):
    """Saves the global random states with every checkpoint; a resumed run gets them back before its
    first training step. Validation leaves them untouched."""

    def __init__(self):
        self._before_validation: dict | None = None
        self._to_restore: dict | None = None

    def state_dict(self) -> dict:
        # a checkpoint written during validation (best.ckpt) records the state training continues with
        return {"states": self._before_validation or collect_states()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._to_restore = state_dict.get("states")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._to_restore is not None:
            set_states(self._to_restore)
            self._to_restore = None

    def on_validation_start(self, trainer, pl_module):
        self._before_validation = collect_states()

    def on_validation_end(self, trainer, pl_module):
        if self._before_validation is not None:
            set_states(self._before_validation)
            self._before_validation = None
