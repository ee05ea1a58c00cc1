"""``degrade-lab train``: fit any model on any data module; checkpoints, config, summary."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict

from degrade_lab.callbacks.random_state import RandomState
from degrade_lab.callbacks.run_record import RunRecord
from degrade_lab.callbacks.step_timer import StepTimer
from degrade_lab.errors import UserInputError
from degrade_lab.lit.base import instantiate_model
from degrade_lab.tasks.common import domain_files, output_dir, save_config
from degrade_lab.utils.checkpoint import AtomicCheckpointIO
from degrade_lab.utils.io import atomic_write_json
from degrade_lab.utils.lock import OutputLock, is_launcher_process
from degrade_lab.utils.loggers import instantiate_loggers
from degrade_lab.utils.resume import check_same_model, resume_target
from degrade_lab.utils.runs import count_parameters, write_summary
from degrade_lab.utils.trusted_targets import COMMAND_LINE, get_class, instantiate

log = logging.getLogger(__name__)


def _resume_checkpoint(cfg: DictConfig, out: Path) -> str | None:
    """The checkpoint to continue from: ``resume=RUN`` (or a checkpoint in it); ``resume=auto``, or a job that the
    cluster requeued after a preemption or time-out (``SLURM_RESTART_COUNT`` > 0), the run folder's own
    ``last.ckpt`` when there is one (a fresh start otherwise)."""
    own = out / "checkpoints" / "last.ckpt"
    requeued = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    if str(cfg.get("resume")) == "auto" or (requeued and not cfg.get("resume")):
        if own.is_file():
            log.info("%s: continuing from %s", "requeued" if requeued else "resume=auto", own)
            return str(own)
        return None
    if not cfg.get("resume"):
        return None
    return str(resume_target(str(cfg.resume))[1])  # a run folder of degrade-lab train, or a checkpoint in one


def _previous_wall_seconds(out: Path) -> float:
    """Time spent by the earlier sessions of a resumed run (0 if it was killed before any summary)."""
    try:
        return float(json.loads((out / "summary.json").read_text()).get("wall_seconds", 0.0))
    except (OSError, ValueError):
        return 0.0


def _finish_wandb(loggers: list) -> None:
    """Close wandb runs (offline files are flushed), so sweeps start each job with a fresh run."""
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish()


def _callback(cfg: DictConfig, model):
    """A configured callback; ``monitor: auto`` (checkpointing) tracks the model's own metric."""
    if cfg.get("monitor") == "auto":
        return instantiate(cfg, origin=COMMAND_LINE, monitor=model.monitor, mode=model.monitor_mode)
    return instantiate(cfg, origin=COMMAND_LINE)


def train(cfg: DictConfig) -> dict:
    """Train ``cfg.model`` on ``cfg.data``; returns the final logged metrics."""
    start = time.time()
    out = output_dir(cfg)
    owner = is_launcher_process()
    # the lock removes the temporaries of a killed run (a checkpoint being written when it was killed)
    with OutputLock(out, what="run folder") if owner else nullcontext():
        return _train(cfg, out, start)


def _resolve_auto(cfg: DictConfig, out: Path) -> None:
    """Model settings given as ``auto`` (LUD-VAE's pre-noise levels) are computed by the model class's
    ``settings_from_noise`` from the noise estimated in ``data.target`` (``degrade-lab estimate-noise``, no clean
    image used); the resolved numbers replace ``auto`` in the run's config and the estimate is kept as
    ``noise_estimate.json``."""
    auto = {key: value for key, value in cfg.model.items() if isinstance(value, str) and value == "auto"}
    if not auto:
        return
    model_class = get_class(cfg.model._target_, origin=COMMAND_LINE)
    resolve = getattr(model_class, "settings_from_noise", None)
    if resolve is None:
        raise UserInputError(f"model.{next(iter(auto))}=auto: {model_class.__name__} sets nothing automatically.")
    from degrade_lab.metrics.pooled_noise import per_pixel_std
    from degrade_lab.tasks.calibrate import describe_images
    from degrade_lab.tasks.estimate_noise import estimate_folder

    if cfg.data.get("target"):
        estimate, where = estimate_folder(cfg.data.target, progress=False), cfg.data.target
    else:  # the degraded images the model trains on (a data.split_from split, SIDD, ...)
        degraded = domain_files(cfg.data)[1]
        if not degraded:
            raise UserInputError(f"model.{next(iter(auto))}=auto estimates the noise of the degraded training "
                                 "images: give data.target=DEGRADED_DIR.")
        where = describe_images(degraded)
        estimate = estimate_folder(os.path.commonpath([str(f) for f in degraded]) if len(degraded) > 1
                                   else degraded[0].parent, progress=False, files=degraded)
    noise_std = per_pixel_std(estimate)
    if noise_std != noise_std:
        raise UserInputError(f"model.{next(iter(auto))}=auto: no noise could be read in the degraded images (no flat, "
                             "unclipped patch); give the levels as numbers.")
    values = resolve(OmegaConf.to_container(cfg.model), noise_std)
    with open_dict(cfg):
        cfg.model.update(values)
    atomic_write_json(out / "noise_estimate.json", estimate)
    log.info("estimated noise std of %s: %.2f; set %s", where, noise_std,
             ", ".join(f"model.{k}={v}" for k, v in values.items()))


def _calibrate_checkpoints(cfg: DictConfig, out: Path, model) -> dict[str, dict]:
    """A degradation model's ``best.ckpt`` and ``last.ckpt`` calibrated to the noise of its degraded training
    images (``data.target``, or the degraded side of a ``data.split_from`` split; ``degrade-lab calibrate``; no
    pair used), the result stored in each; skipped with ``calibrate=false`` or without such images."""
    if not cfg.get("calibrate", True) or not getattr(model, "calibration_option", None):
        return {}
    from degrade_lab.tasks.calibrate import calibrate_checkpoint

    results = {}
    for name in ("best", "last"):
        ckpt = out / "checkpoints" / f"{name}.ckpt"
        if ckpt.is_file():
            try:
                # the run's own images, read from the checkpoint's config (a split run: its two domains)
                results[name] = calibrate_checkpoint(ckpt, seed=int(cfg.seed),
                                                     device=model.device)
            except Exception as err:  # noqa: BLE001 (the training itself succeeded: say why, keep the run)
                if not isinstance(err, UserInputError):
                    log.exception("%s.ckpt was not calibrated", name)
                log.warning("%s.ckpt was not calibrated (%s: %s); the checkpoint is as trained: degrade-lab "
                            "calibrate ckpt=%s tries again", name, type(err).__name__, err, ckpt)
                results[name] = {"error": f"{type(err).__name__}: {err}"}
    atomic_write_json(out / "calibration.json", results)
    return results


def _train(cfg: DictConfig, out: Path, start: float) -> dict:
    # Lightning looks for state_dict() on the DataLoader itself; ours resumes through the data module's
    # state (sampler position, per-sample seeds), tested bit-exact in tests/test_safety.py
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    pl.seed_everything(cfg.seed, workers=True)
    _resolve_auto(cfg, out)
    ckpt_path = _resume_checkpoint(cfg, out)
    if ckpt_path:
        check_same_model(ckpt_path, OmegaConf.to_container(cfg.model, resolve=True))
    config = save_config(cfg, out, overwrite=ckpt_path is None)

    model = instantiate_model(cfg.model)
    data_scale = int(cfg.data.get("scale", 1))
    if model.data_kind == "paired" and int(getattr(model, "scale", 1)) != data_scale:
        raise UserInputError(
            f"the model restores at scale {getattr(model, 'scale', 1)} but data.scale is {data_scale}: "
            "use an SR model at that scale (model=rrdbnet / vdir follow data.scale) or matching data."
        )
    datamodule = instantiate(cfg.data, origin=COMMAND_LINE, kind=model.data_kind, seed=cfg.seed,
                                         clean_validation=model.unpaired_monitor is not None)
    if getattr(datamodule, "unpaired_validation", False) and model.unpaired_monitor:
        model.monitor = model.unpaired_monitor  # no pairs to validate on: best.ckpt by the noise match
        log.info("no validation pairs: best.ckpt tracks %s (synthetic vs data.target noise)", model.monitor)
    if hasattr(model, "check_data"):  # e.g. a non-blind restorer on real pairs without a noise level
        model.check_data(datamodule.known_parameters())
    if getattr(datamodule, "split_record", None):  # data.split_from: which image went to which domain
        atomic_write_json(out / "split.json", datamodule.split_record)
    callbacks = [_callback(c, model) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    callbacks += [RunRecord(config, cfg.seed), RandomState()]
    loggers = instantiate_loggers(cfg.get("logger"), out, resuming=ckpt_path is not None)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, origin=COMMAND_LINE, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()],
        default_root_dir=str(out),
    )
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        if trainer.interrupted:
            raise KeyboardInterrupt
        trainer.save_checkpoint(out / "checkpoints" / "last.ckpt")
    finally:
        _finish_wandb(loggers)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    params = count_parameters(model)  # as trained (calibration below freezes the weights it reads)
    failures = {}  # a calibration that failed after the last checkpoint: said in the summary, the run kept
    if trainer.is_global_zero:
        for name, result in _calibrate_checkpoints(cfg, out, model).items():
            if "error" in result:
                failures[f"calibration of {name}.ckpt"] = result["error"]
            else:
                metrics[f"calibrated_{result['option']}_{name}"] = result["value"]
    optimized = str(cfg.get("optimized_metric") or "auto")
    if optimized == "auto":  # what a sweeper optimises: the model's own validation metric at its best
        metrics["optimized"] = metrics.get(f"{model.monitor}_best")
    if trainer.is_global_zero:
        session = time.time() - start
        timers = [c.summary() for c in trainer.callbacks if isinstance(c, StepTimer)]
        earlier = _previous_wall_seconds(out) if ckpt_path else 0.0
        write_summary(
            out,
            task="train",
            params=params,
            global_step=trainer.global_step,
            wall_seconds=round(earlier + session, 2),
            wall_seconds_this_session=round(session, 2),
            seed=cfg.seed,
            metrics=metrics,
            resumed_from=ckpt_path,
            **({"failed_after_training": failures} if failures else {}),
            **({"data_loading": datamodule.describe_loading()} if hasattr(datamodule, "describe_loading") else {}),
            **({"throughput": timers[0]} if timers else {}),
        )
    return metrics
