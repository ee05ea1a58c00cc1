"""The manifest of an output folder that a task fills file by file (``synthesize``, ``prepare``): the settings it
was made with and what each file is. A later run with other settings is refused (the folder would mix two sets);
one with the same settings finds the files already written and completes the rest."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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


class PeriodicSave:
    """Calls ``save`` (a whole manifest's atomic rewrite) as files finish, at the first and then at most every
    ``max(min_seconds, seconds the last save took / max_share)``: a manifest of 300,000 pairs is about 100 MB and
    takes seconds to write, so saving every N files would cost time quadratic in the folder (hours at that size);
    this keeps the saving under ``max_share`` of the run. A killed run loses at most that interval's records; their
    files are made again, byte for byte the same."""

    def __init__(self, save: Callable[[], None], min_seconds: float = 10.0, max_share: float = 0.05,
                 clock: Callable[[], float] = time.monotonic):
        self.save, self.min_seconds, self.max_share, self.clock = save, float(min_seconds), float(max_share), clock
        self.last: float | None = None  # when the last save began
        self.spent = 0.0  # how long it took

    def __call__(self) -> None:
        """A file has finished: save if the interval has passed."""
        if self.last is None or self.clock() - self.last >= max(self.min_seconds, self.spent / self.max_share):
            self.now()

    def now(self) -> None:
        self.last = self.clock()
        self.save()
        self.spent = self.clock() - self.last
