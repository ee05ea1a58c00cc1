"""degrade-lab restore: a folder restored at full size with the same relative names, 16 bits kept, resumable,
with a manifest; the bad inputs named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import degrade_lab
from conftest import save_rgb, smooth_image
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.restore import restore
from degrade_lab.tasks.train import train
from degrade_lab.utils.io import read_image_and_depth, write_png


@pytest.fixture
def photos(tmp_path) -> Path:
    """Two 8-bit PNGs (one in a subfolder), a JPEG and a 16-bit PNG."""
    rng = np.random.default_rng(1)
    root = tmp_path / "photos"
    save_rgb(root / "a.png", smooth_image(rng, 40, 48))
    save_rgb(root / "trip" / "b.png", smooth_image(rng, 33, 41))
    from PIL import Image

    Image.fromarray(smooth_image(rng, 32, 32)).save(root / "c.jpg", quality=80)
    write_png(root / "deep.png", torch.rand(3, 24, 24), bits=16)
    return root


def run(compose, *overrides):
    return restore(compose("restore", [*overrides, "progress=false", "precision=32"]))


def test_restore_writes_every_image_as_the_api_restores_it_and_resumes(compose, dncnn_ckpt, photos, tmp_path):
    out = tmp_path / "out"
    summary = run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}")
    assert summary["restored"] == summary["restored_now"] == 4 and summary["failed"] == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a.png", "c.png", "deep.png", "trip/b.png"]
    restorer = degrade_lab.load_restorer(dncnn_ckpt, device="cpu")
    for name, source in (("a.png", "a.png"), ("trip/b.png", "trip/b.png"), ("deep.png", "deep.png")):
        image, bits = read_image_and_depth(photos / source)
        result, out_bits = read_image_and_depth(out / name)
        assert out_bits == bits  # 16-bit in, 16-bit out
        expected = restorer.restore(image)
        assert result.shape == image.shape
        assert torch.allclose(result, expected, atol=0.51 / (2**bits - 1) + 1e-6)  # the rounding of the PNG
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"a.png", "c.png", "deep.png", "trip/b.png"}
    assert manifest["files"]["trip/b.png"]["size"] == [33, 41] and manifest["files"]["deep.png"]["bits"] == 16
    assert manifest["settings"]["ckpt"] == str(dncnn_ckpt.resolve())
    # a rerun restores nothing; a killed run (one output missing, a temporary left) completes only the rest
    assert run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}")["restored_now"] == 0
    before = (out / "a.png").stat().st_mtime_ns
    (out / "trip" / "b.png").unlink()
    orphan = out / "trip" / ".b.png.0123456789abcdef-abcdefgh.tmp"  # named by the killed run's tag (its lock file)
    orphan.write_bytes(b"half")
    (out / ".degrade_lab.lock").write_text(json.dumps({"pid": 999999, "temporaries": "0123456789abcdef"}))
    again = run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}")
    assert again["restored_now"] == 1 and (out / "trip" / "b.png").is_file()
    assert (out / "a.png").stat().st_mtime_ns == before and not orphan.exists()
    with pytest.raises(UserInputError, match="other settings"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}", "self_ensemble=true")


def test_tiles_are_chosen_said_and_retried_when_memory_runs_out(compose, dncnn_ckpt, photos, tmp_path, monkeypatch,
                                                                caplog):
    import degrade_lab.api as api

    whole = tmp_path / "whole"
    run(compose, f"ckpt={dncnn_ckpt}", f"input={photos / 'a.png'}", f"output={whole}", "tile=0")
    monkeypatch.setattr(api, "AUTO_TILE_PIXELS", 1000)  # a 40 x 48 image is "large"
    monkeypatch.setattr(api, "AUTO_TILE", 16)
    tiles = tmp_path / "tiles"
    with caplog.at_level("INFO"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos / 'a.png'}", f"output={tiles}", "tile_multiple=1")
    assert "restored in tiles of 16 px" in caplog.text
    assert json.loads((tiles / "manifest.json").read_text())["files"]["a.png"]["tile"] == 16
    # the receptive field (3 px each side) lies within the margin: the tiles join without a seam
    assert torch.allclose(read_image_and_depth(tiles / "a.png")[0], read_image_and_depth(whole / "a.png")[0],
                          atol=1.01 / 255)
    # out of memory on the whole image: retried in tiles
    real = api.Restorer.restore_batch

    def no_memory_when_whole(self, batch, tile=None, **options):
        if not tile:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
        return real(self, batch, tile=tile, **options)

    monkeypatch.setattr(api.Restorer, "restore_batch", no_memory_when_whole)
    retried = tmp_path / "retried"
    with caplog.at_level("WARNING"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos / 'a.png'}", f"output={retried}", "tile=0")
    assert "ran out of memory whole: retrying in tiles of 16 px" in caplog.text
    assert json.loads((retried / "manifest.json").read_text())["files"]["a.png"]["tile"] == 16


def test_bad_inputs_are_named(compose, dncnn_ckpt, photos, tmp_path, tiny_folders):
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no images"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={tmp_path / 'empty'}", f"output={out}")
    with pytest.raises(UserInputError, match="outputs must never overlap inputs"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={photos}")
    with pytest.raises(UserInputError, match="blind restorer"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}", "noise_level=25")
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(UserInputError, match="broken.png"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}")
    assert not list(out.rglob("*.png"))  # stopped before writing anything
    summary = run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={out}", "skip_bad=true")
    assert summary["restored"] == 4 and summary["failed"] == 1
    assert "broken.png" in json.loads((out / "manifest.json").read_text())["failed"]
    (photos / "a.jpg").write_bytes((photos / "c.jpg").read_bytes())
    with pytest.raises(UserInputError, match="both be written as 'a.png'"):
        run(compose, f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={tmp_path / 'other'}")


def test_the_cli_refuses_a_degradation_model(tiny_folders, tmp_path):
    """End to end through the command line: a LUD-VAE checkpoint given to restore says to use synthesize."""
    env_run = [sys.executable, "-m", "degrade_lab.cli"]
    ludvae = ["experiment=ludvae_cpu", "model.net.channels=8", "model.net.latent_channels=4", "model.net.levels=2",
              "data=folders", "data.crop_size=16", "data.batch_size=4", "data.num_workers=0", "data.val_crop=null",
              "trainer.max_steps=1", "trainer.val_check_interval=1", "callbacks.progress.refresh_rate=0",
              "hardware=cpu", f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}",
              f"hydra.run.dir={tmp_path / 'ludvae'}"]
    trained = subprocess.run([*env_run, "train", *ludvae], capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = subprocess.run([*env_run, "restore", f"ckpt={tmp_path / 'ludvae' / 'checkpoints' / 'last.ckpt'}",
                             f"input={tiny_folders / 'test' / 'degraded'}", f"output={tmp_path / 'out'}"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "degrade-lab restore: error:" in result.stderr and "synthesize degrader=ludvae" in result.stderr


def test_a_sampling_restorer_writes_the_same_images_on_every_run(compose, tiny_folders, photos, tmp_path):
    """VDIR draws its latent at inference: each image is seeded by (seed, name), so two runs (or a resumed one)
    agree, and another seed differs."""
    train(compose("train", ["model=vdir", "data=folders", f"data.source={tiny_folders / 'source'}",
                            "data.degrader={_target_:degrade_lab.degradations.noise.AWGN,sigma:[5,70]}",
                            "model.net.features=8", "model.net.groups=1", "model.net.blocks=1",
                            "model.discriminator.widths=[8,8,8,8,8]", "data.crop_size=32", "data.batch_size=2",
                            "data.num_workers=0", "trainer.max_steps=1", "logger=csv", "model.val_lpips=null",
                            "callbacks.progress.refresh_rate=0", "hardware=cpu"], run_dir=tmp_path / "vdir"))
    ckpt = tmp_path / "vdir" / "checkpoints" / "last.ckpt"
    assert degrade_lab.load_restorer(ckpt).module.inference_sample  # the paper's one random sample of c
    for out, seed in (("first", 0), ("second", 0), ("other", 1)):
        run(compose, f"ckpt={ckpt}", f"input={photos / 'trip'}", f"output={tmp_path / out}", f"seed={seed}")
    first, second, other = ((tmp_path / out / "b.png").read_bytes() for out in ("first", "second", "other"))
    assert first == second and first != other
