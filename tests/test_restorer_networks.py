"""Shapes and parameter counts of the restorer networks at the papers' settings."""

from __future__ import annotations

import pytest
import torch

from degrade_lab.archs.discriminators import PatchDiscriminator, VGGStyleDiscriminator
from degrade_lab.archs.drunet import DRUNet
from degrade_lab.archs.rrdbnet import RRDBNet
from degrade_lab.archs.vdir import VDIR, VDIRDecoder, VDIREncoder, VDIREstimator, VDIRRestorer


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_at_paper_settings():
    # DnCNN: derived layer by layer in test_models.py
    assert count(DRUNet()) == 32_640_960  # DPIR drunet_color: 4 input channels (noise level map)
    assert count(RRDBNet(scale=4)) == 16_697_987  # ESRGAN x4
    vdir = VDIR()

    def conv(i, o):  # a 3x3 convolution with bias
        return 9 * i * o + o

    # VDIR Fig. 3, layer by layer (64 filters, a 4-channel latent, N = D = 5):
    encoder = conv(3, 64) + 4 * conv(64, 64) + 2 * conv(64, 4)  # body, then the mean and log-variance heads
    decoder = conv(4, 64) + 3 * conv(64, 64) + conv(64, 3)
    estimator = conv(4, 64) + conv(64, 3)
    # y and the resized c concatenated, 5 groups of (5 blocks of 2 convs + 1 conv), the long-skip conv, output
    restorer = conv(3 + 4, 64) + 5 * (5 * 2 + 1) * conv(64, 64) + conv(64, 64) + conv(64, 3)
    assert (count(vdir.encoder), count(vdir.restorer)) == (encoder, restorer) == (154_120, 2_073_795)
    assert (count(VDIRDecoder()), count(VDIREstimator())) == (decoder, estimator) == (114_883, 4_099)
    assert vdir.inference_parameters() == encoder + restorer  # "about 2.2 M" with the encoder (sec. IV.F)
    assert count(PatchDiscriminator()) == 9_409_601  # VDIR's spectral-norm discriminator


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_sr_generators_upsample_by_exactly_the_scale(scale):
    rrdb = RRDBNet(scale=scale, features=8, blocks=1, growth=4)
    vdir = VDIR(scale=scale, features=8, groups=1, blocks=1)
    for height, width in ((12, 16), (13, 17)):
        x = torch.rand(2, 3, height, width)
        assert rrdb(x).shape == (2, 3, height * scale, width * scale)
        assert vdir(x).shape == (2, 3, height * scale, width * scale)


def test_restorers_keep_any_input_size():
    x = torch.rand(1, 3, 21, 30)
    assert DRUNet(channels=(4, 8, 8, 8), blocks=1)(x, 25.0).shape == x.shape
    assert DRUNet(channels=(4, 8, 8, 8), blocks=1, noise_map=False)(x).shape == x.shape
    with pytest.raises(ValueError, match="noise level"):
        DRUNet(channels=(4, 8, 8, 8), blocks=1)(x)


def test_vdir_latent_is_a_quarter_resolution_with_four_channels():
    mean, log_variance = VDIREncoder()(torch.rand(2, 3, 32, 48))
    assert mean.shape == log_variance.shape == (2, 4, 8, 12)
    assert VDIRRestorer(groups=1, blocks=1)(torch.rand(2, 3, 32, 48), mean).shape == (2, 3, 32, 48)
    assert VDIRDecoder()(mean).shape == (2, 3, 32, 48)


def test_vdir_uses_one_sample_or_the_mean():
    torch.manual_seed(0)
    vdir = VDIR(features=8, groups=1, blocks=1).eval()
    with torch.no_grad():
        vdir.encoder.log_variance.bias.fill_(2.0)  # a wide posterior: samples differ visibly
        x = torch.rand(1, 3, 16, 16)
        g = torch.Generator().manual_seed(1)
        first, second = vdir(x, generator=g), vdir(x, generator=g)
        assert not torch.allclose(first, second)
        assert torch.equal(vdir(x, sample=False), vdir(x, sample=False))


def test_discriminator_output_shapes():
    assert PatchDiscriminator(widths=(8, 8, 8, 8, 8))(torch.rand(2, 3, 64, 96)).shape == (2, 1, 2, 3)
    assert VGGStyleDiscriminator(features=8, input_size=64)(torch.rand(2, 3, 64, 64)).shape == (2, 1)
    with pytest.raises(ValueError, match="input_size"):
        VGGStyleDiscriminator(features=8, input_size=64)(torch.rand(2, 3, 32, 32))
