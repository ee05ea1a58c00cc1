"""Running degrade-lab commands from the experiment scripts, exactly as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from degrade_lab.pipeline.results import mean_std, plus_minus, verdict  # noqa: F401  (re-exported to the scripts)

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
    """A restorer preset trained on ``pairs`` (a folder or a list of folders) for ``steps`` steps, its LAST
    checkpoint scored on ``test``: the test pairs only draw the validation curve, they choose nothing."""
    paired = f"[{','.join(map(str, pairs))}]" if isinstance(pairs, list) else str(pairs)
    train_dir = run(["train", f"experiment={experiment}", "data=folders", f"data.paired={paired}", f"data.test={test}",
                     f"trainer.max_steps={steps}", f"trainer.val_check_interval={max(steps // 4, 1)}",
                     f"model.scheduler.milestones=[{int(steps * 0.75)}]", f"seed={seed}",
                     "callbacks.progress.refresh_rate=0", *(extra or [])])
    scale = [e for e in extra or [] if e.startswith("data.scale=")]  # x4 test pairs need it too
    eval_dir = run(["evaluate", f"ckpt={train_dir / 'checkpoints' / 'last.ckpt'}", "data=folders", f"data.test={test}",
                    "progress=false", *scale])
    return metrics_of(eval_dir), train_dir, eval_dir


def judge_and_synthesize(degraders: dict[str, list[str]], test: Path, source: Path, out: Path, samples: int,
                         seed: int, evaluate_extra: list[str] | None = None,
                         synthesize_for: list[str] | None = None) -> tuple[dict, dict, dict]:
    """Each degrader (name -> its ``degrader=...`` overrides) judged against the real test pairs (``evaluate``), then,
    for the names in ``synthesize_for`` (default: all), ``samples`` synthetic pairs per image of ``source`` written
    to ``out/pairs_<i>``. Returns the judged metrics, the evaluate run folders and the pair folders, by name."""
    judged, judged_runs, pairs = {}, {}, {}
    for name, settings in degraders.items():
        judged_runs[name] = run(["evaluate", *settings, "data=folders", f"data.test={test}", *(evaluate_extra or []),
                                 f"seed={seed}", "progress=false"])
        judged[name] = metrics_of(judged_runs[name])
        if synthesize_for is not None and name not in synthesize_for:
            continue
        pairs[name] = out / f"pairs_{len(pairs)}"
        run(["synthesize", *settings, f"input={source}", f"output={pairs[name]}", f"samples={samples}",
             f"seed={seed}", "progress=false"])
    return judged, judged_runs, pairs


def noise_std_cell(degradation: dict) -> str:
    """``"synthetic / real"`` noise std of an ``evaluate degrader=`` run's metrics (``-`` without them)."""
    if not degradation:
        return "-"
    return f"{degradation['degradation/noise_std']:.1f} / {degradation['input/noise_std']:.1f}"


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (the ``--seeds`` option of the pipelines)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds needs one or more distinct integers, got {text!r}")
    return seeds


def train_and_evaluate_seeds(experiment: str, pairs: Path | list[Path], test: Path, steps: int, seeds: list[int],
                             extra: list[str] | None = None) -> dict:
    """:func:`train_and_evaluate` once per seed: per-seed ``psnr`` / ``ssim`` / ``lpips`` lists and the run folders."""
    out: dict = {"seeds": seeds, "psnr": [], "ssim": [], "lpips": [], "train_runs": [], "eval_runs": []}
    for seed in seeds:
        metrics, train_dir, eval_dir = train_and_evaluate(experiment, pairs, test, steps, seed, extra)
        out["psnr"].append(metrics["test/psnr"])
        out["ssim"].append(metrics["test/ssim"])
        out["lpips"].append(metrics.get("test/lpips"))
        out["train_runs"].append(str(train_dir))
        out["eval_runs"].append(str(eval_dir))
    return out
