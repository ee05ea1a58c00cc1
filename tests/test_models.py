"""Networks, metrics and the restoration LightningModule."""

import pytest
import torch
from torch import nn

from degrade_lab.archs.dncnn import DnCNN
from degrade_lab.lit.base import instantiate_model
from degrade_lab.lit.restoration import RestorationModule
from degrade_lab.metrics import PSNR, SSIM, psnr, ssim
from degrade_lab.metrics.image_quality import rgb_to_y
from degrade_lab.paths import config_dir
from degrade_lab.utils.runs import count_parameters


def test_dncnn_parameter_counts_at_paper_settings():
    """KAIR's colour DnCNN, counted layer by layer: a 3x3 conv 3 -> 64 with bias, (depth - 2) blocks of a
    3x3 conv 64 -> 64 with bias and BatchNorm (scale and shift), a 3x3 conv 64 -> 3 with bias."""
    def formula(depth, channels=64, colours=3):
        first = colours * channels * 9 + channels
        middle = (depth - 2) * (channels * channels * 9 + channels + 2 * channels)
        last = channels * colours * 9 + colours
        return first + middle + last

    assert formula(17) == 559_363  # KAIR's released count
    assert count_parameters(DnCNN())["total"] == formula(17)
    assert count_parameters(DnCNN(depth=20))["total"] == formula(20)  # VDIR Table II's 20-layer DnCNN (~0.67 M)


def test_dncnn_is_residual_and_keeps_shape():
    net = DnCNN(channels=8, depth=3)
    nn.init.zeros_(net.body[-1].weight)
    nn.init.zeros_(net.body[-1].bias)
    x = torch.rand(2, 3, 17, 23)
    assert torch.equal(net(x), x)  # zero noise prediction returns the input


def test_psnr_known_values_and_identity():
    clean = torch.full((2, 3, 8, 8), 0.5)
    noisy = clean + 0.1  # MSE 0.01 -> 20 dB
    assert torch.allclose(psnr(noisy, clean), torch.tensor([20.0, 20.0]), atol=1e-4)
    assert torch.isinf(psnr(clean, clean)).all()
    bordered = clean.clone()
    bordered[..., :2, :] = 0  # only the border is wrong
    assert torch.isinf(psnr(bordered, clean, crop_border=2)).all()
    assert psnr(bordered, clean).isfinite().all()


def test_y_channel_is_matlab_rgb2ycbcr():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert float(rgb_to_y(white)) * 255 == pytest.approx(235.0, abs=1e-3)
    assert float(rgb_to_y(black)) * 255 == pytest.approx(16.0, abs=1e-6)


def test_ssim_identity_and_monotone_in_noise():
    torch.manual_seed(0)
    clean = torch.rand(1, 3, 32, 32)
    values = [float(ssim((clean + s * torch.randn_like(clean)).clamp(0, 1), clean)) for s in (0.0, 0.05, 0.2)]
    assert values[0] == pytest.approx(1.0, abs=1e-5) and values[0] > values[1] > values[2]


def test_metric_classes_average_per_image_values():
    torch.manual_seed(0)
    clean = torch.rand(4, 3, 16, 16)
    noisy = (clean + torch.tensor([0.01, 0.05, 0.1, 0.2]).view(4, 1, 1, 1) * torch.randn_like(clean)).clamp(0, 1)
    metric_psnr, metric_ssim = PSNR(), SSIM()
    for i in range(0, 4, 2):  # two updates, like two validation batches
        metric_psnr.update(noisy[i : i + 2], clean[i : i + 2])
        metric_ssim.update(noisy[i : i + 2], clean[i : i + 2])
    assert float(metric_psnr.compute()) == pytest.approx(float(psnr(noisy, clean).mean()), rel=1e-5)
    assert float(metric_ssim.compute()) == pytest.approx(float(ssim(noisy, clean).mean()), rel=1e-5)


def test_a_tiny_restorer_overfits_one_batch():
    torch.manual_seed(0)
    module = RestorationModule(
        DnCNN(channels=16, depth=4), loss="l2",
        optimizer=lambda params: torch.optim.Adam(params, lr=3e-3),
    )
    clean = torch.nn.functional.interpolate(torch.rand(4, 3, 6, 6), size=(24, 24), mode="bilinear")
    batch = {"clean": clean, "degraded": (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)}
    optimizer = module.configure_optimizers()
    module.log = lambda *args, **kwargs: None
    losses = []
    for _ in range(250):
        optimizer.zero_grad()
        loss = module.training_step(batch, 0)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    noisy_mse = float(((batch["degraded"] - clean) ** 2).mean())
    assert losses[-1] < 0.35 * noisy_mse and losses[-1] < 0.2 * losses[0]


def test_non_finite_loss_skips_the_step():
    module = RestorationModule(DnCNN(channels=4, depth=3))
    module.log = lambda *args, **kwargs: None
    clean = torch.rand(1, 3, 8, 8)
    batch = {"clean": clean, "degraded": torch.full_like(clean, float("nan"))}
    assert module.training_step(batch, 0) is None and module.skipped_steps == 1


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    net = DnCNN(channels=8, depth=4).eval()
    plain = RestorationModule(net).eval()
    x = torch.rand(1, 3, 20, 20)
    expected = plain(x)
    fast = RestorationModule(net, channels_last=True).eval()
    assert torch.allclose(fast(x), expected, atol=1e-5)


@pytest.mark.parametrize("name", sorted(p.stem for p in (config_dir() / "model").glob("*.yaml")))
def test_every_model_rebuilds_from_its_config_alone(compose, name, tmp_path, monkeypatch):
    """What load_model does with a checkpoint's stored config: no config file may be read, no backbone
    weights may be needed (none are installed here) and no other run's checkpoint (ESRGAN's init_from)."""
    from omegaconf import OmegaConf

    import degrade_lab.degradations.build as build
    import degrade_lab.paths as paths

    cfg = compose("train", [f"model={name}", "data.scale=4"] if name in ("rrdbnet", "esrgan") else [f"model={name}"])
    stored = OmegaConf.to_container(cfg.model, resolve=True)
    if "init_from" in stored:
        stored["init_from"] = str(tmp_path / "deleted_stage_one" / "last.ckpt")
    if stored.get("val_lpips"):
        stored["val_lpips"] = None  # load_model switches the validation-only metric off

    def no_config(*args, **kwargs):
        raise AssertionError("a constructor read a config file")

    monkeypatch.setattr(paths, "config_dir", no_config)
    monkeypatch.setattr(build, "config_dir", no_config)
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "no_weights"))
    module = instantiate_model(stored)
    assert sum(p.numel() for p in module.parameters()) > 0
