"""What every task does around its work: seed, run folder, config record, summary."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from degrade_lab.utils.io import atomic_write_text


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; floats with 4 decimals."""

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
