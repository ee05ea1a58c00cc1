"""``degrade-lab pipeline NAME [seeds=[0,1,2]] [+scale=cpu_smoke]``: the stages of a paper's table, each an ordinary
degrade-lab command, run one after another in one pipeline folder (``conf/pipeline/NAME.yaml``; stages and
placeholders: :mod:`degrade_lab.pipeline.stages`; the table: :mod:`degrade_lab.pipeline.results`).

The pipeline folder (``logs/pipeline/NAME`` unless ``hydra.run.dir`` says otherwise) holds one folder per stage run
(``STAGE`` or ``STAGE/sSEED``), its log (``STAGE.log``), ``pipeline.json`` (every run's command, status, seconds)
and, at the end, ``results.md`` / ``results.json`` and ``report/`` (``degrade-lab report`` of the runs the table
names). Rerunning the same command skips the runs that finished with the same command, resumes a killed training
from its ``last.ckpt`` and lets a killed synthesis complete its files; a run whose command changed (or that depends
on a run made again) is made again, its old folder kept aside as ``STAGE.stale-<time>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from degrade_lab.errors import UserInputError
from degrade_lab.pipeline.results import build_table
from degrade_lab.pipeline.stages import Run, fill_at_run, plan
from degrade_lab.tasks.common import output_dir
from degrade_lab.utils.io import atomic_write_json, atomic_write_text
from degrade_lab.utils.runs import package_versions, write_summary


def _state(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("runs", {})
    except (OSError, ValueError):
        return {}


def _command(run: Run, resume: bool) -> list[str]:
    args = [*run.args, f"resume={run.folder}"] if resume else [*run.args, f"hydra.run.dir={run.folder}"]
    return [sys.executable, "-m", "degrade_lab.cli", run.task, *args]


def _execute(run: Run, command: list[str], log: Path) -> None:
    """One stage run as a subprocess, its output into ``log``; stops the pipeline when it fails."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as file:
        file.write(f"\n$ degrade-lab {run.task} {' '.join(command[4:])}\n")
        file.flush()
        result = subprocess.run(command, stdout=file, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log.read_text()[-3000:]
        raise UserInputError(f"stage '{run.key}' failed (exit {result.returncode}); its log: {log}\n{tail}")


def _set_aside(folder: Path) -> None:
    if folder.exists():
        folder.rename(folder.with_name(f"{folder.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}"))


def pipeline(cfg: DictConfig) -> dict:
    start = time.time()
    root = output_dir(cfg)
    spec = cfg.get("pipeline")
    if spec is None or not spec.get("stages"):
        raise UserInputError("degrade-lab pipeline needs a pipeline: degrade-lab pipeline NAME (conf/pipeline/NAME.yaml).")
    seeds = [int(s) for s in cfg.seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserInputError(f"seeds={list(cfg.seeds)}: give one or more distinct integers.")
    stages = OmegaConf.to_container(spec.stages, resolve=True)
    def plain(node) -> dict:
        return OmegaConf.to_container(node, resolve=True) if node is not None else {}

    args_sets = plain(spec.get("args"))
    variant = cfg.get("args_variant")
    if variant:  # e.g. +scale=cpu_smoke: builtin-sized data in place of the paper's data set
        args_sets.update(plain(spec.get(f"{variant}_args")))
    extra = plain(cfg.get("extra"))
    if not variant:  # what a full-scale run must be told (a data set's folder, ...)
        missing = [str(text) for key, text in (spec.get("needs") or {}).items() if spec.get(key) in (None, "")]
        if missing:
            raise UserInputError(f"pipeline {spec.name} needs " + "; ".join(missing)
                                 + " (or +scale=cpu_smoke to run it on builtin folders).")
    runs = plan(stages, seeds, args_sets, extra, root, variant)
    atomic_write_text(root / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    state_path = root / "pipeline.json"
    state = _state(state_path)
    data_dir = Path(str(cfg.paths.data_dir))

    def save():
        atomic_write_json(state_path, {"pipeline": str(spec.name), "seeds": seeds, "versions": package_versions(),
                                       "runs": state})

    remade: set[str] = set()
    for index, run in enumerate(runs, 1):
        args = fill_at_run(run.args, data_dir)
        run.args = args
        previous = state.get(run.key, {})
        same = previous.get("args") == args and not (run.depends & remade)
        if same and previous.get("status") == "done" and run.folder.is_dir():
            print(f"[{index}/{len(runs)}] {run.key}: done earlier, skipped", flush=True)
            continue
        if not same and previous:
            _set_aside(run.folder)
        resume = same and run.task == "train" and (run.folder / "checkpoints" / "last.ckpt").is_file()
        print(f"[{index}/{len(runs)}] {run.key}: degrade-lab {run.task}"
              f"{' (resuming)' if resume else ''} ... log: {root / (run.key + '.log')}", flush=True)
        state[run.key] = {"task": run.task, "args": args, "folder": str(run.folder), "status": "running",
                          "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        save()
        began = time.time()
        _execute(run, _command(run, resume), root / f"{run.key}.log")
        state[run.key].update(status="done", seconds=round(time.time() - began, 1))
        save()
        remade.add(run.key)

    def folders_of(stage: str) -> list[Path]:
        return [r.folder for r in runs if r.stage == stage]

    results = {"pipeline": str(spec.name), "seeds": seeds, "seconds": round(time.time() - start, 1)}
    table_spec = plain(spec.get("table"))
    text = f"# {spec.get('title') or spec.name}\n\n{spec.get('description') or ''}\n\n".replace("\n\n\n", "\n\n")
    if table_spec.get("rows"):
        table, rows = build_table(table_spec, folders_of)
        results["rows"] = rows
        made = sum(float(state[r.key].get("seconds", 0)) for r in runs if r.key in state)
        text += (f"Seeds {', '.join(map(str, seeds))} (mean ± std over them; win / loss only when the means differ "
                 f"by more than the two stds together); its {len(runs)} runs took {made / 60:.0f} min of "
                 f"{os.cpu_count()} CPU cores in all.\n\n{table}\n")
        figure = _report_figure(root, table_spec, folders_of)
        if figure:
            text += f"\nFigure and every metric: [{figure.name}/report.md]({figure.name}/report.md)\n"
    atomic_write_text(root / "results.md", text)
    atomic_write_json(root / "results.json", results)
    write_summary(root, task="pipeline", pipeline=str(spec.name), seeds=seeds, runs=len(runs),
                  made_now=len(remade), wall_seconds=results["seconds"])
    print("\n" + text, flush=True)
    return results


def _report_figure(root: Path, table: dict, folders_of) -> Path | None:
    """``degrade-lab report`` over the evaluate runs the table names (one row per table row)."""
    from degrade_lab.tasks.report import main as report_main

    named = [f"{row['name']}={folder}" for row in table["rows"]
             for stage in (row.get("restorer"), row.get("degrader")) if stage
             for folder in folders_of(stage) if (folder / "metrics.json").is_file()]
    if not named:
        return None
    out = root / "report"
    with open(root / "report.log", "w") as log, contextlib.redirect_stdout(log):
        code = report_main([*named, "--out", str(out), "--title", str(table.get("title") or root.name)])
    return out if code == 0 else None
