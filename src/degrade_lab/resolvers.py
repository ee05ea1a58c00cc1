"""OmegaConf resolvers used by conf/: paths that never depend on the working directory."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from degrade_lab import paths


def _run_dir(resume, default):
    """``resume`` (a run folder or a checkpoint inside one) wins over the fresh run folder (``auto``: the run's own
    folder, resumed when it holds a checkpoint)."""
    if resume in (None, "", "null", "auto"):
        return default
    resume = Path(str(resume)).expanduser().resolve()
    if resume.is_file():  # RUN/checkpoints/last.ckpt -> RUN
        return str(resume.parent.parent)
    return str(resume)


def plain_name(name) -> str:
    """``name`` when it is a plain file name (letters, digits, ``.``, ``_``, ``-``; not ``.`` or ``..``): a pipeline's
    name becomes its folder under ``logs/pipeline/``, which ``../..`` or a ``/`` would leave."""
    import re

    from degrade_lab.errors import UserInputError

    text = str(name)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", text) or ".." in text:
        raise UserInputError(f"pipeline name {text!r} is not a plain name (letters, digits, '.', '_', '-'; it names "
                             "the pipeline's folder under logs/pipeline/).")
    return text


def _builtin(name, data_dir):
    from degrade_lab.data.builtin import ensure_builtin

    return str(ensure_builtin(str(name), data_dir))


def cpu_bf16_precision():
    """``bf16-mixed`` where oneDNN has fast bfloat16 kernels on this CPU, else ``32-true``."""
    import torch

    try:
        fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        fast = False
    return "bf16-mixed" if fast else "32-true"


def register() -> None:
    for name, fn in {
        "dl.root": lambda: str(paths.project_root()),
        "dl.home": lambda: str(paths.home_dir()),
        "dl.run_dir": _run_dir,
        "dl.builtin": _builtin,
        "dl.plain_name": plain_name,
        "dl.cpu_bf16_precision": cpu_bf16_precision,
    }.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=name == "dl.builtin")


register()
