"""Shared fixtures: isolated caches, tiny image folders, and composing the real configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI run in a child process that loads test helpers (callbacks, degraders) from this
    folder by their ``_target_``, without warnings; ``extra`` variables added."""
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": path, **extra}


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """Run folders and caches of the tests go to a temporary folder, never the repository."""
    root = tmp_path_factory.mktemp("degrade_lab_home")
    # the installed backbones (`degrade-lab weights install`, run by `make test`) stay visible
    from degrade_lab.weights.store import weights_root

    os.environ.setdefault("DEGRADE_LAB_WEIGHTS", str(weights_root()))
    os.environ["DEGRADE_LAB_HOME"] = str(root / "home")
    os.environ["DEGRADE_LAB_ROOT"] = str(root / "root")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ["PYTHONWARNINGS"] = "ignore"
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:  # `pytest -n N`: the cores shared among the workers, their subprocesses included
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    else:
        torch.set_num_threads(2)
    yield root


def tree_hashes(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every entry under ``root`` but those under ``skip``: links as their target text (never followed), files by their
    content's SHA-256, folders as ``dir``; to assert that a command changed nothing there."""
    import hashlib

    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if skip is not None and (path == skip or skip in path.parents):
                continue
            if path.is_symlink():
                found[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "dir"
    return found


def cli_in_process(args: list[str]) -> tuple[int, str]:
    """``degrade-lab ARGS`` run in this process through the console script's own entry point (ten times faster than a
    child process): (exit status, what it wrote to stderr). An exception that escapes is a traceback a user would
    see, and fails the calling test."""
    import contextlib
    import io

    from hydra.core.global_hydra import GlobalHydra

    from degrade_lab import cli

    stderr, argv = io.StringIO(), sys.argv
    sys.argv = ["degrade-lab", *map(str, args)]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    return code, stderr.getvalue()


def save_rgb(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour image (uint8), so that denoising is learnable."""
    low = rng.random((3, height // 8 + 2, width // 8 + 2)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(low)[None], size=(height, width), mode="bicubic")[0]
    return (up.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.fixture
def tiny_folders(tmp_path):
    """source/, target/, paired/{clean,degraded}, test/{clean,degraded} with 48x48 images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(4):
        save_rgb(root / "source" / f"s{i}.png", smooth_image(rng, 48, 48))
        clean = smooth_image(rng, 48, 48)
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        save_rgb(root / "target" / f"t{i}.png", noisy)
        save_rgb(root / "paired" / "clean" / f"p{i}.png", clean)
        save_rgb(root / "paired" / "degraded" / f"p{i}.png", noisy)
    for i in range(2):
        clean = smooth_image(rng, 40, 40)
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        save_rgb(root / "test" / "clean" / f"v{i}.png", clean)
        save_rgb(root / "test" / "degraded" / f"v{i}.png", noisy)
    return root


@pytest.fixture
def compose(tmp_path):
    """compose(config_name, overrides) -> the config the CLI would build, run folder in tmp_path."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from degrade_lab import resolvers  # noqa: F401
    from degrade_lab.paths import config_dir

    counter = {"n": 0}

    def _compose(config_name: str, overrides: list[str] | None = None, run_dir: Path | None = None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides or [], return_hydra_config=True)
        counter["n"] += 1
        out = run_dir or tmp_path / f"run{counter['n']}"
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(out)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


#: a 3-layer, 8-channel DnCNN trained for 2 steps: a small real restorer checkpoint for the tests of model files
TINY_DNCNN = ["model=dncnn", "model.net.channels=8", "model.net.depth=3", "data=folders", "data.crop_size=16",
              "data.batch_size=2", "data.num_workers=0", "trainer.max_steps=2", "trainer.val_check_interval=2",
              "logger=csv", "callbacks.progress.refresh_rate=0", "model.val_lpips=null", "hardware=cpu"]


@pytest.fixture
def dncnn_ckpt(compose, tiny_folders, tmp_path) -> Path:
    """``RUN/checkpoints/last.ckpt`` of :data:`TINY_DNCNN` trained on the tiny paired folder (validated on its test
    pairs), ``RUN`` = ``tmp_path / "dncnn"``."""
    from degrade_lab.tasks.train import train

    train(compose("train", [*TINY_DNCNN, f"data.paired={tiny_folders / 'paired'}", f"data.test={tiny_folders / 'test'}"],
                  run_dir=tmp_path / "dncnn"))
    return tmp_path / "dncnn" / "checkpoints" / "last.ckpt"
