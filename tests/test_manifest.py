"""utils/manifest: when a folder task rewrites its manifest (PeriodicSave) and what a killed run's manifests give."""

from __future__ import annotations

import json

import pytest

from degrade_lab.errors import UserInputError
from degrade_lab.utils.manifest import PeriodicSave, load_manifest, merge_rank_manifests, rank_manifest


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_periodic_save_waits_the_longer_of_its_interval_and_twenty_times_the_last_save():
    clock, saves = Clock(), []

    def save():
        saves.append(clock.now)
        clock.now += cost[0]  # the save itself takes time

    cost = [0.1]
    periodic = PeriodicSave(save, min_seconds=10.0, max_share=0.05, clock=clock)
    periodic()  # the first finished file is recorded at once
    for _ in range(300):  # a file every 0.1 s for 30 s
        clock.now += 0.1
        periodic()
    # 0.1 s saves: every 10 s (the interval beats 0.1 / 0.05 = 2 s)
    assert saves == pytest.approx([0.0, 10.0, 20.0, 30.0], abs=0.11)
    cost[0] = 3.0  # a big manifest: 3 s a save, so the next only 3 / 0.05 = 60 s after the last began
    periodic.now()
    began = saves[-1]
    for _ in range(2000):
        clock.now += 0.1
        periodic()
    later = saves[saves.index(began):]
    gaps = [b - a for a, b in zip(later, later[1:], strict=False)]
    assert len(gaps) >= 2 and gaps == pytest.approx([60.0] * len(gaps), abs=0.11)  # saving: 3 s in every 60 s


def test_rank_manifests_are_merged_and_other_settings_refused(tmp_path):
    path = tmp_path / "manifest.json"
    settings = {"degrader": "awgn", "seed": 1}
    for rank, names in enumerate((["a", "b"], ["c"])):
        rank_manifest(path, rank).write_text(json.dumps({"settings": settings,
                                                          "files": {n: {"sha": n} for n in names}}))
    files: dict = {"z": {"sha": "z"}}
    found, entries = merge_rank_manifests(path, settings, files)
    assert [p.name for p in found] == ["manifest.rank0.json", "manifest.rank1.json"] and entries == 3
    assert sorted(files) == ["a", "b", "c", "z"]
    with pytest.raises(UserInputError, match="other settings"):
        merge_rank_manifests(path, {**settings, "seed": 2}, {})
    path.write_text("{not json")
    with pytest.raises(UserInputError, match="cannot be read"):
        load_manifest(path, settings)
