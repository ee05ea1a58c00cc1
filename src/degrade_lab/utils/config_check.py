"""Catch wrongly typed settings before a task starts, naming the key.

Hydra takes ``trainer.max_steps=abc`` as the string ``'abc'``; without this check the run fails later
inside Lightning with ``'<' not supported between 'str' and 'int'`` and no key. Two sources of the
expected type: a node with ``_target_`` is checked against the annotations of what it instantiates
(``pytorch_lightning.Trainer(max_steps: int)``), a plain setting against the type of its default in the
task's own config file (``samples: 1`` in ``conf/synthesize.yaml``).
"""

from __future__ import annotations

import inspect
import types
import typing

from omegaconf import DictConfig, ListConfig, OmegaConf

from degrade_lab.errors import UserInputError
from degrade_lab.paths import config_dir

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _accepted(annotation) -> tuple[type, ...] | None:
    """The plain types an annotation accepts, or ``None`` when it accepts more than we can check."""
    if annotation in (int, float, bool, str):
        return {int: (int,), float: (int, float), bool: (bool,), str: (str,)}[annotation]
    if annotation is type(None):
        return (type(None),)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        accepted: tuple[type, ...] = ()
        for member in typing.get_args(annotation):
            part = _accepted(member)
            if part is None:
                return None
            accepted += part
        return accepted
    return None


def _fits(value, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in accepted:
        return False  # true/false is not a number here, although Python's bool is an int
    return isinstance(value, accepted)


def _describe(accepted: tuple[type, ...]) -> str:
    names = [_NAMES[t] for t in (int, float, bool, str) if t in accepted and not (t is int and float in accepted)]
    if type(None) in accepted:
        names.append("null")
    return " or ".join(names)


def _hints(target: str) -> dict:
    try:
        from degrade_lab.utils.trusted_targets import COMMAND_LINE, get_object

        obj = get_object(target, origin=COMMAND_LINE)
        function = obj.__init__ if inspect.isclass(obj) else obj
        hints = typing.get_type_hints(function)
        names = set(inspect.signature(function).parameters)
    except Exception:  # an unimportable or unannotated target is reported when it is instantiated
        return {}
    return {name: hint for name, hint in hints.items() if name in names}


def _check_targets(node, where: str) -> None:
    if isinstance(node, DictConfig):
        target = node.get("_target_") if "_target_" in node else None
        hints = _hints(target) if isinstance(target, str) else {}
        for key in node:
            key = str(key)
            if key.startswith("_"):
                continue
            path = f"{where}.{key}" if where else key
            try:
                if OmegaConf.is_missing(node, key):
                    continue
                value = node[key]
            except Exception:  # an interpolation that fails is reported where it is used
                continue
            if isinstance(value, (DictConfig, ListConfig)):
                _check_targets(value, path)
            elif key in hints:
                accepted = _accepted(hints[key])
                if accepted is not None and not _fits(value, accepted):
                    raise UserInputError(
                        f"{path}={value!r}: expected {_describe(accepted)} ({target.rsplit('.', 1)[-1]}'s {key})."
                    )
    elif isinstance(node, ListConfig):
        for index, value in enumerate(node):
            if isinstance(value, (DictConfig, ListConfig)):
                _check_targets(value, f"{where}[{index}]")


def _check_defaults(cfg: DictConfig, defaults: DictConfig, where: str) -> None:
    for key in defaults:
        key = str(key)
        path = f"{where}.{key}" if where else key
        if (key not in cfg or OmegaConf.is_missing(cfg, key) or OmegaConf.is_missing(defaults, key)
                or OmegaConf.is_interpolation(defaults, key) or OmegaConf.is_interpolation(cfg, key)):
            continue
        default, value = defaults[key], cfg[key]
        if isinstance(default, DictConfig) and isinstance(value, DictConfig) and "_target_" not in default:
            _check_defaults(value, default, path)
        elif isinstance(default, (bool, int, float)) and not isinstance(default, DictConfig):
            accepted = (bool,) if isinstance(default, bool) else (int,) if isinstance(default, int) else (int, float)
            if value is not None and not _fits(value, accepted):
                raise UserInputError(f"{path}={value!r}: expected {_describe(accepted)}.")


def check_types(cfg: DictConfig, task: str) -> None:
    """Raise :class:`UserInputError` naming the first setting whose value has the wrong type."""
    defaults = OmegaConf.load(config_dir() / f"{task}.yaml")
    defaults.pop("defaults", None)
    _check_defaults(cfg, defaults, "")
    for key in cfg:
        if key != "hydra" and isinstance(cfg[key], DictConfig):
            _check_targets(cfg[key], str(key))
