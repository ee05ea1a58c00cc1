"""SeNM-VAE's networks: parameter counts of the official code, shapes, and the decoding paths."""

from __future__ import annotations

import math

import pytest
import torch

from degrade_lab.archs.discriminators import NLayerDiscriminator
from degrade_lab.archs.senmvae import NoiseLevelNet, SeNMVAE


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_official_network():
    assert count(SeNMVAE()) == 19_955_739  # nf 64, levels (2, 4), 16 noise channels
    assert count(NoiseLevelNet()) == 2_920_897
    assert count(NLayerDiscriminator()) == 2_765_633


def tiny() -> SeNMVAE:
    torch.manual_seed(0)
    net = SeNMVAE(features=16, noise_channels=4, growth=8)
    for module in net.modules():  # leave the zero-initialised heads: give every weight some value
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.05)
    return net


def test_latent_levels_follow_the_encoder_stack():
    net = tiny()
    features = net.clean_encoder(torch.rand(2, 3, 32, 32))
    assert net.num_levels == 7 and [f.shape[-1] for f in features] == [32, 32, 16, 16, 16, 16, 16]
    assert type(net.decoder_blocks[2]).__name__ == "UpSample"  # the down-sampling level goes back up


def test_translation_depends_on_the_level_and_the_temperature():
    net = tiny().eval()
    clean = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        outputs = [net.translate(clean, torch.tensor([level, level]), temperature,
                                 generator=torch.Generator().manual_seed(1))
                   for level, temperature in ((0.02, 1.0), (0.2, 1.0), (0.02, 0.0))]
    assert outputs[0].shape == clean.shape
    assert not torch.allclose(outputs[0], outputs[1])  # the level channel reaches the prior
    assert not torch.allclose(outputs[0], outputs[2])  # temperature scales the prior sample


def test_kl_terms_vanish_only_when_the_distributions_agree():
    net = tiny()
    image = torch.rand(2, 3, 32, 32)
    same = net.clean_encoder(image)
    level = torch.tensor([0.05, 0.05])
    out = net.decode(same, same, net.noise_encoder(image), level, with_noise=True)
    assert out["image"].shape == image.shape and out["kl_noise"].shape == (2,)
    # q(z|L) differs from q(z|H) (separate heads): a positive, finite KL
    assert torch.all(out["kl_z"] > 0) and all(math.isfinite(v) for v in out["kl_z"].tolist())
    net.q_z_degraded.load_state_dict(net.q_z_clean.state_dict())  # identical heads and inputs: KL = 0
    out = net.decode(same, same, level=level)
    assert torch.allclose(out["kl_z"], torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize("size", [32, 48])
def test_denoise_and_noise_level_shapes(size):
    net = tiny().eval()
    with torch.no_grad():
        assert net.denoise(torch.rand(1, 3, size, size)).shape == (1, 3, size, size)
    assert NoiseLevelNet(features=8)(torch.rand(3, 3, size, size)).shape == (3,)
