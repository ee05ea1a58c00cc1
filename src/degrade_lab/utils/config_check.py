"""Catch wrongly typed, out-of-range and unknown settings before a task starts, naming the key.

Hydra takes ``trainer.max_steps=abc`` as the string ``'abc'``; without this check the run fails later
inside Lightning with ``'<' not supported between 'str' and 'int'`` and no key. Two sources of the
expected type: a node with ``_target_`` is checked against the annotations of what it instantiates
(``pytorch_lightning.Trainer(max_steps: int)``), a plain setting against the type of its default in the
task's own config file (``samples: 1`` in ``conf/synthesize.yaml``). A key that the instantiated class or function
does not take (``+model.net.foo=1``) is named with the nearest keys it does take (difflib). Then
:data:`LIMITS` bounds the values that have a valid range (a batch of -1, a crop of 0, a negative seed, a learning
rate that is not a positive number, a tile that is not ``auto`` or a size), and ``hardware=gpu`` is refused where no
GPU is visible. All before the task writes anything.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import types
import typing

from omegaconf import DictConfig, ListConfig, OmegaConf

from degrade_lab.errors import UserInputError
from degrade_lab.paths import config_dir

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


class _NumberList:
    """The annotation ``Sequence[float]`` / ``list[int]``: a list whose items are numbers."""


def _accepted(annotation) -> tuple[type, ...] | None:
    """The plain types an annotation accepts, or ``None`` when it accepts more than we can check."""
    if annotation in (int, float, bool, str):
        return {int: (int,), float: (int, float), bool: (bool,), str: (str,)}[annotation]
    if annotation is type(None):
        return (type(None),)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, collections.abc.Sequence) and all(a in (int, float, Ellipsis)
                                                                 for a in typing.get_args(annotation)):
        return (_NumberList,) if typing.get_args(annotation) else None
    if origin in (typing.Union, types.UnionType):
        accepted: tuple[type, ...] = ()
        for member in typing.get_args(annotation):
            part = _accepted(member)
            if part is None:
                return None
            accepted += part
        return accepted
    return None


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fits(value, accepted: tuple[type, ...]) -> bool:
    if _NumberList in accepted and isinstance(value, ListConfig | list | tuple) and all(_number(v) for v in value):
        return True
    if isinstance(value, bool) and bool not in accepted:
        return False  # true/false is not a number here, although Python's bool is an int
    return isinstance(value, tuple(t for t in accepted if t is not _NumberList))


def _describe(accepted: tuple[type, ...]) -> str:
    names = [_NAMES[t] for t in (int, float, bool, str) if t in accepted and not (t is int and float in accepted)]
    if _NumberList in accepted:
        names.append("a list of numbers")
    if type(None) in accepted:
        names.append("null")
    return " or ".join(names)


def _signature(target: str) -> tuple[dict, set[str] | None]:
    """(annotations, the keyword names it takes; None when it takes any: ``**kwargs``) of a config's target."""
    try:
        from degrade_lab.utils.trusted_targets import COMMAND_LINE, get_object

        obj = get_object(target, origin=COMMAND_LINE)
        function = obj.__init__ if inspect.isclass(obj) else obj
        parameters = inspect.signature(function).parameters
    except Exception:  # an unimportable target is reported when it is instantiated
        return {}, None
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unannotated, or annotations that do not resolve: nothing to check the types against
        hints = {}
    names = set(parameters) - {"self"}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {name: hint for name, hint in hints.items() if name in names}, None if takes_any else names


def _check_targets(node, where: str) -> None:
    if isinstance(node, DictConfig):
        target = node.get("_target_") if "_target_" in node else None
        hints, names = _signature(target) if isinstance(target, str) else ({}, None)
        for key in node:
            key = str(key)
            if key.startswith("_"):
                continue
            path = f"{where}.{key}" if where else key
            if names is not None and key not in names and not (key == "compile" and where == "model"):
                near = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.5)
                raise UserInputError(
                    f"unknown setting '{path}': {target.rsplit('.', 1)[-1]} takes no '{key}'"
                    + (f"; did you mean {' or '.join(repr(f'{where}.{n}') for n in near)}?" if near else "")
                    + f" ({where} takes: {', '.join(sorted(names))}).")
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
    """Raise :class:`UserInputError` naming the first setting whose value has the wrong type, is unknown to what it
    configures, or lies outside its range (:data:`LIMITS`)."""
    defaults = OmegaConf.load(config_dir() / f"{task}.yaml")
    defaults.pop("defaults", None)
    _check_defaults(cfg, defaults, "")
    for key in cfg:
        if key != "hydra" and not OmegaConf.is_missing(cfg, key) and isinstance(cfg[key], DictConfig):
            _check_targets(cfg[key], str(key))
    check_limits(cfg)
    check_accelerator(cfg)


def _integer(low: int, high: int | None = None, also: tuple = ()):
    def check(value) -> bool:
        if value in also:
            return True
        return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)

    what = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    return check, " or ".join([*(str(a) for a in also), what])


def _positive_number():
    return (lambda value: _number(value) and value > 0), "a positive number"


#: setting -> (check, what it must be); checked where the composed config has the setting (``None`` passes: unset)
LIMITS = {
    "seed": _integer(0, 2**32 - 1),
    "data.batch_size": _integer(1),
    "data.crop_size": _integer(1),
    "data.val_crop": _integer(1),
    "data.crops_per_image": _integer(1),
    "data.num_workers": _integer(0, also=("auto",)),
    "data.scale": _integer(1),
    "data.num_paired": _integer(0),
    "trainer.max_steps": _integer(-1),
    "trainer.max_epochs": _integer(-1),
    "trainer.val_check_interval": _positive_number(),
    "trainer.accumulate_grad_batches": _integer(1),
    "model.optimizer.lr": _positive_number(),
    "model.discriminator_optimizer.lr": _positive_number(),
    "tile": _integer(0, also=("auto",)),
    "tile_margin": _integer(0),
    "tile_multiple": _integer(1),
    "samples": _integer(1),
    "io_threads": _integer(0),
    "max_pixels": _integer(1),
    "images": _integer(1),
    "crop": _integer(1),
}


def check_limits(cfg: DictConfig) -> None:
    """Every setting of :data:`LIMITS` that the config has, within its range."""
    for key, (check, what) in LIMITS.items():
        try:
            value = OmegaConf.select(cfg, key, throw_on_missing=False)
        except Exception:  # an interpolation that fails is reported where it is used
            continue
        if value is None or isinstance(value, DictConfig | ListConfig):
            continue
        if not check(value):
            raise UserInputError(f"{key}={value!r}: expected {what}.")


def check_accelerator(cfg: DictConfig) -> None:
    """``hardware=gpu`` (or ``device=cuda``) on a machine where torch sees no CUDA GPU stops before any work."""
    import torch

    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu") or "cpu").lower()
    device = str(cfg.get("device") or "").lower()
    if (accelerator in ("gpu", "cuda") or device.startswith("cuda")) and not torch.cuda.is_available():
        setting = f"device={cfg.get('device')}" if device.startswith("cuda") else "hardware=gpu (trainer.accelerator)"
        raise UserInputError(f"{setting}: no CUDA GPU is visible to torch on this machine "
                             "(torch.cuda.is_available() is false); use hardware=cpu, or cpu_bf16 where it is fast.")
