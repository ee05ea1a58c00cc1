"""The console script end to end, as a user types it (subprocesses, exit codes, messages)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import save_rgb, smooth_image

TINY = ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders", "data.crop_size=16",
        "data.batch_size=4", "callbacks.progress.refresh_rate=0", "logger=csv"]


def cli(*args, cwd=None, timeout=300):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "degrade_lab.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def last_line(result) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def test_help_lists_tasks_and_config_groups():
    top = cli("--help")
    assert top.returncode == 0 and all(t in top.stdout for t in ("train", "synthesize", "evaluate"))
    result = cli("train", "--help")
    assert result.returncode == 0
    for group in ("model", "data", "hardware", "logger", "experiment", "trainer", "callbacks", "debug"):
        assert f"{group}:" in result.stdout
    assert "dncnn" in result.stdout and "ddp_cpu" in result.stdout
    assert cli("nonsense").returncode == 2


def test_full_cli_flow_from_another_directory(tiny_folders, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pairs = tmp_path / "pairs"
    synth = last_line(cli("synthesize", "degrader=awgn", "degrader.sigma=[5,50]", f"input={tiny_folders / 'source'}",
                          f"output={pairs}", "seed=0", cwd=elsewhere))
    assert json.loads((synth / "summary.json").read_text())["pairs"] == 4
    assert (synth / "config.yaml").is_file() and not (elsewhere / "logs").exists()
    run = last_line(cli("train", *TINY, f"data.paired={pairs}", f"data.test={tiny_folders / 'test'}",
                        "trainer.max_steps=4", "trainer.val_check_interval=2", cwd=elsewhere))
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "config.yaml").is_file()
    evaluation = last_line(cli("evaluate", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "data=folders",
                               f"data.test={tiny_folders / 'test'}", cwd=elsewhere))
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["test/images"] == 2 and np.isfinite(metrics["test/psnr"])
    assert not list(elsewhere.iterdir())  # nothing written into the working directory


def test_multirun_sweeps_two_values(tiny_folders):
    result = cli("train", "--multirun", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=2",
                 "trainer.val_check_interval=2", "model.optimizer.lr=1e-3,1e-4")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [Path(line) for line in result.stdout.splitlines() if "/multiruns/" in line and line.startswith("/")]
    assert len(runs) == 2
    import yaml

    lrs = sorted(yaml.safe_load((r / "config.yaml").read_text())["model"]["optimizer"]["lr"] for r in runs)
    assert all(json.loads((r / "summary.json").read_text())["global_step"] == 2 for r in runs)
    assert lrs == pytest.approx([1e-4, 1e-3])


@pytest.mark.parametrize(
    "make_bad, args, message",
    [
        ("empty_file", ["data.paired={root}/paired"], "empty file"),
        ("corrupt_file", ["data.paired={root}/paired"], "cannot be read"),
        ("none", ["data.paired={root}/missing"], "does not exist"),
        ("empty_dir", ["data.paired={root}/emptydir"], "holds no images"),
        ("none", ["data.paired={root}/paired", "data.crop_size=64"], "smaller than the 64x64 crop"),
        ("unmatched", ["data.paired={root}/paired"], "do not match"),
        ("mismatched", ["data.paired={root}/paired"], "pair 'p1'"),
    ],
)
def test_bad_training_input_exits_2_naming_the_problem(tiny_folders, make_bad, args, message):
    root = tiny_folders
    paired = root / "paired"
    if make_bad == "empty_file":
        (paired / "degraded" / "p2.png").write_bytes(b"")
    elif make_bad == "corrupt_file":
        (paired / "clean" / "p2.png").write_bytes(b"\x89PNG garbage")
    elif make_bad == "empty_dir":
        (root / "emptydir" / "clean").mkdir(parents=True)
        (root / "emptydir" / "degraded").mkdir()
    elif make_bad == "unmatched":
        (paired / "degraded" / "p3.png").rename(paired / "degraded" / "other.png")
    elif make_bad == "mismatched":
        save_rgb(paired / "degraded" / "p1.png", smooth_image(np.random.default_rng(1), 40, 48))
    result = cli("train", *TINY, *[a.format(root=root) for a in args], "trainer.max_steps=1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_checkpoint_and_unknown_group_value(tiny_folders, tmp_path):
    result = cli("evaluate", f"ckpt={tmp_path / 'none.ckpt'}", "data=folders", f"data.test={tiny_folders / 'test'}")
    assert result.returncode == 2 and "none.ckpt' does not exist" in result.stderr
    result = cli("train", "model=no_such_model")
    assert result.returncode != 0 and "no_such_model" in result.stderr and "dncnn" in result.stderr
    result = cli("synthesize", "degrader=camera", f"input={tmp_path / 'nowhere'}", f"output={tmp_path / 'o'}")
    assert result.returncode == 2 and "nowhere' does not exist" in result.stderr


def test_a_failed_run_does_not_touch_existing_pairs(tiny_folders, tmp_path):
    out = tmp_path / "pairs"
    last_line(cli("synthesize", "degrader=jpeg", f"input={tiny_folders / 'source'}", f"output={out}", "seed=0"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = cli("synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}", "seed=0")
    assert result.returncode == 2 and "other settings" in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tiny_folders):
    run = last_line(cli("train", *TINY, "hardware=ddp_cpu", f"data.paired={tiny_folders / 'paired'}",
                        f"data.test={tiny_folders / 'test'}", "trainer.max_steps=4", "trainer.val_check_interval=2",
                        timeout=600))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == 4 and (run / "checkpoints" / "last.ckpt").is_file()
    assert "val/psnr" in summary["metrics"]


def test_ludvae_bad_input_exits_2_naming_the_problem(tiny_folders, tmp_path):
    (tmp_path / "empty").mkdir()
    ludvae = ["experiment=ludvae_cpu", "data=folders", "hardware=cpu", "trainer.max_steps=1",
              f"data.source={tiny_folders / 'source'}"]
    result = cli("train", *ludvae, f"data.target={tmp_path / 'empty'}", "data.crop_size=16")
    assert result.returncode == 2 and f"{tmp_path / 'empty'}' holds no images" in result.stderr
    result = cli("train", *ludvae, f"data.target={tiny_folders / 'target'}", "data.crop_size=64")  # 48x48 images
    assert result.returncode == 2 and "smaller than the 64x64 crop" in result.stderr
    assert "s0.png" in result.stderr or "t0.png" in result.stderr
    # a restorer's checkpoint given as a LUD-VAE degrader
    trained = cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=1")
    ckpt = Path(trained.stdout.strip().splitlines()[-1]) / "checkpoints" / "last.ckpt"
    result = cli("synthesize", "degrader=ludvae", f"degrader.ckpt={ckpt}", f"input={tiny_folders / 'source'}",
                 f"output={tmp_path / 'out'}")
    assert result.returncode == 2 and "RestorationModule" in result.stderr and "LUDVAEModule" in result.stderr
    assert "Traceback" not in result.stderr


def test_weights_and_report_commands(tiny_folders, tmp_path):
    listing = cli("weights", "list")
    assert listing.returncode == 0 and "inception" in listing.stdout and "FID" in listing.stdout
    bad = cli("weights", "install", "source=official", f"from={tmp_path}")
    assert bad.returncode == 2 and "alexnet-owt-7be5be79.pth" in bad.stderr
    run = last_line(cli("evaluate", "ckpt=identity", "data=folders", f"data.test={tiny_folders / 'test'}",
                        "progress=false"))
    result = cli("report", f"noisy input={run}", "--out", str(tmp_path / "report"))
    assert result.returncode == 0 and "| noisy input |" in result.stdout
    assert (tmp_path / "report" / "report.png").is_file()
    assert "weights" in cli("--help").stdout and "report" in cli("--help").stdout


def test_shell_completion_for_each_task():
    """bash asks `degrade-lab -sc query=bash` with the typed line in COMP_LINE (Hydra's completion script)."""
    def query(line):
        env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
        result = subprocess.run([sys.executable, "-m", "degrade_lab.cli", "-sc", "query=bash"], capture_output=True,
                                text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.split()

    assert query("degrade-lab tr") == ["train"]
    assert "model=dncnn" in query("degrade-lab train model=dn")
    assert "degrader=camera" in query("degrade-lab synthesize degrader=ca")
    assert "ckpt=" in query("degrade-lab evaluate ck")
    script = cli("train", "-sc", "install=bash")
    assert script.returncode == 0 and "complete -o nospace -o default -F hydra_bash_completion" in script.stdout
