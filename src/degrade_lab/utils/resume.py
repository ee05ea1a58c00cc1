"""What ``resume=`` may name, checked before anything is written: a training run folder of degrade_lab, or a
checkpoint inside one (``RUN/checkpoints/*.ckpt``), with the same model settings.

A resumed run writes into the folder it resumes (checkpoints, logs, ``.hydra/``, ``summary.json``), so a path
that is anything else (``resume=~/Downloads/model.ckpt``: its grandparent would become the run folder) is refused
before Hydra creates or touches a file there. The run is recognised by its record: ``config.yaml`` written by
``degrade-lab train`` (``task_name: train``) beside ``checkpoints/``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from degrade_lab.errors import UserInputError


def resume_target(value: str | Path) -> tuple[Path, Path]:
    """``(run folder, checkpoint)`` of ``resume=value``; stops with a message naming what is wrong."""
    path = Path(str(value)).expanduser().absolute()
    if path.is_file():
        if path.suffix.lower() != ".ckpt" or path.parent.name != "checkpoints":
            raise UserInputError(
                f"cannot resume from '{path}': resume= takes a training run folder or a checkpoint inside one "
                "(RUN/checkpoints/last.ckpt); a model file elsewhere starts a new run with model.init_from= "
                "where the model takes it.")
        run, checkpoint = path.parent.parent, path
    elif path.is_dir():
        run, checkpoint = path, path / "checkpoints" / "last.ckpt"
        if not checkpoint.is_file():
            raise UserInputError(f"cannot resume: checkpoint '{checkpoint}' does not exist.")
    else:
        raise UserInputError(f"cannot resume: '{path}' does not exist.")
    record = run / "config.yaml"
    try:
        config = yaml.safe_load(record.read_text()) if record.is_file() and not record.is_symlink() else None
    except (OSError, yaml.YAMLError):
        config = None
    if not isinstance(config, dict) or config.get("task_name") != "train":
        raise UserInputError(
            f"cannot resume: '{run}' is not a run folder of degrade-lab train (no config.yaml of a training run "
            "beside checkpoints/); nothing was written there.")
    for entry in sorted(run.iterdir()):  # a resumed run writes into these: never through a link out of the folder
        if entry.is_symlink():
            raise UserInputError(f"cannot resume: '{entry}' in the run folder is a symbolic link; degrade_lab never "
                                 "writes through links (they can lead anywhere). Replace it with the real folder.")
    return run, checkpoint


def model_differences(old, new, where: str = "model") -> list[str]:
    """The settings in which two model configs differ, one line each (``auto`` in ``new`` matches any value: train
    fills it in from the data)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(old.keys() | new.keys(), key=str)
                for line in model_differences(old.get(key, "<absent>"), new.get(key, "<absent>"), f"{where}.{key}")]
    return [] if old == new or new == "auto" else [f"{where}: {old!r} in the checkpoint, {new!r} now"]


def check_same_model(checkpoint: str | Path, model: dict) -> None:
    """A resumed run continues the same model: any change to ``model`` would not fit the stored weights (or would
    silently train another model), so it stops before training with the keys that differ."""
    from degrade_lab.utils.checkpoint import read_checkpoint

    stored = read_checkpoint(checkpoint)["degrade_lab"]["config"].get("model")
    changed = model_differences(stored, model)
    if changed:
        raise UserInputError(
            f"cannot resume '{checkpoint}' with a different model:\n  " + "\n  ".join(changed[:8])
            + "\nresume with the run's own model settings, or start a new run (model.init_from=CKPT where the "
              "model supports it)."
        )
