"""What every run records: package versions, parameter counts, the summary file."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from torch import nn

from degrade_lab.utils.io import atomic_write_json

_PACKAGES = ("degrade_lab", "torch", "torchvision", "pytorch-lightning", "hydra-core", "omegaconf",
             "torchmetrics", "kornia", "lpips", "numpy", "pillow")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def count_parameters(module: nn.Module | None) -> dict[str, int]:
    if module is None:
        return {"total": 0, "trainable": 0}
    params = list(module.parameters())
    return {"total": sum(p.numel() for p in params), "trainable": sum(p.numel() for p in params if p.requires_grad)}


def write_summary(run_dir: str | Path, **fields) -> dict:
    summary = {**fields, "versions": package_versions()}
    atomic_write_json(Path(run_dir) / "summary.json", summary)
    return summary
