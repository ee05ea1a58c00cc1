"""Folder tasks sharded over processes on Lightning's engine (``hardware=ddp_cpu``: two CPU processes): the same
files, byte for byte, as one process with the same seed; one merged manifest; a run that lost a rank resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import save_rgb, smooth_image, subprocess_env


def cli(*args, timeout=600, env=None, check=True):
    env = {**(env or os.environ), "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run([sys.executable, "-m", "degrade_lab.cli", *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=timeout)
    assert result.returncode == 0 or not check, result.stderr[-3000:]
    return result


def _inputs(root: Path, count: int = 7) -> Path:
    rng = np.random.default_rng(3)
    for i in range(count):
        save_rgb(root / ("sub" if i % 3 == 0 else "") / f"img{i}.png", smooth_image(rng, 24 + 8 * (i % 2), 32))
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_synthesize_on_two_processes_writes_what_one_writes(tmp_path):
    source = _inputs(tmp_path / "clean")
    common = ["synthesize", "degrader=camera", f"input={source}", "seed=4", "samples=2", "progress=false"]
    cli(*common, f"output={tmp_path / 'one'}")
    result = cli(*common, f"output={tmp_path / 'two'}", "hardware=ddp_cpu")
    assert "in 2 processes" in result.stdout
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len(one) == 7 * 2 * 2 and one == two  # clean/ and degraded/, two samples each, byte for byte
    manifest_one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    manifest_two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest_two["files"] == manifest_one["files"] and manifest_two["settings"] == manifest_one["settings"]
    assert not list((tmp_path / "two").glob("manifest.rank*.json"))  # merged, then removed
    run = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["pairs"] == 14


def test_a_sharded_run_that_loses_a_rank_resumes_without_duplicates(tmp_path):
    """Rank 1 of two processes dies at its fourth (last) image. The run stops (no hang); the next run takes what each rank
    recorded (its manifest.rankN.json) as done, makes only the rest, and the folder ends byte for byte as one
    process makes it, with one manifest."""
    source = _inputs(tmp_path / "clean", count=8)
    common = ["synthesize", "degrader=awgn", "degrader._target_=ddp_kill_rank.DyingAWGN", f"input={source}",
              "seed=1", "progress=false", "io_threads=0"]  # one writer thread: by its fourth image a rank has recorded its first
    env = subprocess_env()
    cli(*common, f"output={tmp_path / 'one'}", env=env)
    out = tmp_path / "out"
    killed = cli(*common, f"output={out}", "hardware=ddp_cpu", env={**env, "DDP_KILL_AT_IMAGE": "4"}, check=False,
                 timeout=300)
    assert killed.returncode != 0
    recorded = {}
    for rank_file in sorted(out.glob("manifest.rank*.json")):
        recorded.update(json.loads(rank_file.read_text())["files"])
    assert (out / "manifest.rank1.json").is_file() and 1 <= len(recorded) < 8  # rank 1 recorded its first image
    before = {name: (out / "degraded" / f"{name}.png").stat().st_mtime_ns for name in recorded}
    resumed = cli(*common, f"output={out}", "hardware=ddp_cpu", env=env)
    assert f"wrote {8 - len(recorded)} images (8 pairs in total)" in resumed.stdout
    assert {name: (out / "degraded" / f"{name}.png").stat().st_mtime_ns for name in recorded} == before  # not redone
    assert _files(out) == _files(tmp_path / "one")
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (tmp_path / "one", out)]
    assert manifests[1]["files"] == manifests[0]["files"] and not list(out.glob("manifest.rank*.json"))
    finished = cli(*common, f"output={out}", "hardware=ddp_cpu", env=env)  # nothing left: no process is started
    assert "wrote 0 images (8 pairs in total)" in finished.stdout and "processes" not in finished.stdout


def test_restore_on_two_processes_writes_what_one_writes(dncnn_ckpt, tmp_path):
    source = _inputs(tmp_path / "noisy")
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # listed as failed by skip_bad
    common = ["restore", f"ckpt={dncnn_ckpt}", f"input={source}", "skip_bad=true", "progress=false"]
    cli(*common, f"output={tmp_path / 'one'}")
    result = cli(*common, f"output={tmp_path / 'two'}", "hardware=ddp_cpu")
    assert "restored 7 images now (7 in total)" in result.stdout and "in 2 processes" in result.stdout
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len(one) == 7 and one == two
    manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("one", "two")]
    for manifest in manifests:
        for entry in manifest["files"].values():
            entry.pop("seconds")  # how long each took differs, nothing else
    assert manifests[0]["files"] == manifests[1]["files"] and manifests[0]["failed"] == manifests[1]["failed"]
    assert list(manifests[1]["failed"]) == ["broken.png"]
