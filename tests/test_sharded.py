"""Folder tasks sharded over processes on Lightning's engine (``hardware=ddp_cpu``: two CPU processes): the same
files, byte for byte, as one process with the same seed; one merged manifest; a killed rank's files kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import save_rgb, smooth_image


def cli(*args, timeout=600):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run([sys.executable, "-m", "degrade_lab.cli", *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
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


def test_a_killed_sharded_run_keeps_each_ranks_files(tmp_path):
    """A rank's own manifest left by a killed run counts on the next run: its images are not made twice."""
    source = _inputs(tmp_path / "clean", count=4)
    common = ["synthesize", "degrader=awgn", f"input={source}", "seed=1", "progress=false"]
    out = tmp_path / "out"
    cli(*common, f"output={out}", "hardware=ddp_cpu")
    manifest = json.loads((out / "manifest.json").read_text())
    # as if rank 1 had recorded two images and the run had died before rank 0 merged them
    kept = dict(list(manifest["files"].items())[:2])
    (out / "manifest.rank1.json").write_text(json.dumps({"settings": manifest["settings"], "files": kept}))
    (out / "manifest.json").write_text(json.dumps({**manifest, "files": {}}))
    for name in manifest["files"]:
        if name not in kept:
            (out / "degraded" / f"{name}.png").unlink()
    before = {name: (out / "degraded" / f"{name}.png").stat().st_mtime_ns for name in kept}
    result = cli(*common, f"output={out}", "hardware=ddp_cpu")
    assert "wrote 2 images (4 pairs in total)" in result.stdout
    assert json.loads((out / "manifest.json").read_text())["files"] == manifest["files"]
    assert {name: (out / "degraded" / f"{name}.png").stat().st_mtime_ns for name in kept} == before
    assert not list(out.glob("manifest.rank*.json"))
    finished = cli(*common, f"output={out}", "hardware=ddp_cpu")  # nothing left: no process is started
    assert "wrote 0 images (4 pairs in total)" in finished.stdout and "processes" not in finished.stdout


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
