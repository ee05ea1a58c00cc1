"""Turning a degrader setting (a config name, a config dict, or an object) into a Degrader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from degrade_lab.degradations.base import Degrader
from degrade_lab.errors import UserInputError
from degrade_lab.paths import config_dir
from degrade_lab.utils.checkpoint import is_model_file
from degrade_lab.utils.trusted_targets import COMMAND_LINE, get_class, instantiate


def available_degraders() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "degrader").glob("*.yaml"))


def degrader_config(name: str) -> DictConfig:
    """``conf/degrader/NAME.yaml``, or an error listing the available names."""
    path = config_dir() / "degrader" / f"{name}.yaml"
    if not path.is_file():
        raise UserInputError(f"unknown degrader '{name}'; choose one of: {', '.join(available_degraders())}.")
    config = OmegaConf.load(path)
    defaults = config.pop("defaults", None) or []
    # a preset built on another degrader config of the group (``defaults: [ludvae, _self_]``), as Hydra composes it
    bases = [degrader_config(str(entry)) for entry in defaults if str(entry) != "_self_"]
    return OmegaConf.merge(*bases, config) if bases else config


def is_learned(name: str) -> bool:
    """Whether ``conf/degrader/NAME.yaml`` builds the degrader of a trained model (it needs a checkpoint)."""
    from degrade_lab.degradations.learned import LearnedDegrader

    target = degrader_config(name).get("_target_")
    return isinstance(target, str) and issubclass(get_class(target, origin=COMMAND_LINE), LearnedDegrader)


def learned_degrader(ckpt: str | Path) -> Degrader:
    """The degrader of a trained degradation model's checkpoint (its LightningModule names the
    degrader class in ``degrader_target``)."""
    from degrade_lab.utils.checkpoint import load_model

    module, record = load_model(ckpt)
    target = getattr(module, "degrader_target", None)
    if target is None:
        model = record["config"]["model"].get("_target_", type(module).__name__)
        raise UserInputError(
            f"checkpoint '{ckpt}' holds a {type(module).__name__} ({model}), which is not a degradation "
            "model; give the checkpoint of a model trained to degrade (model=ludvae, ...)."
        )
    return get_class(target, origin=COMMAND_LINE)(module=module)  # a class attribute of degrade_lab's code


def build_degrader(spec: Any, ckpt: str | None = None) -> Degrader | None:
    """``"camera"`` loads ``conf/degrader/camera.yaml``; a path to a ``.ckpt`` / ``.safetensors`` file loads a trained
    degradation model; a dict with ``_target_`` is instantiated; a Degrader is returned as is;
    ``None`` stays ``None``. ``ckpt`` fills the ``ckpt`` field of a learned degrader's config
    (``data.degrader=ludvae data.degrader_ckpt=PATH``)."""
    if spec is None or isinstance(spec, Degrader):
        return spec
    if isinstance(spec, (str, Path)) and is_model_file(spec):
        return learned_degrader(spec)
    if isinstance(spec, str):
        spec = degrader_config(spec)
    if isinstance(spec, dict):
        spec = OmegaConf.create(spec)
    if isinstance(spec, DictConfig) and "_target_" in spec:
        if ckpt is not None:
            spec = OmegaConf.merge(spec, {"ckpt": str(ckpt)})
        degrader = instantiate(spec, origin=COMMAND_LINE, _convert_="all")
        if not isinstance(degrader, Degrader):
            raise UserInputError(f"degrader config {spec._target_} does not build a Degrader.")
        return degrader
    raise UserInputError(f"cannot build a degrader from {spec!r}: give a name or a config with _target_.")
