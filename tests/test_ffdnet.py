"""FFDNet: parameter counts at the paper's settings, the forward pass against one written out from KAIR's
definition, the noise-level map, and FFDNet as VDIR's restorer (VDIR Table XI)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from degrade_lab.archs.ffdnet import FFDNet
from degrade_lab.archs.vdir import VDIR


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(i: int, o: int) -> int:  # a 3x3 convolution with bias
    return 9 * i * o + o


def test_parameter_counts_at_the_paper_settings():
    # colour: 4 x 3 sub-image channels + the noise map in, 12 layers of 96 channels, 4 x 3 out (no BN: KAIR's release)
    assert count(FFDNet()) == conv(13, 96) + 10 * conv(96, 96) + conv(96, 12) == 852_108
    # grey: 15 layers of 64 channels
    assert count(FFDNet(1, 1, channels=64, depth=15)) == conv(5, 64) + 13 * conv(64, 64) + conv(64, 4) == 485_316
    # the paper trained with batch normalisation in the middle layers: two parameters per channel more
    assert count(FFDNet(batch_norm=True)) == 852_108 + 10 * 2 * 96
    # VDIR Table XI: VDIR's encoder + FFDNet taking the 4-channel latent instead of the noise map
    vdir = VDIR(restorer=FFDNet(condition_channels=4))
    encoder = conv(3, 64) + 4 * conv(64, 64) + 2 * conv(64, 4)
    assert vdir.inference_parameters() == encoder + conv(12 + 4, 96) + 10 * conv(96, 96) + conv(96, 12)


def reference_ffdnet(net: FFDNet, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KAIR's FFDNet.forward written out by hand: replication padding to even sizes, the 2 x 2 sub-images
    stacked channel-major (channel c, row offset i, column offset j -> 4c + 2i + j), a constant map of
    sigma / 255, the convolutions, the inverse stacking, the crop."""
    height, width = x.shape[-2:]
    x = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate")
    subs = [x[:, c, i::2, j::2] for c in range(x.shape[1]) for i in range(2) for j in range(2)]
    folded = torch.stack(subs, dim=1)
    level = (sigma / 255.0).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, *folded.shape[-2:])
    out = net.body(torch.cat([folded, level], dim=1))
    channels = out.shape[1] // 4
    full = out.new_zeros(out.shape[0], channels, 2 * out.shape[2], 2 * out.shape[3])
    for c in range(channels):
        for i in range(2):
            for j in range(2):
                full[:, c, i::2, j::2] = out[:, 4 * c + 2 * i + j]
    return full[..., :height, :width]


@pytest.mark.parametrize("size", [(16, 20), (15, 21)])
def test_forward_equals_kairs_definition_written_out(size):
    torch.manual_seed(0)
    net = FFDNet(channels=8, depth=4).eval()
    x = torch.rand(2, 3, *size)
    sigma = torch.tensor([10.0, 50.0])
    with torch.no_grad():
        ours = net(x, sigma)
        assert ours.shape == x.shape
        assert torch.allclose(ours, reference_ffdnet(net, x, sigma), atol=1e-6)
        # one float for the batch equals one value per image; the level changes the output
        assert torch.allclose(net(x, 25.0), net(x, torch.tensor([25.0, 25.0])), atol=1e-6)
        assert not torch.allclose(net(x, 5.0), net(x, 60.0), atol=1e-4)
        # a map at the half-resolution grid equals the uniform level it holds
        half = (math.ceil(size[0] / 2), math.ceil(size[1] / 2))
        assert torch.allclose(net(x, torch.full((2, 1, *half), 25.0 / 255)), net(x, 25.0), atol=1e-6)


def test_blind_ffdnet_and_the_errors():
    x = torch.rand(1, 3, 12, 12)
    assert FFDNet(channels=8, depth=3, condition_channels=0)(x).shape == x.shape
    assert not FFDNet(channels=8, depth=3, condition_channels=0).noise_map and FFDNet(channels=8, depth=3).noise_map
    with pytest.raises(ValueError, match="noise level"):
        FFDNet(channels=8, depth=3)(x)
    with pytest.raises(ValueError, match="4 condition channels"):
        FFDNet(channels=8, depth=3, condition_channels=4)(x, 25.0)
    with pytest.raises(ValueError, match="2-channel condition map"):
        FFDNet(channels=8, depth=3, condition_channels=2)(x, torch.zeros(1, 3, 3, 3))
    with pytest.raises(ValueError, match="depth"):
        FFDNet(depth=2)


def test_vdir_with_ffdnet_resizes_its_latent_onto_ffdnets_grid():
    """VDIR Table XI: the latent c (1/4 resolution, 4 channels) replaces FFDNet's noise map; it is bilinearly
    resized to FFDNet's half-resolution grid."""
    torch.manual_seed(0)
    restorer = FFDNet(channels=8, depth=3, condition_channels=4)
    vdir = VDIR(features=8, restorer=restorer).eval()
    x = torch.rand(2, 3, 24, 32)
    with torch.no_grad():
        mean, _ = vdir.encoder(x)
        expected = restorer(x, F.interpolate(mean, size=(12, 16), mode="bilinear", align_corners=False))
        assert torch.allclose(vdir(x, sample=False), expected, atol=1e-6)
        assert vdir(torch.rand(1, 3, 21, 30), sample=False).shape == (1, 3, 21, 30)
    with pytest.raises(ValueError, match="latent"):
        VDIR(restorer=FFDNet(condition_channels=1))
    with pytest.raises(ValueError, match="scale"):
        VDIR(scale=4, restorer=FFDNet(condition_channels=4))


def test_evaluate_gives_a_non_blind_network_each_images_sigma(compose, tiny_folders, tmp_path):
    """The sweep's pairs carry their sigma: a non-blind FFDNet scores exactly as with noise_level=SIGMA given by
    hand, and differently with a wrong level."""
    from degrade_lab.tasks.evaluate import evaluate
    from degrade_lab.tasks.train import train

    train(compose("train", ["model=ffdnet", "data=folders", f"data.source={tiny_folders / 'source'}",
                            "data.degrader=awgn", "model.net.channels=8", "model.net.depth=3", "data.crop_size=32",
                            "data.batch_size=2", "data.num_workers=0", "trainer.max_steps=2", "logger=csv",
                            "callbacks.progress.refresh_rate=0", "model.val_lpips=null"], run_dir=tmp_path / "run"))
    sweep = [f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", "data=folders",
             f"data.test={tiny_folders / 'test'}", "sweep.degrader=awgn", "sweep.parameter=sigma",
             "sweep.values=[30]", "metrics.lpips=null", "progress=false"]
    psnr = [evaluate(compose("evaluate", sweep + extra))["test/psnr@sigma=30"]
            for extra in ([], ["noise_level=30"], ["noise_level=5"])]
    assert psnr[0] == psnr[1] and psnr[0] != psnr[2]
