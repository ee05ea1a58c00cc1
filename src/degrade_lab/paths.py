"""Where the config tree, caches and run folders live; never derived from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The ``conf/`` tree: ``$DEGRADE_LAB_CONF``, else inside the installed package (wheel), else the
    repository's ``conf/`` next to ``src/`` (editable install)."""
    candidates = [os.environ.get("DEGRADE_LAB_CONF"), PACKAGE_DIR / "conf", PACKAGE_DIR.parents[1] / "conf"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train.yaml").is_file():
            return Path(candidate).resolve()
    raise FileNotFoundError(
        "degrade_lab cannot find its config tree (conf/train.yaml); set DEGRADE_LAB_CONF to the conf/ folder."
    )


def project_root() -> Path:
    """The repository root for an editable install (run folders go to ``<root>/logs``), else
    ``$DEGRADE_LAB_HOME`` (default ``~/.cache/degrade_lab``)."""
    if os.environ.get("DEGRADE_LAB_ROOT"):
        return Path(os.environ["DEGRADE_LAB_ROOT"]).expanduser().resolve()
    repo = PACKAGE_DIR.parents[1]
    if (repo / "pyproject.toml").is_file() and (repo / "conf").is_dir():
        return repo
    return home_dir()


def home_dir() -> Path:
    """Cache for materialised data and weights: ``$DEGRADE_LAB_HOME`` or ``~/.cache/degrade_lab``."""
    return Path(os.environ.get("DEGRADE_LAB_HOME", "~/.cache/degrade_lab")).expanduser().resolve()
