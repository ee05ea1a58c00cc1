"""The Python API: load_restorer / Restorer.restore and load_degrader, on checkpoints trained here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import degrade_lab
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.train import train


def test_a_restorer_restores_tensors_batches_and_numpy_images_alike(dncnn_ckpt):
    restorer = degrade_lab.load_restorer(dncnn_ckpt, device="cpu")
    assert restorer.scale == 1 and not restorer.non_blind and "DnCNN" in repr(restorer)
    torch.manual_seed(0)
    x = torch.rand(3, 20, 28)
    with torch.no_grad():
        expected = restorer.module.net(x[None])[0].clamp(0, 1)  # the network itself, outside the API
    one = restorer.restore(x)
    assert one.shape == x.shape and torch.allclose(one, expected, atol=1e-6)
    batch = restorer(torch.stack([x, x.flip(-1)]))
    assert batch.shape == (2, 3, 20, 28) and torch.allclose(batch[0], expected, atol=1e-6)
    # numpy uint8 in, uint8 out: the tensor result rounded
    array = (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = restorer.restore(array)
    with torch.no_grad():
        exact = restorer.module.net(torch.from_numpy(array.astype(np.float32) / 255).permute(2, 0, 1)[None])
    assert out.dtype == np.uint8 and out.shape == array.shape
    assert np.array_equal(out, np.round(exact[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    # 16 bits stay 16 bits; grey comes back grey (the mean of the restored channels)
    assert restorer.restore(array.astype(np.uint16) * 257).dtype == np.uint16
    assert restorer.restore(array[..., 0]).shape == (20, 28)
    # tiles: a 3-layer network sees 3 pixels each side, a margin of 4 covers it
    assert torch.allclose(restorer.restore(x, tile=16, tile_margin=4, tile_multiple=1), one, atol=1e-6)
    ensembled = restorer.restore(x, self_ensemble=True)
    assert ensembled.shape == x.shape and not torch.allclose(ensembled, one)


def test_restore_names_the_mistakes(dncnn_ckpt, compose, tiny_folders, tmp_path):
    restorer = degrade_lab.load_restorer(dncnn_ckpt, device="cpu")
    with pytest.raises(UserInputError, match="blind restorer"):
        restorer.restore(torch.rand(3, 16, 16), noise_level=25)
    with pytest.raises(UserInputError, match="float tensor"):
        restorer.restore(torch.zeros(3, 16, 16, dtype=torch.uint8))
    with pytest.raises(UserInputError, match="tile=8"):
        restorer.restore(torch.rand(3, 16, 16), tile=8)
    with pytest.raises(UserInputError, match="does not exist"):
        degrade_lab.load_restorer(tmp_path / "missing.ckpt")
    # a degradation model is not a restorer, and a restorer is not a degrader
    ludvae = ["experiment=ludvae_cpu", "model.net.channels=8", "model.net.latent_channels=4", "model.net.levels=2",
              "data=folders", "data.crop_size=16", "data.batch_size=4", "data.num_workers=0", "data.val_crop=null",
              "trainer.max_steps=1", "trainer.val_check_interval=1", "callbacks.progress.refresh_rate=0",
              "hardware=cpu", f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}"]
    train(compose("train", ludvae, run_dir=tmp_path / "ludvae"))
    ckpt = tmp_path / "ludvae" / "checkpoints" / "last.ckpt"
    with pytest.raises(UserInputError, match="synthesize degrader=ludvae"):
        degrade_lab.load_restorer(ckpt)
    with pytest.raises(UserInputError, match="load_restorer"):
        degrade_lab.load_degrader(dncnn_ckpt)
    # ... and the degradation model as a degrader, its options as keywords
    degrader = degrade_lab.load_degrader(ckpt, device="cpu", noise_level=0.0)
    clean = torch.rand(2, 3, 16, 16)
    first = degrader(clean, torch.Generator().manual_seed(3))
    assert first.shape == clean.shape
    assert torch.equal(first, degrader(clean, torch.Generator().manual_seed(3)))
    with pytest.raises(UserInputError, match="no option sigma"):
        degrade_lab.load_degrader(ckpt, sigma=3)


def test_a_non_blind_restorer_takes_the_noise_level(compose, tiny_folders, tmp_path):
    train(compose("train", ["model=ffdnet", "model.net.channels=8", "model.net.depth=3", "data=folders",
                            f"data.source={tiny_folders / 'source'}", "data.degrader=awgn", "data.crop_size=16",
                            "data.batch_size=2", "data.num_workers=0", "trainer.max_steps=1", "logger=csv",
                            "callbacks.progress.refresh_rate=0", "model.val_lpips=null", "hardware=cpu"],
                  run_dir=tmp_path / "ffdnet"))
    restorer = degrade_lab.load_restorer(tmp_path / "ffdnet" / "checkpoints" / "last.ckpt", device="cpu")
    assert restorer.non_blind
    x = torch.rand(3, 16, 16)
    with pytest.raises(UserInputError, match="noise_level=SIGMA"):
        restorer.restore(x)
    with torch.no_grad():
        expected = restorer.module.net(x[None], 25.0)[0].clamp(0, 1)
    assert torch.allclose(restorer.restore(x, noise_level=25), expected, atol=1e-6)


def test_a_hand_made_degrader_by_name_with_its_fields():
    degrader = degrade_lab.load_degrader("awgn", device="cpu", sigma=10, clip=False)
    clean = torch.full((4, 3, 64, 64), 0.5)
    noise = degrader(clean, torch.Generator().manual_seed(0)) - clean
    assert abs(float(noise.std()) * 255 - 10) < 0.2  # sigma 10 on the 0-255 scale
    with pytest.raises(UserInputError, match="unknown degrader"):
        degrade_lab.load_degrader("no_such_degrader")
    with pytest.raises(UserInputError, match="no option quality"):
        degrade_lab.load_degrader("awgn", quality=3)
