"""The manifest of an output folder that a task fills file by file (``synthesize``, ``prepare``): the settings it
was made with and what each file is. A later run with other settings is refused (the folder would mix two sets);
one with the same settings finds the files already written and completes the rest."""

from __future__ import annotations

import json
from pathlib import Path

from degrade_lab.errors import UserInputError


def load_manifest(path: Path, settings: dict, what: str = "pairs") -> dict:
    """The ``files`` of the manifest at ``path`` (``{}`` when there is none); stops when it was written with other
    ``settings`` or cannot be read."""
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserInputError(f"manifest '{path}' cannot be read ({err}); choose another output folder.") from err
    if manifest.get("settings") != settings:
        raise UserInputError(
            f"'{path.parent}' already holds {what} made with other settings ({manifest.get('settings')}); "
            "choose another output folder or delete this one."
        )
    return manifest.get("files", {})
