"""LUD-VAE training objective, the learned degrader (C2N/N2C, tiling, seeds) and its tasks end to end."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from degrade_lab.archs.ludvae import LUDVAE
from degrade_lab.data.normalization import ColorNormalization
from degrade_lab.degradations.build import build_degrader
from degrade_lab.degradations.ludvae import LUDVAEDegrader
from degrade_lab.errors import UserInputError
from degrade_lab.lit.ludvae import LUDVAEModule
from degrade_lab.tasks.evaluate import evaluate
from degrade_lab.tasks.synthesize import synthesize
from degrade_lab.tasks.train import train
from degrade_lab.utils.checkpoint import load_model
from degrade_lab.utils.io import read_image, write_png
from degrade_lab.utils.noise_field import normal_field


def tiny_module(**kwargs):
    torch.manual_seed(0)
    net = LUDVAE(channels=8, latent_channels=4, levels=kwargs.pop("levels", 2))
    return LUDVAEModule(net, optimizer=lambda params: torch.optim.Adam(params, lr=2e-3), **kwargs)


def test_kl_weight_rises_linearly_then_stays():
    module = tiny_module(kl_weight=1e-4, kl_anneal_steps=10_000)
    assert module.current_kl_weight(0) == 0
    assert module.current_kl_weight(5_000) == pytest.approx(5e-5)
    assert module.current_kl_weight(10_000) == module.current_kl_weight(50_000) == pytest.approx(1e-4)


def test_the_loss_is_elbo_x_plus_elbo_y_with_no_paired_term():
    module = tiny_module(kl_anneal_steps=0, kl_weight=0.5, loss_balance="per_batch")
    x, y = torch.rand(2, 3, 16, 16), torch.rand(3, 3, 16, 16)
    torch.manual_seed(1)
    both = module.loss_terms({"clean": x, "degraded": y})
    torch.manual_seed(1)
    alone_x = module.domain_terms(x, degraded=False)
    alone_y = module.domain_terms(y, degraded=True)
    assert float(alone_x["kl"]) == 0  # the clean domain has no latent, hence no KL
    assert torch.allclose(both["loss"], alone_x["recon"] + alone_y["recon"] + 0.5 * alone_y["kl"])
    # ELBO_y does not see the clean images at all (same random stream, different x)
    other_x = torch.rand(2, 3, 16, 16)
    torch.manual_seed(1)
    other = module.loss_terms({"clean": other_x, "degraded": y})
    assert torch.allclose(other["recon_degraded"], both["recon_degraded"])
    assert torch.allclose(other["kl"], both["kl"])


def _authors_mixed_batch_loss(module, x, y, kl_weight):
    """The authors' loss on ONE batch holding both domains (seed-reference 1.2): MSE over every image of the
    batch, plus the KL summed over the degraded (label-1) images and divided by their elements only."""
    images = torch.cat([x, y])
    labels = torch.cat([torch.zeros(len(x)), torch.ones(len(y))])
    recon, kls = module.net(images, images, labels)
    return F.mse_loss(recon, images) + kl_weight * sum(kl.sum() for kl in kls) / y.numel()


@pytest.mark.parametrize("balance, same", [("mixed_batch", True), ("per_batch", False)])
def test_mixed_batch_balance_is_the_authors_loss_over_one_clean_and_one_degraded_batch(monkeypatch, balance, same):
    # no pre-noise and latent samples at their means, so both ways of batching see identical inputs
    monkeypatch.setattr(torch, "randn", lambda shape, **kw: torch.zeros(shape, dtype=kw.get("dtype")))
    module = tiny_module(kl_anneal_steps=0, kl_weight=0.3, noise_level_clean=0.0, noise_level_degraded=0.0,
                         loss_balance=balance)
    x, y = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    ours = module.loss_terms({"clean": x})["loss"] + module.loss_terms({"degraded": y})["loss"]
    authors = _authors_mixed_batch_loss(module, x, y, 0.3)
    assert torch.allclose(ours, authors, rtol=1e-5) is same
    with pytest.raises(UserInputError, match="loss_balance"):
        tiny_module(loss_balance="half")


def test_a_clean_only_batch_trains_no_degradation_parameter():
    module = tiny_module()
    module.loss_terms({"clean": torch.rand(2, 3, 16, 16)})["loss"].backward()
    for name, parameter in module.net.named_parameters():
        if name.startswith(("noise_", "posteriors", "priors", "merge_noise")):
            assert parameter.grad is None or float(parameter.grad.abs().max()) == 0, name


@pytest.mark.parametrize("operator, scale", [(None, 1), ("bicubic", 4), ("lowlight", 1)])
def test_shapes_for_the_three_tasks(operator, scale):
    module = tiny_module(clean_operator=operator)
    assert module.scale == scale
    clean, degraded = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32 // scale, 32 // scale)
    terms = module.loss_terms({"clean": clean, "degraded": degraded})
    assert terms["loss"].ndim == 0 and torch.isfinite(terms["loss"])
    degrader = LUDVAEDegrader(module=module)
    out = degrader(clean, torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 32 // scale, 32 // scale) and degrader.scale == scale
    assert 0 <= float(out.min()) and float(out.max()) <= 1


def test_a_tiny_model_lowers_its_loss():
    module = tiny_module(kl_anneal_steps=0, kl_weight=1e-3)
    optimizer = module.optimizer_factory(module.parameters())
    torch.manual_seed(0)
    clean = torch.rand(4, 3, 16, 16)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    losses = []
    for step in range(80):
        batch = {"clean": clean} if step % 2 == 0 else {"degraded": noisy}
        loss = module.loss_terms(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])


def test_a_non_finite_loss_skips_the_step_and_counts_it():
    module = tiny_module()
    with torch.no_grad():
        module.net.out.bias.fill_(float("nan"))
    module.log = lambda *args, **kwargs: None
    assert module.training_step({"clean": torch.rand(2, 3, 16, 16)}, 0) is None
    assert module.skipped_steps == 1


def test_synthesis_is_seeded_and_stochastic():
    degrader = LUDVAEDegrader(module=tiny_module())
    clean = torch.rand(2, 3, 24, 24)
    a = degrader(clean, torch.Generator().manual_seed(3))
    b = degrader(clean, torch.Generator().manual_seed(3))
    c = degrader(clean, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert float((a - c).abs().mean()) > 1e-4
    # two images of one batch get different noise even when they are the same image
    same = degrader(clean[:1].expand(2, -1, -1, -1), torch.Generator().manual_seed(3))
    assert float((same[0] - same[1]).abs().mean()) > 1e-4


def test_tiled_synthesis_equals_whole_image_synthesis():
    module = tiny_module(levels=2)
    clean = torch.rand(1, 3, 70, 53)
    whole = LUDVAEDegrader(module=module, tile_size=0)(clean, torch.Generator().manual_seed(5))
    tiled = LUDVAEDegrader(module=module, tile_size=16)(clean, torch.Generator().manual_seed(5))
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_noise_field_windows_agree_with_the_whole_plane():
    plane = normal_field([7, 8], field=2, channels=3, top=0, left=0, height=150, width=140, block=32)
    window = normal_field([7, 8], field=2, channels=3, top=37, left=61, height=50, width=70, block=32)
    assert torch.equal(plane[..., 37:87, 61:131], window)
    other = normal_field([7, 8], field=3, channels=3, top=0, left=0, height=150, width=140, block=32)
    assert abs(float(plane.std()) - 1) < 0.02 and float((plane - other).abs().mean()) > 0.5


def test_temperature_and_direction_options():
    module = tiny_module()
    clean = torch.rand(1, 3, 16, 16)
    # temperature multiplies the whole latent sample: at 0 every latent is zero, which is exactly the
    # latents-off decoding of N2C (same pre-noise, same seed); scaling only the std keeps the prior means
    off = LUDVAEDegrader(module=module, direction="n2c", noise_level=20)(clean, torch.Generator().manual_seed(0))
    plain = {"residual_transfer": False, "noise_level": 20}  # the decoder's output as it is (the paper)
    cold = LUDVAEDegrader(module=module, temperature=0.0, **plain)(clean, torch.Generator().manual_seed(0))
    cold_std = LUDVAEDegrader(module=module, temperature=0.0, temperature_mode="std", **plain)(
        clean, torch.Generator().manual_seed(0))
    warm = LUDVAEDegrader(module=module, temperature=1.0, **plain)(clean, torch.Generator().manual_seed(0))
    assert torch.allclose(cold, off, atol=1e-6)
    # with the residual transfer (the default) no latent means no degradation: the clean image itself
    transferred = LUDVAEDegrader(module=module, temperature=0.0, noise_level=20)(clean, torch.Generator().manual_seed(0))
    torch.testing.assert_close(transferred, clean, atol=1e-6, rtol=0)
    assert float((cold_std - off).abs().max()) > 1e-4 and float((warm - off).abs().max()) > 1e-4
    n2c = LUDVAEDegrader(module=module, direction="n2c")
    assert n2c.produces == "clean" and n2c.scale == 1 and n2c.noise_level == (10.0, 10.0)
    ranged = LUDVAEDegrader(module=module, noise_level=[30, 70], temperature=[1, 3], temperature_mode="std")
    assert ranged(clean, torch.Generator().manual_seed(0)).shape == clean.shape
    with pytest.raises(UserInputError, match="direction"):
        LUDVAEDegrader(module=module, direction="sideways")
    with pytest.raises(UserInputError, match="needs a checkpoint"):
        LUDVAEDegrader()


def test_validation_scores_normalised_runs_on_the_real_images_scale(monkeypatch):
    """AIM19: the network works in the clean domain's colour statistics; validation must map its degraded rendering
    back (not the clean one). Both renderings are replaced by a constant 0.3 image; with equal stds the inverse
    normalisation is a shift by mean_from - mean_to = 0.4, so the validated synthetic image (the residual transfer,
    clean + N^-1(0.3) - 0.3) must be clean + 0.4 (the clean image itself without normalisation)."""
    monkeypatch.setattr(LUDVAE, "synthesize", lambda net, image, *rest, with_clean=False, **kw:
                        torch.full_like(image, 0.3).repeat(1, 2 if with_clean else 1, 1, 1))
    clean = torch.rand(1, 3, 16, 16) * 0.3
    batch = {"clean": clean, "degraded": torch.rand(1, 3, 16, 16)}
    for normalization, shift in ((None, 0.0), ({"mean_from": [153] * 3, "std_from": [50] * 3,
                                                "mean_to": [51] * 3, "std_to": [50] * 3}, 0.4)):
        module = tiny_module(color_normalization=normalization, grid_samples=0).eval()
        module.on_validation_epoch_start()
        with torch.inference_mode():
            synthetic = module.validation_step(batch, 0)["grid"][2]
        assert torch.allclose(synthetic, clean + shift, atol=0.51 / 255)


def test_color_normalization_round_trip():
    norm = ColorNormalization([120.96, 115.84, 104.92], [61.84, 59.80, 65.43], [114.69, 111.67, 103.26],
                              [70.63, 67.03, 72.96])
    image = torch.rand(2, 3, 8, 8) * 0.6 + 0.2
    assert torch.allclose(norm.inverse(norm(image)), image, atol=1e-6)
    assert not torch.allclose(norm(image), image, atol=1e-3)


# ---- the tasks end to end ------------------------------------------------------------------------
TINY = ["experiment=ludvae_cpu", "model.net.channels=8", "model.net.latent_channels=4", "model.net.levels=2",
        "data=folders", "data.crop_size=16", "data.batch_size=4", "data.num_workers=0", "data.val_crop=null",
        "model.kl_anneal_steps=4", "trainer.max_steps=6", "trainer.val_check_interval=3",
        "callbacks.progress.refresh_rate=0", "hardware=cpu"]


@pytest.fixture
def ludvae_run(compose, tiny_folders):
    cfg = compose("train", [*TINY, f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}",
                            f"data.test={tiny_folders / 'test'}"])
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics


def test_auto_pre_noise_levels_come_from_the_target_folder(compose, tiny_folders, tmp_path):
    """model.noise_level_*=auto: the target folder's noise (N(0, 20^2) on smooth images) is estimated with no clean
    image, and the rule sigma_x^2 = sigma_y^2 + noise^2 with sigma_y = noise / sqrt(3) fills the run's config."""
    given = {"noise_level_clean": "auto", "noise_level_degraded": 10.0}
    assert LUDVAEModule.settings_from_noise(given, 15.0) == {"noise_level_clean": 18.03}  # sqrt(10^2 + 15^2)
    both = LUDVAEModule.settings_from_noise({"noise_level_clean": "auto", "noise_level_degraded": "auto"}, 30.0)
    assert both == {"noise_level_clean": 34.64, "noise_level_degraded": 17.32}
    generator = torch.Generator().manual_seed(0)
    for i in range(3):  # gentle gradients with N(0, 20^2), unclipped by construction, 8-bit
        ramp = torch.linspace(0.3, 0.7, 96)
        clean = torch.stack([ramp[None, :].expand(96, 96), ramp[:, None].expand(96, 96), torch.full((96, 96), 0.5)])
        write_png(tmp_path / "target" / f"t{i}.png", clean + torch.randn(clean.shape, generator=generator) * 20 / 255)
    cfg = compose("train", [*TINY, "trainer.max_steps=1", "trainer.val_check_interval=1",
                            "model.noise_level_clean=auto", "model.noise_level_degraded=auto",
                            f"data.source={tiny_folders / 'source'}", f"data.target={tmp_path / 'target'}"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    saved = OmegaConf.load(run / "config.yaml").model
    assert saved.noise_level_degraded == pytest.approx(20 / math.sqrt(3), rel=0.1)
    assert saved.noise_level_clean == pytest.approx(2 * saved.noise_level_degraded, abs=0.02)
    assert json.loads((run / "noise_estimate.json").read_text())["images"] == 3
    module, _ = load_model(run / "checkpoints" / "last.ckpt")
    assert module.noise_level_clean == saved.noise_level_clean
    with pytest.raises(UserInputError, match="data.target"):
        train(compose("train", [*TINY, "model.noise_level_clean=auto", "data=folders",
                                f"data.source={tiny_folders / 'source'}", "data.target=null"]))
    # a split paired set (data.split_from, SeNM-VAE's setting) has no target folder: the degraded images the model
    # trains on (the split's pairs and degraded-only side) are read instead
    generator = torch.Generator().manual_seed(1)
    for i in range(5):
        ramp = torch.linspace(0.3, 0.7, 96)
        clean = torch.stack([ramp[None, :].expand(96, 96), ramp[:, None].expand(96, 96), torch.full((96, 96), 0.5)])
        write_png(tmp_path / "pairs" / "clean" / f"p{i}.png", clean)
        write_png(tmp_path / "pairs" / "degraded" / f"p{i}.png",
                  clean + torch.randn(clean.shape, generator=generator) * 20 / 255)
    cfg = compose("train", [*TINY, "trainer.max_steps=1", "trainer.val_check_interval=1",
                            "model.noise_level_clean=auto", "model.noise_level_degraded=auto", "data.source=null",
                            "data.target=null", f"data.split_from={tmp_path / 'pairs'}", "data.num_paired=1"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert json.loads((run / "noise_estimate.json").read_text())["images"] == 3  # 1 pair + 2 degraded-only of 4
    assert OmegaConf.load(run / "config.yaml").model.noise_level_degraded == pytest.approx(20 / math.sqrt(3), rel=0.1)
    # ... and training ended by calibrating on the split's two domains, as the model saw them (no pair used)
    calibrated = json.loads((run / "calibration.json").read_text())["last"]
    assert calibrated["source"] == f"3 images under {tmp_path / 'pairs' / 'clean'}"
    assert calibrated["target"] == f"3 images under {tmp_path / 'pairs' / 'degraded'}"
    assert calibrated["noise_std_target"] == pytest.approx(20, rel=0.1)
    assert load_model(run / "checkpoints" / "last.ckpt")[0].calibration["value"] == calibrated["value"]


def test_train_synthesize_evaluate_a_ludvae(ludvae_run, compose, tiny_folders, tmp_path):
    run, metrics = ludvae_run
    assert {"val/akld", "val/kld", "val/akld_best", "train/kl"} <= set(metrics)
    ckpt = run / "checkpoints" / "last.ckpt"
    assert (run / "checkpoints" / "best.ckpt").is_file()  # tracked by val/akld
    # synthesize: C2N pairs, seeded
    outs = []
    for name in ("a", "b"):
        cfg = compose("synthesize", ["degrader=ludvae", f"degrader.ckpt={ckpt}", f"input={tiny_folders / 'source'}",
                                     f"output={tmp_path / name}", "seed=3", "progress=false"])
        synthesize(cfg)
        outs.append(sorted((tmp_path / name / "degraded").glob("*.png")))
    assert len(outs[0]) == 4 and [p.read_bytes() for p in outs[0]] == [p.read_bytes() for p in outs[1]]
    # training ended by calibrating the checkpoints to the target folder; synthesis took the stored pre-noise level
    calibration = load_model(ckpt)[0].calibration
    assert calibration["option"] == "noise_level" and metrics["calibrated_noise_level_last"] == calibration["value"]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    levels = [f["parameters"]["noise_level"] for f in manifest["files"].values()]
    assert levels == pytest.approx([calibration["value"]] * len(levels), rel=1e-6)
    # N2C: the input becomes the degraded side
    cfg = compose("synthesize", ["degrader=ludvae", f"degrader.ckpt={ckpt}", "degrader.direction=n2c",
                                 f"input={tiny_folders / 'target'}", f"output={tmp_path / 'n2c'}", "progress=false"])
    synthesize(cfg)
    assert len(list((tmp_path / "n2c" / "clean").glob("*.png"))) == 4
    assert torch.equal(read_image(tmp_path / "n2c" / "degraded" / "t0.png"), read_image(tiny_folders / "target" / "t0.png"))
    # evaluate the degrader against the real pairs
    cfg = compose("evaluate", ["degrader=ludvae", f"degrader.ckpt={ckpt}", "data=folders",
                               f"data.test={tiny_folders / 'test'}", "progress=false", "metrics.mmd_crop=32"])
    result = evaluate(cfg)
    for key in ("degradation/kld", "degradation/akld", "degradation/psnr", "input/psnr", "degradation/mmd",
                "degradation/residual_mean_r", "degradation/residual_lowpass_std", "input/residual_highpass_std"):
        assert key in result and result[key] == result[key]  # present and not NaN
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "metrics.json").read_text())["test/images"] == 2
    assert (out / "degradation.png").stat().st_size > 10_000


def test_a_checkpoint_alone_rebuilds_the_degrader(ludvae_run):
    run, _ = ludvae_run
    ckpt = run / "checkpoints" / "last.ckpt"
    from_name = build_degrader("ludvae", ckpt=str(ckpt))
    from_path = build_degrader(str(ckpt))
    clean = torch.rand(1, 3, 20, 20)
    assert torch.equal(from_name(clean, torch.Generator().manual_seed(1)),
                       from_path(clean, torch.Generator().manual_seed(1)))


def test_on_the_fly_pairs_from_a_ludvae_checkpoint(ludvae_run, compose, tiny_folders):
    run, _ = ludvae_run
    cfg = compose("train", ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders",
                            f"data.source={tiny_folders / 'source'}", f"data.degrader={run}/checkpoints/last.ckpt",
                            f"data.test={tiny_folders / 'test'}", "data.crop_size=16", "data.batch_size=2",
                            "data.num_workers=0", "trainer.max_steps=2", "trainer.val_check_interval=2",
                            "callbacks.progress.refresh_rate=0", "hardware=cpu"])
    assert "val/psnr" in train(cfg)


def test_evaluate_judges_a_hand_made_degrader(compose, tiny_folders):
    cfg = compose("evaluate", ["degrader=awgn", "degrader.sigma=20", "data=folders",
                               f"data.test={tiny_folders / 'test'}", "progress=false"])
    result = evaluate(cfg)  # the test pairs were made with AWGN sigma 20: nearly perfect
    assert result["degradation/kld"] < 0.05 and "degradation/mmd" not in result
    assert abs(result["degradation/noise_std"] - result["input/noise_std"]) < 1.0


def test_a_restorer_checkpoint_is_refused_as_a_ludvae(compose, tiny_folders):
    from test_tasks import tiny_train

    cfg, _ = tiny_train(compose, tiny_folders)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    with pytest.raises(UserInputError, match="RestorationModule.*LUDVAEModule"):
        LUDVAEDegrader(ckpt=ckpt)
    with pytest.raises(UserInputError, match="not a degradation model"):
        build_degrader(ckpt)


def test_wrapping_a_training_module_leaves_it_trainable():
    module = tiny_module()
    LUDVAEDegrader(module=module)
    assert all(p.requires_grad for p in module.parameters())


def test_validation_grid_shows_samples_at_two_temperatures():
    module = tiny_module(grid_temperatures=(1.0, 0.5), grid_samples=2).eval()
    module.on_validation_epoch_start()
    batch = {"clean": torch.rand(2, 3, 16, 16), "degraded": torch.rand(2, 3, 16, 16)}
    with torch.no_grad():
        first = module.validation_step(batch, 0)
        second = module.validation_step(batch, 1)
    assert len(first["grid"]) == 3 + 4 and len(second["grid"]) == 3  # extra samples for the first row only
    assert first["caption"].endswith("T=1 | T=1 | T=0.5 | T=0.5")
    samples = torch.cat(first["grid"][3:])
    assert samples.shape == (4, 3, 16, 16) and not torch.equal(samples[0], samples[1])  # distinct samples
