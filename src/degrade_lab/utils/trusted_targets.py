"""Which classes a model file's stored config may name, so that loading a checkpoint runs no code from it.

A checkpoint is read with ``torch.load(weights_only=True)`` (no pickled code), but its stored config
is then *instantiated* by Hydra: every ``_target_`` string there is imported and called. A file that is
plain data could therefore still name any callable (``os.system``, ``degrade_lab.utils.io.atomic_write_text``).
:func:`check_config` accepts only

* degrade_lab's own networks, training modules, degraders and losses: a class ``degrade_lab.P.FILE.Class``
  with ``P`` one of :data:`PACKAGES`, defined in that file and a subclass of ``torch.nn.Module``
  (LightningModules and degraders are). A new model's classes are trusted without a list to edit;
  nothing in ``degrade_lab.utils``, ``tasks`` or ``cli``, and no function, is.
* torch's optimizers and learning-rate schedulers named in :data:`TORCH_TARGETS`.
"""

from __future__ import annotations

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


def is_trusted(target) -> bool:
    """Whether a stored config may name ``target`` (see the module docstring)."""
    if not isinstance(target, str):
        return False
    if target in TORCH_TARGETS:
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
    for path, key, value in _walk(config, where):
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
