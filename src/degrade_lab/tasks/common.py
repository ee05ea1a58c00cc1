"""What every task does around its work: run folder, config record, tables, example crops."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from degrade_lab.data.transforms import center_crop
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import atomic_write_text, write_png
from degrade_lab.utils.trusted_targets import COMMAND_LINE, instantiate


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; floats with 4 decimals."""

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def task_device(cfg: DictConfig) -> torch.device:
    """The device of a task that runs no Trainer (evaluate, synthesize): ``device=`` when given, else the
    ``hardware=`` choice's accelerator (``gpu`` -> CUDA, ``auto`` -> CUDA where available)."""
    if cfg.get("device"):
        return torch.device(str(cfg.device))
    accelerator = str((cfg.get("trainer") or {}).get("accelerator", "cpu"))
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    return torch.device({"gpu": "cuda", "cuda": "cuda", "mps": "mps"}.get(accelerator, "cpu"))


def output_dir(cfg: DictConfig) -> Path:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_config(cfg: DictConfig, out: Path, overwrite: bool = True) -> dict:
    """Write the resolved config to ``out/config.yaml`` and return it as a plain dict."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    path = out / "config.yaml"
    if overwrite or not path.exists():
        atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(resolved)))
    return resolved


def save_examples(folder, images: dict[str, torch.Tensor], size: int = 128) -> None:
    """A centre crop of each panel (``examples/<name>.png``), at the clean image's position."""
    for name, image in images.items():
        write_png(folder / f"{name}.png", center_crop(image[0], size).float().cpu())


def metric_notes(labels: dict, unavailable: dict) -> str:
    """Markdown lines naming the weights behind each number and why any metric is missing."""
    lines = [f"- `{key}`: {label}" for key, label in labels.items()]
    lines += [f"- `{key}` unavailable: {reason}" for key, reason in unavailable.items()]
    return ("Weights and notes:\n\n" + "\n".join(lines) + "\n") if lines else ""


def build_data(data, origin: str | Path = COMMAND_LINE, **options):
    """A data config's factory called with ``options`` (nested configs such as a degrader are passed as they are);
    ``origin``: the model file a stored data config comes from (checked), else the command line. A
    :class:`~degrade_lab.errors.UserInputError` it raises comes out as itself, not wrapped by Hydra."""
    return instantiate(data, origin=origin, **options, _recursive_=False)


def test_pairs(cfg: DictConfig, scale: int):
    """The test pairs of the run's data set (``data=folders data.test=DIR``, ``data=sidd data.root=DIR``, ...): its
    factory called with ``kind="test"``, at the degradation's ``scale``."""
    return build_data(cfg.data, kind="test", scale=int(scale))


def domain_files(data, origin: str | Path = COMMAND_LINE) -> tuple[list[Path], list[Path]]:
    """The clean and the degraded training images of a run's data config, whatever the data set (folders, a
    ``data.split_from`` split, SIDD, ...): its factory built as for an unpaired model (``kind="unpaired"``).
    ``origin``: the model file it was stored in, if any. Stops with the factory's message when the config has no
    such images."""
    return build_data(data, origin, kind="unpaired").domain_files()


def key_values(argv: list[str], allowed: tuple[str, ...], command: str) -> dict[str, str]:
    """``key=value`` arguments of a plain command (the style of every degrade-lab task) as a dict; others stop."""
    values = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise UserInputError(
                f"{command}: unexpected argument '{arg}'; expected {', '.join(f'{k}=...' for k in allowed)}.")
        values[key] = value
    return values
