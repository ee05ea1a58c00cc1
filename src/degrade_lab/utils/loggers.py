"""Building the configured Lightning loggers; wandb runs keep their id in the run folder."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from omegaconf import DictConfig, open_dict

from degrade_lab.utils.io import atomic_write_text
from degrade_lab.utils.trusted_targets import COMMAND_LINE, instantiate


def wandb_run_id(run_dir: Path) -> str:
    """The wandb run id of this run folder (``wandb_id.txt``), created once: a resumed run
    therefore continues the same wandb run."""
    path = run_dir / "wandb_id.txt"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write_text(path, run_id + "\n")
    return run_id


def instantiate_loggers(cfg: DictConfig | None, run_dir: Path, resuming: bool = False) -> list:
    """Instantiate every logger config; on resume, file loggers get a new version folder so the
    earlier logs are kept (Lightning's CSVLogger would otherwise overwrite them)."""
    loggers = []
    for conf in (cfg or {}).values():
        if not conf or "_target_" not in conf:
            continue
        if resuming and not conf._target_.endswith("WandbLogger") and "version" in conf:
            with open_dict(conf):
                conf.version = f"resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        if conf._target_.endswith("WandbLogger"):
            with open_dict(conf):
                conf.id = wandb_run_id(run_dir)
                conf.resume = "allow"
                # offline unless the user chose a mode (WANDB_MODE=online to sync live)
                conf.offline = os.environ.get("WANDB_MODE") is None
        loggers.append(instantiate(conf, origin=COMMAND_LINE))
    return loggers
