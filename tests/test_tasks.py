"""train / synthesize / evaluate as functions of the composed config (fast, in-process)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.evaluate import evaluate
from degrade_lab.tasks.synthesize import synthesize
from degrade_lab.tasks.train import train
from degrade_lab.utils.checkpoint import load_model

TINY = ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders",
        "data.crop_size=16", "data.batch_size=4", "data.num_workers=0", "logger=csv",
        "callbacks.progress.refresh_rate=0"]


def tiny_train(compose, folders, *extra, run_dir=None):
    cfg = compose("train", [*TINY, f"data.paired={folders / 'paired'}", f"data.test={folders / 'test'}",
                            "trainer.max_steps=6", "trainer.val_check_interval=3",
                            "callbacks.last_checkpoint.every_n_train_steps=2", *extra], run_dir=run_dir)
    return cfg, train(cfg)


def test_train_writes_the_run_folder(compose, tiny_folders):
    cfg, metrics = tiny_train(compose, tiny_folders)
    run = cfg.paths.output_dir
    summary = json.loads(Path(f"{run}/summary.json").read_text())
    assert summary["global_step"] == 6 and summary["seed"] == 0
    assert summary["params"]["total"] == summary["params"]["trainable"] > 0
    assert {"torch", "pytorch-lightning", "hydra-core"} <= set(summary["versions"])
    assert summary["wall_seconds"] > 0
    # the images were decoded once into memory (every one of the 4 pairs, both sides), no loader process on the CPU
    assert summary["data_loading"]["cache"]["mode"] == "memory" and summary["data_loading"]["cache"]["images"] == 8
    assert summary["data_loading"]["num_workers"] == 0 and summary["data_loading"]["skipped_images"] == 0
    timing = summary["throughput"]  # 6 steps less the 3 start-up ones
    assert timing["steps_timed"] == 3 and timing["steps_per_second"] > 0
    assert abs(timing["network_share"] + timing["data_wait_share"] + timing["degrade_share"] - 1) < 1e-3
    config = yaml.safe_load(Path(f"{run}/config.yaml").read_text())
    assert config["data"]["paired"] == str(tiny_folders / "paired")  # resolved, no interpolations
    assert "val/psnr" in metrics
    import os

    assert os.path.isfile(f"{run}/checkpoints/last.ckpt") and os.path.isfile(f"{run}/checkpoints/best.ckpt")
    assert any(name.endswith(".png") for name in os.listdir(f"{run}/samples"))


def test_fast_dev_run(compose, tiny_folders):
    cfg, _ = tiny_train(compose, tiny_folders, "debug=fdr")
    assert json.loads(Path(f"{cfg.paths.output_dir}/summary.json").read_text())["global_step"] == 1


def test_a_checkpoint_alone_rebuilds_its_model(compose, tiny_folders):
    cfg, _ = tiny_train(compose, tiny_folders, "model.net.channels=6")
    checkpoint = torch.load(f"{cfg.paths.output_dir}/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["degrade_lab"]["seed"] == 0 and "torch" in checkpoint["degrade_lab"]["versions"]
    assert checkpoint["degrade_lab"]["global_step"] == 6
    model, record = load_model(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")
    assert record["config"]["model"]["net"]["channels"] == 6
    state = checkpoint["state_dict"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name])
    x = torch.rand(1, 3, 16, 16)
    assert model(x).shape == x.shape


def test_resume_continues_the_step_count(compose, tiny_folders, tmp_path):
    run = tmp_path / "resumable"
    cfg, _ = tiny_train(compose, tiny_folders, run_dir=run)
    first_config = (run / "config.yaml").read_text()
    cfg2 = compose("train", [*TINY, f"data.paired={tiny_folders / 'paired'}", f"data.test={tiny_folders / 'test'}",
                             "trainer.max_steps=10", "trainer.val_check_interval=3", f"resume={run}"], run_dir=run)
    train(cfg2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == 10 and summary["resumed_from"].endswith("last.ckpt")
    assert (run / "config.yaml").read_text() == first_config  # the original record is kept


def test_resume_from_a_missing_checkpoint(compose, tiny_folders, tmp_path):
    cfg = compose("train", [*TINY, f"data.paired={tiny_folders / 'paired'}", f"resume={tmp_path / 'nothing'}"])
    with pytest.raises(UserInputError, match="does not exist"):
        train(cfg)


def test_on_the_fly_training_from_clean_images(compose, tiny_folders):
    cfg = compose("train", [*TINY, f"data.source={tiny_folders / 'source'}", "data.degrader=camera",
                            "trainer.max_steps=5", "trainer.val_check_interval=5"])
    train(cfg)
    summary = json.loads(Path(f"{cfg.paths.output_dir}/summary.json").read_text())
    assert summary["throughput"]["degrade_share"] > 0  # the pairs were made on the fly
    assert summary["global_step"] == 5 and "val/psnr" not in summary["metrics"]  # no test folder, no validation


def test_synthesize_then_train_then_evaluate(compose, tiny_folders, tmp_path):
    out = tmp_path / "pairs"
    cfg = compose("synthesize", ["degrader=awgn", "degrader.sigma=[5,50]", f"input={tiny_folders / 'source'}",
                                 f"output={out}", "seed=0", "samples=2", "progress=false"])
    summary = synthesize(cfg)
    assert summary["pairs"] == 8 and summary["written_now"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["seed"] == 0 and len(manifest["files"]) == 8
    assert sorted(p.name for p in (out / "degraded").iterdir())[:2] == ["s0_s0.png", "s0_s1.png"]

    cfg, _ = tiny_train(compose, tiny_folders, f"data.paired={out}")
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    ecfg = compose("evaluate", [f"ckpt={ckpt}", "data=folders", f"data.test={tiny_folders / 'test'}",
                                "progress=false"])
    metrics = evaluate(ecfg)
    run = ecfg.paths.output_dir
    saved = json.loads(Path(f"{run}/metrics.json").read_text())
    assert set(saved) >= {"test/psnr", "test/ssim", "input/psnr", "input/ssim"} and saved == metrics
    rows = Path(f"{run}/metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("name,test/psnr,test/ssim,input/psnr,input/ssim") and len(rows) == 3
    assert "| restored |" in Path(f"{run}/metrics.md").read_text()


def test_evaluate_identity_scores_the_input(compose, tiny_folders):
    cfg = compose("evaluate", ["ckpt=identity", "data=folders", f"data.test={tiny_folders / 'test'}",
                               "progress=false"])
    metrics = evaluate(cfg)
    assert metrics["test/psnr"] == pytest.approx(metrics["input/psnr"])
    assert 15 < metrics["input/psnr"] < 30


def test_synthesize_resumes_after_a_kill_without_duplicates(compose, tiny_folders, tmp_path):
    out = tmp_path / "pairs"
    overrides = ["degrader=camera", f"input={tiny_folders / 'source'}", f"output={out}", "seed=4", "progress=false"]
    synthesize(compose("synthesize", overrides))
    reference = {p.name: p.read_bytes() for p in (out / "degraded").iterdir()}
    # simulate a kill: one image missing, one left half-written in a temp file, manifest short by one
    (out / "degraded" / "s2.png").unlink()
    (out / "degraded" / ".s3.png.0123456789abcdef-12345678.tmp").write_bytes(b"partial")
    (out / ".degrade_lab.lock").write_text(json.dumps({"pid": 999999, "temporaries": "0123456789abcdef"}))
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["files"]["s3"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    summary = synthesize(compose("synthesize", overrides))
    assert summary["written_now"] == 2 and summary["pairs"] == 4
    assert {p.name: p.read_bytes() for p in (out / "degraded").glob("*.png")} == reference  # same pixels
    assert not list((out / "degraded").glob(".*.tmp"))  # the killed run's temporary, named by its lock's tag
    with pytest.raises(UserInputError, match="other settings"):
        synthesize(compose("synthesize", [*overrides[:-2], "seed=5", "progress=false"]))


def test_evaluate_rejects_a_checkpoint_of_another_scale(compose, tiny_folders):
    cfg, _ = tiny_train(compose, tiny_folders)
    ecfg = compose("evaluate", [f"ckpt={cfg.paths.output_dir}/checkpoints/last.ckpt", "data=folders",
                                f"data.test={tiny_folders / 'test'}", "data.scale=2", "progress=false"])
    with pytest.raises(UserInputError, match="scale 1 but data.scale is 2"):
        evaluate(ecfg)


def test_wandb_offline_run_resumes_the_same_run(compose, tiny_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    # the network is off: any connection attempt would go to a closed local port
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    run = tmp_path / "wb"
    tiny_train(compose, tiny_folders, "logger=many", run_dir=run)
    run_id = (run / "wandb_id.txt").read_text().strip()
    first = sorted((run / "wandb").glob("offline-run-*"))
    assert len(first) == 1 and first[0].name.endswith(run_id)
    assert any(first[0].rglob("*.wandb"))  # the run's data, ready for `wandb sync`
    # the same metric keys in every logger (the .wandb file stores keys as plain protobuf strings)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from degrade_lab.weights import installed

    wandb_bytes = next(first[0].glob("*.wandb")).read_bytes()
    csv_keys = set(Path(run / "csv" / "metrics.csv").read_text().splitlines()[0].split(","))
    scalars = EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"]
    keys = ["val/psnr", "val/ssim", "val/psnr_best"] + (["val/lpips"] if installed("pypi") else [])
    for key in keys:
        assert key.encode() in wandb_bytes and key in csv_keys and key in scalars, key
    cfg = compose("train", [*TINY, f"data.paired={tiny_folders / 'paired'}", f"data.test={tiny_folders / 'test'}",
                            "trainer.max_steps=8", "logger=wandb", f"resume={run}"], run_dir=run)
    train(cfg)
    assert (run / "wandb_id.txt").read_text().strip() == run_id
    assert all(p.name.endswith(run_id) for p in (run / "wandb").glob("offline-run-*"))
