"""Running degrade-lab commands from the benchmark scripts, exactly as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "degrade_lab.cli"]


def run(args: list[str]) -> Path:
    """Run one degrade-lab command; its run folder is the last line it prints."""
    print("$ degrade-lab " + " ".join(args), flush=True)
    result = subprocess.run(CLI + args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-6000:])
        raise SystemExit(f"command failed ({result.returncode}): degrade-lab {' '.join(args)}")
    return Path(result.stdout.strip().splitlines()[-1])


def report(out: Path, text: str, results: dict) -> None:
    """Write results.md / results.json into ``out``, print the text, then the folder (last line)."""
    from degrade_lab.utils.io import atomic_write_json, atomic_write_text

    atomic_write_text(out / "results.md", text)
    atomic_write_json(out / "results.json", results)
    print("\n" + text, flush=True)
    print(out, flush=True)


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())
