"""A pipeline config's stages, expanded into the commands that run them.

A stage is ``{name, task, args, seeds}``: ``task`` a degrade-lab task (``train``, ``synthesize``, ``evaluate``,
``calibrate``, ``prepare``), ``args`` its command-line overrides, ``seeds: true`` one run per seed of the pipeline
(``NAME/s0``, ``NAME/s1`` ...). Arguments may hold placeholders, filled when the stage runs:

* ``{seed}``: the run's seed (seeded stages; ``0`` otherwise);
* ``{dir}``: this run's own folder; ``{stage:NAME}``: the folder of an earlier stage's run (for a seeded stage,
  the run of the same seed where NAME is seeded too);
* ``{ckpt:NAME}``: the checkpoint of an earlier training stage's run: its ``checkpoints/best.ckpt``, or
  ``last.ckpt`` when the run never validated (a short run); chosen when the stage runs;
* ``{builtin:NAME}``: the builtin data set ``NAME`` (built on first use);
* an argument ``{args:KEY}`` on its own is replaced by the list ``args.KEY`` of the pipeline config (data settings
  that a scale preset such as ``+scale=cpu_smoke`` swaps for builtin-sized ones; a list may use other lists);
  inside a longer argument (``input={args:clean}``) by that list's single value.

A stage with ``skip: [cpu_smoke]`` is left out at that scale (e.g. preparing a data set the smoke run replaces with
builtin folders).

``extra.<task>`` lists are appended to every stage of that task (what ``+scale=cpu_smoke`` shortens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from degrade_lab.errors import UserInputError

TASKS = ("train", "synthesize", "evaluate", "calibrate", "prepare")
PLACEHOLDER = re.compile(r"\{(seed|dir|(?:stage|ckpt):[A-Za-z0-9_]+|builtin:[A-Za-z0-9_]+)\}")
#: ``{ckpt:NAME}`` once planned: the run folder whose best (else last) checkpoint is meant, filled at run time
RUN_CKPT = re.compile(r"\{run_ckpt:([^{}]+)\}")


@dataclass
class Run:
    """One command of a pipeline: a stage at one seed."""

    stage: str
    task: str
    seed: int | None
    args: list[str]
    folder: Path
    depends: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.stage if self.seed is None else f"{self.stage}/s{self.seed}"


def _stage_refs(args: list[str]) -> set[str]:
    return {m.group(1).split(":", 1)[1] for a in args for m in PLACEHOLDER.finditer(a)
            if m.group(1).startswith(("stage:", "ckpt:"))}


def _last_wins(args: list[str]) -> list[str]:
    """Overrides of one key given twice (a stage's own, then ``extra``'s) keep the last value, in the first's place."""
    position: dict[str, int] = {}
    result: list[str] = []
    for arg in args:
        key = arg.split("=", 1)[0] if "=" in arg else None
        if key is not None and key in position:
            result[position[key]] = arg
        else:
            if key is not None:
                position[key] = len(result)
            result.append(arg)
    return result


ARGS = re.compile(r"\{args:([A-Za-z0-9_]+)\}")


def _splice(arg: str, args_sets: dict, stage: str, depth: int = 0) -> list[str]:
    """``{args:KEY}`` as a whole argument: the list ``args.KEY``; inside a longer argument: its single value. A list
    may itself hold ``{args:OTHER}`` (a few levels deep)."""
    def values(key: str) -> list[str]:
        if key not in args_sets:
            raise UserInputError(f"pipeline stage '{stage}': no list args.{key} in the pipeline config.")
        if depth > 4:
            raise UserInputError(f"pipeline stage '{stage}': args.{key} refers to itself through other args lists.")
        return [out for a in args_sets[key] for out in _splice(str(a), args_sets, stage, depth + 1)]

    whole = ARGS.fullmatch(arg)
    if whole:
        return values(whole.group(1))

    def one(match):
        found = values(match.group(1))
        if len(found) != 1:
            raise UserInputError(f"pipeline stage '{stage}': args.{match.group(1)} is used inside '{arg}', so it must "
                                 f"hold one value, not {len(found)}.")
        return found[0]

    return [ARGS.sub(one, arg)]


def plan(stages: list[dict], seeds: list[int], args_sets: dict, extra: dict, root: Path,
         variant: str | None = None) -> list[Run]:
    """The runs of ``stages`` in order, their placeholders other than ``{builtin:...}`` filled; a stage whose
    ``skip`` lists ``variant`` (e.g. ``cpu_smoke``) is left out. Stops on an unknown task, an unknown or later
    stage referenced, or a duplicate name."""
    runs: list[Run] = []
    seeded: dict[str, bool] = {}
    for stage in stages:
        name, task = str(stage.get("name", "")), str(stage.get("task", ""))
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or name in seeded:
            raise UserInputError(f"pipeline stage name {name!r} must be unique letters, digits or _.")
        if task not in TASKS:
            raise UserInputError(f"pipeline stage '{name}': task {task!r} is not one of {', '.join(TASKS)}.")
        if variant and variant in (stage.get("skip") or []):
            continue
        args = []
        for arg in [*stage.get("args", []), *extra.get(task, [])]:
            args += _splice(str(arg), args_sets, name)
        args = _last_wins(args)
        for ref in _stage_refs(args):
            if ref not in seeded:
                raise UserInputError(f"pipeline stage '{name}' refers to '{ref}', which is not an earlier stage.")
        is_seeded = bool(stage.get("seeds", False))
        seeded[name] = is_seeded
        for seed in seeds if is_seeded else [None]:
            folder = root / name / f"s{seed}" if seed is not None else root / name

            def fill(match, seed=seed, folder=folder, name=name):
                token = match.group(1)
                if token == "seed":
                    return str(seed if seed is not None else 0)
                if token == "dir":
                    return str(folder)
                if token.startswith(("stage:", "ckpt:")):
                    ref = token.split(":", 1)[1]
                    if seeded[ref]:
                        if seed is None:
                            raise UserInputError(f"pipeline stage '{name}' is not seeded but refers to the seeded "
                                                 f"stage '{ref}': mark it seeds: true.")
                        where = root / ref / f"s{seed}"
                    else:
                        where = root / ref
                    return str(where) if token.startswith("stage:") else f"{{run_ckpt:{where}}}"
                return match.group(0)  # {builtin:...}: filled when the run starts

            filled = [PLACEHOLDER.sub(fill, a) for a in args]
            depends = {r if not seeded[r] else f"{r}/s{seed}" for r in _stage_refs(args)}
            runs.append(Run(name, task, seed, filled, folder, depends))
    return runs


def fill_at_run(args: list[str], data_dir: Path) -> list[str]:
    """What is filled when a run starts: ``{builtin:NAME}`` -> the builtin data set's folder (built if it is not
    there yet), ``{ckpt:NAME}`` -> that run's ``best.ckpt``, else its ``last.ckpt``."""
    from degrade_lab.data.builtin import ensure_builtin

    def fill(match):
        token = match.group(1)
        return str(ensure_builtin(token[8:], data_dir)) if token.startswith("builtin:") else match.group(0)

    def checkpoint(match):
        folder = Path(match.group(1)) / "checkpoints"
        return str(folder / "best.ckpt" if (folder / "best.ckpt").is_file() else folder / "last.ckpt")

    return [RUN_CKPT.sub(checkpoint, PLACEHOLDER.sub(fill, a)) for a in args]
