"""Turning a degrader setting (a config name, a config dict, or an object) into a Degrader."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from degrade_lab.degradations.base import Degrader
from degrade_lab.errors import UserInputError
from degrade_lab.paths import config_dir


def available_degraders() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "degrader").glob("*.yaml"))


def build_degrader(spec: Any) -> Degrader | None:
    """``"camera"`` loads ``conf/degrader/camera.yaml``; a dict with ``_target_`` is instantiated;
    a Degrader is returned as is; ``None`` stays ``None``."""
    if spec is None or isinstance(spec, Degrader):
        return spec
    if isinstance(spec, str):
        path = config_dir() / "degrader" / f"{spec}.yaml"
        if not path.is_file():
            raise UserInputError(
                f"unknown degrader '{spec}'; choose one of: {', '.join(available_degraders())}."
            )
        spec = OmegaConf.load(path)
    if isinstance(spec, dict):
        spec = OmegaConf.create(spec)
    if isinstance(spec, DictConfig) and "_target_" in spec:
        degrader = hydra.utils.instantiate(spec, _convert_="all")
        if not isinstance(degrader, Degrader):
            raise UserInputError(f"degrader config {spec._target_} does not build a Degrader.")
        return degrader
    raise UserInputError(f"cannot build a degrader from {spec!r}: give a name or a config with _target_.")
