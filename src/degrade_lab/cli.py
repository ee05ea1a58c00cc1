"""``degrade-lab <task> [hydra overrides]``: one console script, one Hydra app per task.

Every task composes ``conf/<task>.yaml`` (found next to the package, never via the working
directory), accepts ``--multirun``, ``--help`` and ``hardware=...``, and prints its run folder as the
last line of output; ``experiment=...`` presets that set what a task lacks (a model, a trainer) are
refused in one line naming the task they are for. Bad input and config errors exit with status 2 and a
one-paragraph message. Shell completion (``-sc install=bash``) completes each task's options.
"""

from __future__ import annotations

import os
import sys

TASKS = {
    "train": "Fit a model (restorer or degradation model) on paired / unpaired / semi-supervised data.",
    "synthesize": "Degrade a folder of clean images into a paired folder (clean/ + degraded/).",
    "evaluate": "Score a checkpoint (or ckpt=identity) on paired test images: PSNR/SSIM/LPIPS tables.",
    "restore": "Run a trained restorer on every image of a folder (or one image): full-size PNGs, resumable.",
    "calibrate": "Tune a trained degradation model's noise strength to a degraded folder (no pairs needed).",
    "prepare": "The papers' preprocessing of a data set (SIDD crops, DIV2K bicubic, DND crops), resumable.",
    "pipeline": "The stages of a paper's table (train, synthesize, train restorers, evaluate, report), resumable.",
}
# plain commands (argparse, no Hydra run folder)
COMMANDS = {
    "weights": "install | list the pretrained backbones of LPIPS, FID and the perceptual loss (offline cache).",
    "report": "Collect evaluate runs into one Markdown/CSV table and a PNG figure.",
    "estimate-noise": "The noise of a folder of degraded images, no clean reference (std, noise level function).",
    "info": "What a model file is: model, task, scale, parameters, training data, steps, metrics, versions.",
    "export": "A checkpoint as a .safetensors model file (weights + config; loading it runs no code).",
    "import": "The authors' released weights (KAIR DnCNN / FFDNet / DRUNet, ESRGAN, Real-ESRGAN, DeFlow, LUD-VAE) as a model file.",
}
# Lightning's DDP launcher re-executes this script with the same arguments minus the task name,
# so the chosen task travels in the environment as well.
_TASK_ENV = "DEGRADE_LAB_TASK"


def _usage() -> str:
    lines = ["usage: degrade-lab <task> [key=value ...] [--multirun] [--help]", "", "tasks:"]
    lines += [f"  {name:<11} {text}" for name, text in TASKS.items()]
    lines += [f"  {name:<11} {text}" for name, text in COMMANDS.items()]
    lines += ["", "Run 'degrade-lab <task> --help' for its config groups and options."]
    return "\n".join(lines)


def _fail(task: str, message: str) -> None:
    print(f"degrade-lab {task}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _check_resume(task: str, args: list[str]) -> None:
    """``resume=PATH`` must name a training run folder of degrade_lab (or a checkpoint inside one) whose checkpoint
    reads safely and holds the model the command asks for: all checked before Hydra writes into the folder
    (``.hydra/``, the log), so a refused resume leaves it as it was (:mod:`degrade_lab.utils.resume`)."""
    for arg in args:
        if not arg.startswith("resume=") or arg.split("=", 1)[1] in ("", "null", "auto"):
            continue
        from degrade_lab.errors import UserInputError
        from degrade_lab.utils.checkpoint import read_checkpoint
        from degrade_lab.utils.resume import check_same_model, resume_target

        try:
            _, checkpoint = resume_target(arg.split("=", 1)[1])
            read_checkpoint(checkpoint)
            model = _composed_model(task, args)
            if model is not None:
                check_same_model(checkpoint, model)
        except UserInputError as err:
            _fail(task, str(err))


def _composed_model(task: str, args: list[str]) -> dict | None:
    """The ``model`` section the command composes (resolved), or None when it cannot be composed here (a sweep, a
    config error: Hydra reports those, and train checks the model again)."""
    if task != "train" or any(a.startswith("-") for a in args):
        return None
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from degrade_lab import resolvers  # noqa: F401  (registers the ${dl.*} resolvers)
    from degrade_lab.paths import config_dir

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="resume_check"):
            cfg = compose(config_name=task, overrides=list(args))
        return OmegaConf.to_container(cfg.model, resolve=True)
    except Exception:  # noqa: BLE001 (Hydra reports a config it cannot compose, with its own message)
        return None


def preset_groups(name: str) -> set[str] | None:
    """The config groups and top-level keys that ``conf/experiment/NAME.yaml`` sets (None: no such preset)."""
    from omegaconf import OmegaConf

    from degrade_lab.paths import config_dir

    path = config_dir() / "experiment" / f"{name}.yaml"
    if not path.is_file():
        return None
    preset = OmegaConf.to_container(OmegaConf.load(path))
    used = {key for key in preset if key not in ("defaults", "experiment_name")}
    for entry in preset.get("defaults") or []:
        key = next(iter(entry)) if isinstance(entry, dict) else str(entry)
        overriding = key.startswith("override ")
        path = key.removeprefix("override ").strip()
        if "@" in path:  # a group placed at a package: /degrader@data.degrader sets data
            used.add(path.split("@", 1)[1].split(".")[0])
        elif path.startswith("/") or overriding:  # a group of the task's config
            used.add(path.lstrip("/").split("/")[0])
        elif path != "_self_":  # another preset it builds on
            used |= preset_groups(path) or set()
    return used


def task_groups(task: str) -> set[str]:
    """The config groups and top-level keys of ``conf/<task>.yaml``."""
    from omegaconf import OmegaConf

    from degrade_lab.paths import config_dir

    config = OmegaConf.to_container(OmegaConf.load(config_dir() / f"{task}.yaml"))
    groups = {next(iter(e)).removeprefix("optional ").strip() if isinstance(e, dict) else str(e)
              for e in config.get("defaults") or []}
    return groups | {key for key in config if key != "defaults"}


def _check_experiment(task: str, args: list[str]) -> None:
    """A preset that sets what this task does not have (a model, a trainer) is refused in one line that
    names the tasks it applies to (Hydra would say "Could not override 'model'")."""
    for arg in args:
        if not arg.startswith("experiment=") or arg.split("=", 1)[1] in ("", "null"):
            continue
        name = arg.split("=", 1)[1]
        used = preset_groups(name)
        if used is None:
            return  # Hydra lists the available presets
        foreign = sorted(used - task_groups(task))
        if foreign:
            fits = [other for other in TASKS if not used - task_groups(other)]
            _fail(task, f"experiment={name} sets {', '.join(foreign)}, which `degrade-lab {task}` does not use; "
                        f"it is a preset for: {', '.join(f'degrade-lab {t}' for t in fits) or 'no task'}.")


def _check_sweeper(task: str, args: list[str]) -> None:
    """``hparams_search=...`` runs on Hydra's Optuna sweeper, an optional extra: say how to install it."""
    wanted = [a for a in args if a.startswith("hparams_search=") and a.split("=", 1)[1] not in ("", "null")]
    if not wanted:
        return
    import importlib.util

    if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        _fail(task, f"{wanted[0]} runs on Hydra's Optuna sweeper, an optional extra (it pins optuna < 3): "
                    "pip install -e '.[hparams]' (or pip install hydra-optuna-sweeper).")


def composition_message(err: BaseException) -> str | None:
    """One line for a config Hydra could not compose: an unknown setting (with the nearest valid keys, difflib) or an
    unknown option of a group (with the options); None for anything else."""
    import difflib
    import re

    cause = err.__cause__
    parent, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
    if type(err).__name__ == "ConfigCompositionException" and parent is not None and key is not None:
        full_key = str(getattr(cause, "full_key", None) or key)
        where = full_key.rsplit(".", 1)[0] if "." in full_key else ""
        keys = [str(k) for k in parent if not str(k).startswith("_") and str(k) != "hydra"]
        near = difflib.get_close_matches(str(key), keys, n=3, cutoff=0.5)
        return (f"unknown setting '{full_key}'"
                + (f"; did you mean {' or '.join(repr(f'{where}.{k}' if where else k) for k in near)}?" if near else "")
                + f" ({where or 'the command'} takes: {', '.join(keys[:24])}{', ...' if len(keys) > 24 else ''}; "
                  f"+{full_key}=VALUE adds a new key on purpose).")
    found = re.search(r"Could not find '([^']+)'", str(err))
    if found and "Available options" in str(err):
        group, _, option = found.group(1).rpartition("/")
        options = re.findall(r"^\t(\S+)$", str(err).split("Config search path")[0], flags=re.M)
        near = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
        return (f"{group}={option}: no such option"
                + (f"; did you mean {' or '.join(f'{group}={o}' for o in near)}?" if near else "")
                + f" ({group} options: {', '.join(options)}).")
    return None


def _run(task: str) -> None:
    import hydra
    from omegaconf import DictConfig

    from degrade_lab import resolvers  # noqa: F401  (registers the ${dl.*} resolvers)
    from degrade_lab.errors import UserInputError
    from degrade_lab.paths import config_dir

    started = []  # whether Hydra composed a config and called the task (else: a config error)
    # Hydra raises instead of printing its own multi-line report: a config error becomes one line here (below), and an
    # error inside a task is either the user's (one line, in main) or a bug (its whole traceback)
    os.environ["HYDRA_FULL_ERROR"] = "1"

    def main(cfg: DictConfig):
        from contextlib import nullcontext
        from importlib import import_module

        from degrade_lab.utils.config_check import check_types
        from degrade_lab.utils.io import set_max_pixels
        from degrade_lab.utils.lock import OutputLock, is_launcher_process

        started.append(True)
        function = getattr(import_module(f"degrade_lab.tasks.{task}"), task)
        try:
            check_types(cfg, task)
            set_max_pixels(cfg.get("max_pixels"))
            lock = OutputLock(cfg.paths.output_dir, what="run folder") if is_launcher_process() else nullcontext()
            with lock:
                result = function(cfg)
        except Exception as err:  # hydra wraps errors raised inside instantiate(): unwrap the chain
            cause: BaseException | None = err
            while cause is not None and not isinstance(cause, UserInputError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            _fail(task, str(cause))
        print(cfg.paths.output_dir, flush=True)
        optimized = cfg.get("optimized_metric")
        if optimized == "auto":
            optimized = "optimized"  # train resolved it from the model's monitor
        return result.get(optimized) if optimized and isinstance(result, dict) else None

    try:
        hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=task)(main)()
    except SystemExit as exit_:
        if exit_.code == 1 and not started:  # Hydra printed why the config could not be composed
            sys.exit(2)
        raise
    except Exception as err:  # HYDRA_FULL_ERROR=1: the composition error itself
        if started:
            raise
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, UserInputError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # a resolver refusing a value (a pipeline name that is not plain)
            _fail(task, str(cause))
        marker = "UserInputError raised while resolving interpolation: "
        if marker in str(err):  # OmegaConf keeps the resolver's message, not the exception, in its chain
            _fail(task, str(err).split(marker, 1)[1].splitlines()[0])
        message = composition_message(err)
        if message is None:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            message = f"the configuration cannot be composed: {' '.join(lines[:3]) or type(err).__name__}"
        _fail(task, message)


def _shell_completion(args: list[str]) -> str | None:
    """Hydra's shell completion asks ``degrade-lab -sc query=bash`` with the typed line in ``COMP_LINE``
    (``degrade-lab train model=dn``). Returns the task whose Hydra app should answer, with the task word
    removed from the line (Hydra would parse it as an override), or answers the task name itself."""
    if len(args) < 2 or args[0] != "-sc":
        return None
    if not args[1].startswith("query="):
        return "train"  # install / uninstall: the same script for every task
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    typing_task = len(words) < 2 or (len(words) == 2 and not line.endswith(" "))
    if typing_task or words[1] not in TASKS:
        prefix = words[1] if len(words) > 1 and not line.endswith(" ") else ""
        print(" ".join(name for name in [*TASKS, *COMMANDS] if name.startswith(prefix)))
        sys.exit(0)
    task = words[1]
    start = line.index(task)
    os.environ["COMP_LINE"] = (line[:start] + line[start + len(task):].lstrip(" ")).rstrip("\n")
    if os.environ.get("COMP_POINT", "").isdigit():
        removed = len(line) - len(os.environ["COMP_LINE"])
        os.environ["COMP_POINT"] = str(max(int(os.environ["COMP_POINT"]) - removed, 0))
    return task


def main() -> None:
    args = sys.argv[1:]
    completing = _shell_completion(args)
    if completing is not None:
        sys.argv = [sys.argv[0], *args]
        _run(completing)
        return
    if args and args[0] in COMMANDS:
        from importlib import import_module

        module = {"weights": "degrade_lab.weights.command", "report": "degrade_lab.tasks.report",
                  "estimate-noise": "degrade_lab.tasks.estimate_noise", "info": "degrade_lab.tasks.info",
                  "export": "degrade_lab.tasks.export", "import": "degrade_lab.tasks.import_weights"}[args[0]]
        sys.exit(import_module(module).main(args[1:]))
    if args and args[0] in TASKS:
        task = args.pop(0)
        os.environ[_TASK_ENV] = task
    elif os.environ.get(_TASK_ENV) in TASKS and args and "=" in args[0]:
        task = os.environ[_TASK_ENV]  # a DDP child process
    else:
        print(_usage(), file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        if args and args[0] not in ("-h", "--help"):
            print(f"\ndegrade-lab: unknown task '{args[0]}'", file=sys.stderr)
            sys.exit(2)
        return
    if task in ("prepare", "pipeline") and args and "=" not in args[0] and not args[0].startswith("-"):
        # degrade-lab prepare sidd data.root=... output=...; degrade-lab pipeline dncnn_demo
        args[0] = f"{'recipe' if task == 'prepare' else 'pipeline'}={args[0]}"
    _check_resume(task, args)
    _check_experiment(task, args)
    _check_sweeper(task, args)
    sys.argv = [sys.argv[0], *args]
    _run(task)


if __name__ == "__main__":
    main()
