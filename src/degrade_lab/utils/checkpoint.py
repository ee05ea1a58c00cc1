"""Checkpoints: atomic saving, and rebuilding a model from a checkpoint file alone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hydra
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from degrade_lab.errors import UserInputError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but written to a temp file and renamed into place, so a run
    killed mid-save never leaves a truncated ``last.ckpt``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"checkpoint '{path}' does not exist.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserInputError(f"checkpoint '{path}' cannot be read ({type(err).__name__}: {err}).") from err
    if not isinstance(checkpoint, dict) or "degrade_lab" not in checkpoint or "state_dict" not in checkpoint:
        raise UserInputError(f"checkpoint '{path}' was not written by degrade-lab train (no stored config).")
    return checkpoint


def load_model(path: str | Path):
    """Rebuild the LightningModule of a checkpoint from its stored config and load its weights.

    Returns ``(module, record)`` where ``record`` holds the run's ``config``, ``seed`` and ``versions``.
    The module is in eval mode on the CPU.
    """
    checkpoint = read_checkpoint(path)
    record = checkpoint["degrade_lab"]
    config = dict(record["config"]["model"])
    if config.get("val_lpips"):
        config["val_lpips"] = None  # a validation-only metric: inference does not need its backbone
    module = hydra.utils.instantiate(config)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval(), record


def load_model_of(path: str | Path | None, cls: type, name: str):
    """The LightningModule of checkpoint ``path`` (eval mode), which must be a ``cls``: a learned degrader
    named ``name`` (``degrader=name``) refuses a missing path and other models' checkpoints with a clear
    message."""
    if not path:
        raise UserInputError(
            f"degrader '{name}' needs a checkpoint: degrader.ckpt=RUN/checkpoints/last.ckpt "
            "(for training pairs on the fly: data.degrader=RUN/checkpoints/last.ckpt)."
        )
    module, record = load_model(path)
    if not isinstance(module, cls):
        target = record["config"]["model"].get("_target_", type(module).__name__)
        raise UserInputError(
            f"checkpoint '{path}' holds a {type(module).__name__} model ({target}), but degrader '{name}' needs a "
            f"{cls.__name__} checkpoint (from `degrade-lab train model={name}`)."
        )
    return module
