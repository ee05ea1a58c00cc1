"""Users' files are safe: model files cannot run code, inputs are never written, one writer per folder,
exact resume after SIGKILL, every failure named with exit status 2 (issue 13)."""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import save_rgb, smooth_image
from degrade_lab.errors import UserInputError
from degrade_lab.paths import config_dir
from degrade_lab.utils.checkpoint import AtomicCheckpointIO, load_model
from degrade_lab.utils.trusted_targets import check_config, is_trusted
from test_cli import TINY, cli, last_line

HERE = Path(__file__).parent


def _tree(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _train(tiny_folders, *extra):
    return last_line(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=2", *extra))


# ---- 1, 2: model files that cannot run code ------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _record(model: dict) -> dict:
    return {"config": {"model": model}, "seed": 0, "versions": {}, "global_step": 0}


def test_a_pickled_payload_in_a_checkpoint_never_runs(tiny_folders, tmp_path):
    marker = tmp_path / "marker"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "degrade_lab": _record({"_target_": "degrade_lab.lit.restoration.RestorationModule"}),
                "payload": _RunsCode(marker)}, crafted)
    result = cli("evaluate", f"ckpt={crafted}", "data=folders", f"data.test={tiny_folders / 'test'}")
    assert result.returncode == 2 and "may be unsafe" in result.stderr and "Traceback" not in result.stderr
    result = cli("synthesize", "degrader=ludvae", f"degrader.ckpt={crafted}", f"input={tiny_folders / 'source'}",
                 f"output={tmp_path / 'out'}")
    assert result.returncode == 2 and "may be unsafe" in result.stderr
    for load in (load_model, AtomicCheckpointIO().load_checkpoint):  # evaluate / degraders / init_from; resume=
        with pytest.raises(UserInputError, match="may be unsafe"):
            load(crafted)
    assert not marker.exists()


def test_a_stored_config_may_only_name_degrade_labs_own_classes(tiny_folders, tmp_path):
    marker = tmp_path / "marker"
    crafted = tmp_path / "data_only.ckpt"
    model = {"_target_": "degrade_lab.utils.io.atomic_write_text", "path": str(marker), "text": "owned"}
    torch.save({"state_dict": {}, "degrade_lab": _record(model)}, crafted)  # plain data: weights_only accepts it
    assert torch.load(crafted, weights_only=True)["degrade_lab"]["config"]["model"]["path"] == str(marker)
    result = cli("evaluate", f"ckpt={crafted}", "data=folders", f"data.test={tiny_folders / 'test'}")
    assert result.returncode == 2 and "may be unsafe" in result.stderr and "atomic_write_text" in result.stderr
    result = cli("train", *TINY, f"data.source={tiny_folders / 'source'}", f"data.degrader={crafted}",
                 "trainer.max_steps=1")
    assert result.returncode == 2 and "may be unsafe" in result.stderr
    assert not marker.exists()
    # nested targets and interpolations (resolvers run code too) are refused as well
    good = {"_target_": "degrade_lab.lit.restoration.RestorationModule",
            "net": {"_target_": "degrade_lab.archs.dncnn.DnCNN"}}
    check_config(good, "f.ckpt")
    for bad in ({**good, "net": {"_target_": "os.system", "command": "true"}},
                {**good, "optimizer": {"_target_": "builtins.eval"}},
                {**good, "loss": [{"_target_": "subprocess.run"}]},
                {**good, "loss": "${oc.env:HOME}"}):
        with pytest.raises(UserInputError, match="may be unsafe"):
            check_config(bad, "f.ckpt")


def _targets(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield value
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


def test_every_shipped_config_target_is_trusted():
    """Every class a shipped model, network, degrader, loss, optimizer or scheduler config names is trusted
    by rule (a new model needs no list edit); functions and anything outside the model packages are not."""
    seen = set()
    for group in ("model", "degrader", "optimizer", "scheduler", "loss"):
        for file in (config_dir() / group).glob("*.yaml"):
            seen |= set(_targets(yaml.safe_load(file.read_text())))
    assert len(seen) > 20 and all(is_trusted(target) for target in seen), sorted(t for t in seen if not is_trusted(t))
    refused = ["degrade_lab.utils.io.atomic_write_text", "degrade_lab.tasks.train.run", "degrade_lab.cli.main",
               "degrade_lab.lit.ludvae.torch", "degrade_lab.lit.ludvae.Any",  # imported names, not classes defined there
               "degrade_lab.degradations.build.build_degrader", "degrade_lab.degradations.missing.Thing",
               "degrade_lab.lit.ludvae.LUDVAEModule.load_from_checkpoint", "torch.optim.Optimizer.__init__",
               "os.system", "builtins.eval", "torch.load", "subprocess.Popen", None, 3]
    assert not [target for target in refused if is_trusted(target)]


def test_checkpoints_are_readable_by_others_and_reload_safely(tiny_folders):
    run = _train(tiny_folders)
    last = run / "checkpoints" / "last.ckpt"
    assert oct(last.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    torch.load(last, weights_only=True)  # plain data only
    model, record = load_model(last)
    assert record["global_step"] == 2 and type(model).__name__ == "RestorationModule"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- 3, 4: inputs never written, one writer per folder ----------------------------------------------------
def test_outputs_never_overlap_inputs(tiny_folders, tmp_path):
    out = tmp_path / "pairs"
    last_line(cli("synthesize", "degrader=jpeg", f"input={tiny_folders / 'source'}", f"output={out}"))
    before = _tree(out)
    link = tmp_path / "link"
    link.symlink_to(out)
    for args in ([f"input={out / 'clean'}", f"output={out}"],  # output contains the input (the reported case)
                 [f"input={out}", f"output={out / 'clean' / 'more'}"],  # output inside the input
                 [f"input={link / 'clean'}", f"output={out}"],  # the same through a symlink
                 [f"input={out / 'clean'}", f"output={link / 'clean'}"]):
        result = cli("synthesize", "degrader=awgn", *args)
        assert result.returncode == 2 and "must never overlap" in result.stderr, args
    assert _tree(out) == before


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(tiny_folders, tmp_path):
    from degrade_lab.utils.lock import LOCK_NAME, OutputLock

    out = tmp_path / "pairs"
    with OutputLock(out, command="degrade-lab synthesize degrader=camera (the first run)"):
        result = cli("synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}")
        assert result.returncode == 2 and "in use by another run" in result.stderr
        assert f"pid {os.getpid()}" in result.stderr and "the first run" in result.stderr
    assert not (out / LOCK_NAME).exists() and not (out / "degraded").exists()
    # a lock file left by a killed run (nobody holds the lock): taken over, with a message
    dead = {"host": "somewhere", "pid": 999999, "started": 0, "command": "killed run"}
    (out / LOCK_NAME).write_text(json.dumps(dead))
    result = cli("synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    said = result.stdout + result.stderr  # the log goes to the console (stdout) and the run's log file
    assert "no longer running" in said and "killed run" in said
    assert not (out / LOCK_NAME).exists() and len(list((out / "degraded").glob("*.png"))) == 4


def test_two_runs_started_together_never_mix(tiny_folders, tmp_path):
    out = tmp_path / "pairs"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = [subprocess.Popen([sys.executable, "-m", "degrade_lab.cli", "synthesize", f"degrader={name}",
                              f"input={tiny_folders / 'source'}", f"output={out}"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in ("camera", "awgn")]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results  # the later one: "in use by another run", or "other settings" if it came late
    assert any("in use by another run" in err or "other settings" in err for _, err in results)
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["files"].items():  # every file is the one its manifest describes
        from degrade_lab.utils.io import sha256_file

        assert sha256_file(out / "degraded" / f"{name}.png") == entry["degraded"]


def test_the_manifest_is_written_before_the_first_image(tiny_folders, tmp_path, monkeypatch):
    """A run killed after its first image leaves a manifest that refuses other settings."""
    from degrade_lab.tasks import synthesize as task

    seen = []

    def killed_at_the_first_image(cfg, files, source, target, *rest):
        seen.append((target / "manifest.json").is_file())
        raise KeyboardInterrupt

    monkeypatch.setattr(task, "_write_pairs", killed_at_the_first_image)
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"input": str(tiny_folders / "source"), "output": str(tmp_path / "o"), "seed": 0,
                            "samples": 1, "device": "cpu", "progress": False, "bit_depth": "auto",
                            "paths": {"output_dir": str(tmp_path / "run")},
                            "degrader": {"_target_": "degrade_lab.degradations.noise.AWGN", "sigma": 10}})
    with pytest.raises(KeyboardInterrupt):
        task.synthesize(cfg)
    assert seen == [True]


# ---- 5, 0: exact resume after SIGKILL, stale temporaries --------------------------------------------------
SCHEDULE = ["trainer.max_steps=10", "trainer.val_check_interval=3", "callbacks.last_checkpoint.every_n_train_steps=4",
            "data.batches_per_epoch=4", "callbacks.progress.refresh_rate=0", "hardware=cpu"]
MODELS = {  # DnCNN on AWGN pairs made on the fly; LUD-VAE, whose steps draw from the global random stream
    "dncnn": [*TINY, "data.crop_size=16", "data.batch_size=3", "data.source={data}/source", "data.degrader=awgn",
              "data.val={data}/test"],
    "ludvae": ["experiment=ludvae_cpu", "model.net.channels=8", "model.net.latent_channels=4", "model.net.levels=2",
               "data=folders", "data.crop_size=16", "data.batch_size=4", "data.val_crop=null", "model.kl_anneal_steps=4",
               "data.source={data}/source", "data.target={data}/target", "data.test={data}/test"],
}


def _all_tensors(checkpoint: Path) -> dict:
    state = torch.load(checkpoint, weights_only=True)
    tensors = {f"model/{k}": v for k, v in state["state_dict"].items()}
    for i, optimizer in enumerate(state["optimizer_states"]):
        for pid, values in optimizer["state"].items():
            tensors.update({f"optimizer{i}/{pid}/{k}": v for k, v in values.items() if torch.is_tensor(v)})
    return tensors


@pytest.mark.parametrize("model, mode, when", [("dncnn", "in_save", 2), ("dncnn", "at_step", 6),
                                               ("ludvae", "at_step", 6)])
def test_kill_and_resume_is_bit_identical_to_an_uninterrupted_run(tiny_folders, model, mode, when):
    """Killed inside the 2nd write of last.ckpt (step 8: its .tmp is orphaned) or at step 6 between checkpoints
    (last.ckpt at step 4); resumed to step 10. Crops, flips, on-the-fly pairs, epochs of 4 batches, validation
    between checkpoints and the models' own random draws all take part; every weight and optimizer tensor
    must equal those of an uninterrupted run."""
    args = [a.format(data=tiny_folders) for a in MODELS[model]] + SCHEDULE
    reference = last_line(cli("train", *args))
    root = reference.parent
    before = set(root.iterdir())
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    killed = subprocess.run([sys.executable, str(HERE / "killed_training.py"), mode, str(when), *args],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run,) = set(root.iterdir()) - before
    checkpoints = run / "checkpoints"
    orphans = list(checkpoints.glob(".*.tmp"))
    assert bool(orphans) == (mode == "in_save")
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 4
    resumed = last_line(cli("train", *args, f"resume={run}"))
    assert resumed == run and not list(checkpoints.glob(".*.tmp"))
    assert json.loads((run / "summary.json").read_text())["global_step"] == 10
    expected, got = _all_tensors(reference / "checkpoints" / "last.ckpt"), _all_tensors(checkpoints / "last.ckpt")
    assert expected.keys() == got.keys() and len(expected) > 10
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, different[:5]


def test_random_states_survive_a_checkpoint_file(tmp_path):
    import random

    from degrade_lab.callbacks.random_state import collect_states, set_states

    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    torch.save(collect_states(), tmp_path / "states.pt")
    expected = (torch.rand(4), np.random.rand(4), random.random())
    torch.rand(9), np.random.rand(9), random.random()
    set_states(torch.load(tmp_path / "states.pt", weights_only=True))
    got = (torch.rand(4), np.random.rand(4), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_a_killed_synthesis_leaves_no_temporary_after_the_rerun(tiny_folders, tmp_path):
    """The temporaries of a killed run are the ones its lock file's tag names (a user's look-alike stays:
    tests/test_hostile_inputs.py)."""
    out = tmp_path / "pairs"
    args = ["degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}"]
    last_line(cli("synthesize", *args))
    orphan = out / "degraded" / ".s1.png.00112233aabbccdd-k2j4x9_q.tmp"
    orphan.write_bytes(b"half a png")
    (out / ".degrade_lab.lock").write_text(json.dumps({"pid": 999999, "temporaries": "00112233aabbccdd"}))
    (out / "degraded" / "s1.png").unlink()
    last_line(cli("synthesize", *args))
    assert not orphan.exists() and (out / "degraded" / "s1.png").is_file()


# ---- 6, 9: every failure named, exit 2 -------------------------------------------------------------------
def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    return path


def _failure(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr[-2000:])


def test_decompression_bombs_and_oversized_images_are_refused_before_decoding(tiny_folders, tmp_path):
    folder = tmp_path / "in"
    for i in range(3):
        save_rgb(folder / f"a{i}.png", smooth_image(np.random.default_rng(i), 16, 16))
    bomb = _png_header_only(folder / "z_bomb.png", 40000, 40000)
    out = tmp_path / "out"
    _failure(cli("synthesize", "degrader=awgn", f"input={folder}", f"output={out}"), str(bomb), "megapixels",
             "max_pixels=")
    assert not out.exists()  # checked up front: nothing written before the bad file was found
    # the limit is a setting of every task
    small = ["max_pixels=1000"]
    _failure(cli("synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}", *small),
             "s0.png", "above the limit")
    _failure(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=1", *small),
             "above the limit")
    _failure(cli("evaluate", "ckpt=identity", "data=folders", f"data.test={tiny_folders / 'test'}", *small),
             "above the limit")


def test_named_failures_of_synthesize_and_evaluate(tiny_folders, tmp_path):
    folder = tmp_path / "in"
    save_rgb(folder / "a.png", smooth_image(np.random.default_rng(0), 16, 16))
    save_rgb(folder / "tiny.png", np.zeros((3, 3, 3), np.uint8))
    for degrader in ("bicubic", "second_order"):
        _failure(cli("synthesize", f"degrader={degrader}", f"input={folder}", f"output={tmp_path / degrader}"),
                 "tiny.png", "3x3", "scale 4")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    _failure(cli("synthesize", "degrader=awgn", f"input={folder}", f"output={a_file}"), "is a file")
    _failure(cli("synthesize", "degrader=awgn", f"input={folder}", f"output={tmp_path / 'o'}", "samples=abc"),
             "samples='abc'", "integer")
    test = tmp_path / "test"
    save_rgb(test / "clean" / "one.png", np.zeros((1, 1, 3), np.uint8))
    save_rgb(test / "degraded" / "one.png", np.zeros((1, 1, 3), np.uint8))
    _failure(cli("evaluate", "ckpt=identity", "data=folders", f"data.test={test}"), "one.png", "1x1", "SSIM")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_named(tiny_folders, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    _failure(cli("synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}"),
             "cannot be written")


def test_named_failures_of_train(tiny_folders, tmp_path):
    _failure(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=abc"),
             "trainer.max_steps='abc'", "integer")
    _failure(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "data.batch_size=many"),
             "data.batch_size='many'")
    # resuming with another model stops before training, naming what changed
    run = _train(tiny_folders)
    _failure(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=4",
                 "model.net.channels=16", f"resume={run}"), "model.net.channels: 8 in the checkpoint, 16 now")
    # a mistyped resume path creates nothing
    missing = tmp_path / "no_such_run"
    _failure(cli("train", *TINY, f"resume={missing}"), "cannot resume", "does not exist")
    assert not missing.exists()
    # config errors exit 2 too
    result = cli("train", "model=no_such_model")
    assert result.returncode == 2 and "no_such_model" in result.stderr


def test_non_blind_and_estimating_restorers_on_real_pairs(tiny_folders):
    drunet = ["model=drunet", "model.net.channels=[4,8,8,8]", "model.net.blocks=1", "data=folders",
              "data.crop_size=16", "data.batch_size=2", "callbacks.progress.refresh_rate=0", "logger=csv",
              "trainer.max_steps=1", "model.val_lpips=null", f"data.paired={tiny_folders / 'paired'}"]
    _failure(cli("train", *drunet), "noise level", "model.noise_level=SIGMA")
    last_line(cli("train", *drunet, "model.noise_level=15", f"data.test={tiny_folders / 'test'}"))
    vdir = ["experiment=vdir_camera", "data=folders", f"data.paired={tiny_folders / 'paired'}", "data.crop_size=16",
            "data.batch_size=2", "trainer.max_steps=1", "model.estimation_weight=1", "model.val_lpips=null",
            "callbacks.progress.refresh_rate=0", "logger=csv", "hardware=cpu"]
    result = cli("train", *vdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "estimation term is off" in result.stdout + result.stderr


def test_metrics_json_is_strict_and_report_survives_an_infinite_psnr(tmp_path):
    test = tmp_path / "same"
    image = smooth_image(np.random.default_rng(0), 32, 32)
    for i in range(2):
        save_rgb(test / "clean" / f"i{i}.png", image)
        save_rgb(test / "degraded" / f"i{i}.png", image)
    run = last_line(cli("evaluate", "ckpt=identity", "data=folders", f"data.test={test}", "progress=false"))

    def reject(token):
        raise ValueError(f"non-standard JSON token {token}")

    metrics = json.loads((run / "metrics.json").read_text(), parse_constant=reject)
    assert metrics["test/psnr"] is None and metrics["non_finite"]["test/psnr"].startswith("inf")
    result = cli("report", f"same={run}", "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| same | inf |" in result.stdout and (tmp_path / "report" / "report.png").is_file()


# ---- 7, 8: 16 bits, the border default ---------------------------------------------------------------------
def _png16(path: Path, array: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (filter 0 rows), independent of any image library."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_16_bit_rgb_is_read_and_written_at_full_precision(tmp_path):
    from degrade_lab.utils.io import png_bytes, read_image, read_image_and_depth

    array = np.random.default_rng(0).integers(0, 65536, (20, 24, 3), dtype=np.uint16)
    array[0, 0] = [1, 2, 3]  # values that 8 bits cannot hold
    path = _png16(tmp_path / "in" / "photo.png", array)
    image, bits = read_image_and_depth(path)
    assert bits == 16
    assert torch.equal(image, torch.from_numpy(array.astype(np.float32) / 65535).permute(2, 0, 1))
    (tmp_path / "copy.png").write_bytes(png_bytes(image, 16))
    assert torch.equal(read_image(tmp_path / "copy.png"), image)
    # synthesize keeps the 16 bits (identity degrader: the outputs equal the input exactly)
    out = tmp_path / "out"
    last_line(cli("synthesize", "degrader=identity", f"input={tmp_path / 'in'}", f"output={out}"))
    for side in ("clean", "degraded"):
        assert torch.equal(read_image(out / side / "photo.png"), image)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["photo"]["bit_depth"] == 16
    last_line(cli("synthesize", "degrader=identity", f"input={tmp_path / 'in'}", f"output={tmp_path / 'o8'}",
                  "bit_depth=8"))
    eight = read_image(tmp_path / "o8" / "degraded" / "photo.png")
    assert torch.equal(eight, image.mul(255).round().div(255)) and not torch.equal(eight, image)


def test_denoising_is_scored_on_the_whole_image_by_default(tiny_folders):
    from degrade_lab.utils.io import read_image

    run = last_line(cli("evaluate", "ckpt=identity", "data=folders", f"data.test={tiny_folders / 'test'}",
                        "progress=false"))
    assert "border crop 0" in (run / "metrics.md").read_text()
    expected = []
    for name in ("v0", "v1"):  # PSNR over every pixel, computed here in numpy
        clean = read_image(tiny_folders / "test" / "clean" / f"{name}.png").numpy().astype(np.float64)
        noisy = read_image(tiny_folders / "test" / "degraded" / f"{name}.png").numpy().astype(np.float64)
        expected.append(10 * np.log10(1 / np.mean((clean - noisy) ** 2)))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["input/psnr"] == pytest.approx(np.mean(expected), abs=1e-4)
