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


def rank_manifest(path: Path, rank: int) -> Path:
    """Where rank ``rank`` of a sharded run (several processes) records its own files until rank 0 merges them."""
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def merge_rank_manifests(path: Path, settings: dict, files: dict, failed: dict | None = None,
                         what: str = "pairs") -> tuple[list[Path], int]:
    """Add what the ranks of a sharded run recorded (``manifest.rankN.json`` beside ``path``, left by this run or
    by a killed one) to ``files`` (and ``failed``); returns the rank files read (delete them once ``path`` is
    written) and how many entries they held."""
    found = sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))
    entries = 0
    for rank_file in found:
        recorded = load_manifest(rank_file, settings, what)
        files.update(recorded)
        entries += len(recorded)
        if failed is not None:
            try:
                failed.update(json.loads(rank_file.read_text()).get("failed", {}))
            except (OSError, ValueError):
                pass  # load_manifest read it a moment ago; a rank file never changes after its rank ends
    return found, entries
