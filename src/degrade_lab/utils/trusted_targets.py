"""Which classes a model file's stored config may name, so that loading a checkpoint runs no code from it; and
the one place where degrade_lab turns any config into objects (:func:`instantiate`, :func:`get_class`).

A checkpoint is read with ``torch.load(weights_only=True)`` (no pickled code), but its stored config
is then *instantiated* by Hydra: every ``_target_`` string there is imported and called. A file that is
plain data could therefore still name any callable (``os.system``, ``degrade_lab.utils.io.atomic_write_text``).
:func:`check_config` accepts only

* degrade_lab's own networks, training modules, degraders and losses: a class ``degrade_lab.P.FILE.Class``
  with ``P`` one of :data:`PACKAGES`, defined in that file and a subclass of ``torch.nn.Module``
  (LightningModules and degraders are). A new model's classes are trusted without a list to edit;
  nothing in ``degrade_lab.utils``, ``tasks`` or ``cli``, and no function, is.
* torch's optimizers and learning-rate schedulers named in :data:`TORCH_TARGETS`.
* whatever degrade_lab's own config tree names in a group a run's config holds (the data sets' factories, the
  Lightning ``Trainer``, callbacks and loggers): :func:`shipped_targets`, read from ``conf/`` itself, so the tree
  stays the only registry.

:func:`check_config` walks *every* section of a stored config (model, data, trainer, callbacks, whatever comes
later), not only the one a command instantiates today. :func:`instantiate` is the only caller of Hydra's
``instantiate`` in the package (a test walks the source for others): each call says where its config comes from,
:data:`COMMAND_LINE` (the user's own composed config, the user's choice) or the model file it was stored in, which
is checked first. :func:`loading` follows a model file's references to other model files (a learned degrader's
``ckpt:``) at most :data:`MAX_NESTING` deep and refuses a file that refers back to itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import re
from pathlib import Path

import torch

from degrade_lab.errors import UserInputError

#: the packages whose ``nn.Module`` classes a stored config may name
PACKAGES = ("archs", "lit", "degradations", "losses")
_OWN_CLASS = re.compile(rf"degrade_lab\.(?:{'|'.join(PACKAGES)})\.[a-z_][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")

OPTIMIZERS = tuple(
    f"torch.optim.{name}"
    for name in ("Adam", "AdamW", "Adamax", "Adadelta", "Adagrad", "NAdam", "RAdam", "RMSprop", "SGD")
)
SCHEDULERS = tuple(
    f"torch.optim.lr_scheduler.{name}"
    for name in ("MultiStepLR", "StepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                 "OneCycleLR", "LinearLR", "ConstantLR", "PolynomialLR")
)
TORCH_TARGETS = frozenset(OPTIMIZERS + SCHEDULERS)


#: the config groups whose shipped targets a stored config may name (not hydra/ nor hparams_search/: sweepers)
SHIPPED_GROUPS = ("data", "trainer", "callbacks", "logger", "hardware", "optimizer", "scheduler", "loss")


def _targets(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                yield value
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


@functools.cache
def shipped_targets() -> frozenset[str]:
    """Every ``_target_`` that the shipped config groups of :data:`SHIPPED_GROUPS` name (``conf/data/sidd.yaml``:
    ``degrade_lab.data.sidd.sidd``; ``conf/trainer/``: ``pytorch_lightning.Trainer``, ...)."""
    import yaml

    from degrade_lab.paths import config_dir

    found: set[str] = set()
    for group in SHIPPED_GROUPS:
        for file in (config_dir() / group).rglob("*.yaml"):
            found |= set(_targets(yaml.safe_load(file.read_text()) or {}))
    return frozenset(found)


def is_trusted(target) -> bool:
    """Whether a stored config may name ``target`` (see the module docstring)."""
    if not isinstance(target, str):
        return False
    if target in TORCH_TARGETS or target in shipped_targets():
        return True
    if not _OWN_CLASS.fullmatch(target):
        return False
    file, name = target.rsplit(".", 1)
    try:  # importing one of degrade_lab's own files runs only degrade_lab's code
        obj = getattr(importlib.import_module(file), name, None)
    except ImportError:
        return False
    return isinstance(obj, type) and obj.__module__ == file and issubclass(obj, torch.nn.Module)


def _walk(node, where: str):
    """Yield ``(key path, value)`` for every dict entry and list item under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            yield path, key, value
            yield from _walk(value, path)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            path = f"{where}[{index}]"
            yield path, None, value
            yield from _walk(value, path)


def check_config(config, source: str | Path, where: str = "") -> None:
    """Refuse a stored config (plain dicts and lists) that names anything :func:`is_trusted` refuses
    or holds OmegaConf interpolations (``${...}`` resolvers run code too): the file may be unsafe."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(config, DictConfig | ListConfig):
        config = OmegaConf.to_container(config, resolve=False)
    for path, key, value in _walk(config, where):
        if isinstance(key, str) and "${" in key:
            raise UserInputError(f"model file '{source}' may be unsafe: its stored config has the key {key!r} at "
                                 f"'{path}' (an interpolation); it was not loaded.")
        if key == "_target_" and not is_trusted(value):
            raise UserInputError(
                f"model file '{source}' may be unsafe: its stored config names {value!r} at '{path}', which "
                "is not one of degrade_lab's models, networks, degraders, losses, optimizers or schedulers; it "
                "was not loaded. Only load model files from sources you trust."
            )
        if isinstance(value, str) and "${" in value:
            raise UserInputError(
                f"model file '{source}' may be unsafe: its stored config holds the interpolation {value!r} at "
                f"'{path}' (degrade_lab stores resolved configs); it was not loaded."
            )


#: where a config given to :func:`instantiate` comes from when it is not a model file: the user's composed config
COMMAND_LINE = "command line"
#: how many model files deep a load may go: the file itself and one it names (a learned degrader's ``ckpt:``)
MAX_NESTING = 2
_LOADING: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("degrade_lab_loading", default=())


@contextlib.contextmanager
def loading(path: str | Path):
    """Mark model file ``path`` as being loaded while the block runs. A file that (through its stored config) loads
    itself again, or a chain of more than :data:`MAX_NESTING` files, is refused: a crafted file cannot recurse
    without end."""
    resolved = Path(path).expanduser().resolve()
    chain = _LOADING.get()
    if resolved in chain:
        names = " -> ".join(f"'{p}'" for p in (*chain, resolved))
        raise UserInputError(f"model file '{path}' refers back to itself through its stored config ({names}); it "
                             "was not loaded. Only load model files from sources you trust.")
    if len(chain) >= MAX_NESTING:
        raise UserInputError(f"model file '{chain[0]}' names another model file that names '{path}' in turn: a model "
                             f"file may refer to one other model file at most; it was not loaded.")
    token = _LOADING.set((*chain, resolved))
    try:
        yield
    finally:
        _LOADING.reset(token)


def instantiate(config, *, origin: str | Path, **kwargs):
    """Hydra's ``instantiate`` of ``config``, the only call to it in degrade_lab. ``origin``: :data:`COMMAND_LINE`
    for the user's own composed config, else the model file the config was stored in, whose every target and value
    is checked first (:func:`check_config`). An error the user caused (a :class:`UserInputError` raised while
    building, or a setting the target does not take) comes out as itself, in one line, not wrapped by Hydra."""
    import hydra
    import hydra.errors

    if str(origin) != COMMAND_LINE:
        check_config(config, origin)
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except hydra.errors.InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, UserInputError):
            raise cause from None
        unexpected = re.search(r"got an unexpected keyword argument '([^']+)'", str(cause or err))
        target = re.search(r"Error in call to target '([^']+)'", str(err))
        if unexpected and target:
            raise UserInputError(f"{target.group(1).rsplit('.', 1)[-1]} takes no setting '{unexpected.group(1)}' "
                                 f"({target.group(1)}).") from None
        if isinstance(cause, ValueError) and target:
            # a constructor refusing a value it was given (DnCNN(depth=2)): the user's setting, named
            key = re.search(r"full_key: (\S+)", str(err))
            raise UserInputError(f"{key.group(1) + ': ' if key else ''}{cause} "
                                 f"({target.group(1).rsplit('.', 1)[-1]}).") from None
        raise


def get_object(path: str, *, origin: str | Path):
    """The class or function named by ``path`` (Hydra's ``get_object``): a name from a model file (``origin``) must be
    trusted."""
    import hydra

    if str(origin) != COMMAND_LINE and not is_trusted(path):
        raise UserInputError(f"model file '{origin}' may be unsafe: it names {path!r}, which is not one of "
                             "degrade_lab's models, networks, degraders or losses; it was not loaded.")
    return hydra.utils.get_object(path)


def get_class(path: str, *, origin: str | Path) -> type:
    """The class named by ``path`` (:func:`get_object`, which must give a class)."""
    found = get_object(path, origin=origin)
    if not isinstance(found, type):
        raise UserInputError(f"'{path}' names a {type(found).__name__}, not a class.")
    return found
