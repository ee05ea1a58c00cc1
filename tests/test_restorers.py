"""The restorer LightningModules: VDIR's objective, the GAN steps of VDIR and ESRGAN, EMA, DRUNet's
noise level, validation pairs made by a degrader, and a short training run of every restorer config."""

from __future__ import annotations

import math

import pytest
import torch

from degrade_lab.archs.discriminators import PatchDiscriminator, VGGStyleDiscriminator
from degrade_lab.archs.rrdbnet import RRDBNet
from degrade_lab.archs.vdir import VDIR
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


def test_esrgan_without_perceptual_weights_names_the_way_out(tmp_path, monkeypatch):
    from degrade_lab.losses.perceptual import VGGPerceptualLoss
    from degrade_lab.weights import MissingWeightsError

    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(MissingWeightsError, match="perceptual_weight=0"):
        ESRGANModule(RRDBNet(scale=2, features=8, blocks=1, growth=4), VGGStyleDiscriminator(features=8, input_size=32),
                     perceptual=VGGPerceptualLoss, perceptual_weight=1.0, scale=2)


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
