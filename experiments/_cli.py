"""Running degrade-lab commands from the experiment scripts, exactly as a user types them."""

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


def report_figure(out: Path, named_runs: list[tuple[str, Path]], title: str) -> Path:
    """`degrade-lab report` over evaluate runs (runs sharing a name form one row) into ``out/report``."""
    return run(["report", *[f"{name}={path}" for name, path in named_runs], "--out", str(out / "report"),
                "--title", title])


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def best_checkpoint(run_dir: Path) -> Path:
    """best.ckpt, or last.ckpt for a run too short to have validated."""
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    return ckpt if ckpt.is_file() else run_dir / "checkpoints" / "last.ckpt"


def train_and_evaluate(experiment: str, pairs: Path | list[Path], test: Path, steps: int, seed: int,
                       extra: list[str] | None = None) -> tuple[dict, Path, Path]:
    """A restorer preset trained on ``pairs`` (a folder or a list of folders) for ``steps`` steps, its best
    checkpoint scored on ``test``."""
    paired = f"[{','.join(map(str, pairs))}]" if isinstance(pairs, list) else str(pairs)
    train_dir = run(["train", f"experiment={experiment}", "data=folders", f"data.paired={paired}", f"data.test={test}",
                     f"trainer.max_steps={steps}", f"trainer.val_check_interval={max(steps // 4, 1)}",
                     f"model.scheduler.milestones=[{int(steps * 0.75)}]", f"seed={seed}",
                     "callbacks.progress.refresh_rate=0", *(extra or [])])
    eval_dir = run(["evaluate", f"ckpt={best_checkpoint(train_dir)}", "data=folders", f"data.test={test}",
                    "progress=false"])
    return metrics_of(eval_dir), train_dir, eval_dir


def train_and_evaluate_dncnn(pairs: Path, test: Path, steps: int, seed: int) -> tuple[dict, Path, Path]:
    """The CPU-sized DnCNN (experiment=dncnn_cpu) trained on ``pairs``, its best checkpoint scored on ``test``."""
    return train_and_evaluate("dncnn_cpu", pairs, test, steps, seed)
