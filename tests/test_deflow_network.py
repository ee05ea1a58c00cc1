"""The DeFlow network: the whole flow inverts exactly and its log-determinant is the Jacobian's (float64), the
latent groups have the shapes the reference gives, T = 0 returns the input, and the paper configurations have
the authors' parameter counts."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from degrade_lab.archs.deflow import DeFlow


def _tiny(**kwargs) -> DeFlow:
    torch.manual_seed(0)
    net = DeFlow(levels=3, steps=2, hidden=8, features=8, blocks=2, growth=4, stack_blocks=(0, 1), **kwargs)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # off the zero / identity initialisation, so nothing passes trivially
        for parameter in net.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return net.double().eval()


def test_the_flow_inverts_exactly_and_its_logdet_is_the_jacobians():
    net = _tiny()
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, 8, 8, generator=generator, dtype=torch.float64)
    features = net.condition(image, torch.randn(2, 3, 2, 2, generator=generator, dtype=torch.float64))
    latents, logdet = net.encode(image, features)
    torch.testing.assert_close(net.decode(latents, features), image, atol=1e-9, rtol=0)
    for i in range(2):
        feats = [f[i:i + 1] for f in features]

        def flat(x, feats=feats):
            return torch.cat([z.flatten() for z in net.encode(x.view(1, 3, 8, 8), feats)[0]])

        jacobian = torch.autograd.functional.jacobian(flat, image[i].flatten())
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jacobian)[1], atol=1e-7, rtol=0)


def test_latent_groups_follow_the_reference_layout():
    """Reference 3.2: level 1 splits 12 channels into 6 kept and 6 factored out, level 2 does not split, the final
    latent has 96 channels at 1/8 of the image (20 x 20 for the authors' 160-px crops)."""
    net = DeFlow(levels=3, steps=1, hidden=8, features=8, blocks=2, growth=4, stack_blocks=(0, 1))
    shapes = net.latent_shapes(2, 160, 160)
    assert shapes == [(2, 6, 80, 80), (2, 96, 20, 20)]
    with torch.no_grad():
        latents, _ = net.encode(torch.rand(2, 3, 160, 160), net.condition(torch.rand(2, 3, 160, 160)))
    assert [tuple(z.shape) for z in latents] == shapes
    assert net.multiple == 8 and DeFlow(levels=3, steps=1, condition_scale=16, blocks=1, stack_blocks=(0,)).multiple == 16


def test_zero_temperature_returns_the_input_and_a_learned_shift_moves_it():
    net = _tiny()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    features = net.condition(image, torch.zeros(1, 3, 4, 4, dtype=torch.float64))
    noise = [torch.randn(shape, dtype=torch.float64) for shape in net.latent_shapes(1, 16, 16)]
    torch.testing.assert_close(net.degrade(image, features, noise, torch.zeros(1, dtype=torch.float64)), image,
                               atol=1e-9, rtol=0)
    assert (net.degrade(image, features, noise, torch.ones(1, dtype=torch.float64)) - image).abs().mean() > 1e-3


def test_nll_is_bits_per_dimension_of_the_change_of_variables():
    """Eq. (7) / (10) with 5-bit dequantisation: -log2 p(x | h) per dimension = -(log|det| + log N(z; 0, I) -
    D log 32) / (D ln 2), the density from torch.distributions over every latent group."""
    net = _tiny()
    image = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    features = net.condition(image, torch.zeros(2, 3, 2, 2, dtype=torch.float64))
    dequantize = torch.zeros_like(image)
    latents, logdet = net.encode(image, features)
    log_prob = logdet + sum(torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1) for z in latents)
    dims = 3 * 8 * 8
    expected = -(log_prob - dims * torch.log(torch.tensor(32.0, dtype=torch.float64))) / (dims * torch.log(torch.tensor(2.0)))
    got = net.nll(image, torch.zeros(2, dtype=torch.bool), features, dequantize)
    torch.testing.assert_close(got, expected.to(got.dtype))



def test_pair_nll_is_eq_5_and_rewards_pairs_that_follow_the_shift():
    """Eq. (5): -log2 p(x, y | h) per dimension of the pair = -(log|det f'(x)| + log|det f'(y)| + log N(z_x; 0, I)
    + log N(z_y - z_x; mu_u, M M^T + 1e-4 I) - 2 D log 32) / (2 D ln 2), the densities from
    torch.distributions.MultivariateNormal; and a degraded image whose latent is its clean latent moved by mu_u is
    likelier than the same move in the opposite direction."""
    net = _tiny()
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for shift in net.shifts:
            shift.mean.copy_(torch.randn(shift.mean.shape, generator=generator, dtype=torch.float64) * 0.5)
            shift.matrix_weight.copy_(torch.randn(shift.matrix_weight.shape, generator=generator, dtype=torch.float64))
    clean = torch.rand(2, 3, 8, 8, generator=generator, dtype=torch.float64)
    degraded = (clean + 0.05 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    features = net.condition(clean, torch.zeros(2, 3, 2, 2, dtype=torch.float64))
    zeros = (torch.zeros_like(clean), torch.zeros_like(degraded))
    (zx, ldx), (zy, ldy) = net.encode(clean, features), net.encode(degraded, features)
    log_prob = ldx + ldy
    for shift, a, b in zip(net.shifts, zx, zy, strict=True):
        channels = a.shape[1]
        covariance = shift.covariance() + 1e-4 * torch.eye(channels, dtype=torch.float64)
        difference = MultivariateNormal(shift.mean, covariance)
        log_prob = log_prob + torch.distributions.Normal(0.0, 1.0).log_prob(a).flatten(1).sum(1)
        log_prob = log_prob + difference.log_prob((b - a).permute(0, 2, 3, 1)).flatten(1).sum(1)
    dims = 3 * 8 * 8
    expected = -(log_prob - 2 * dims * math.log(32.0)) / (2 * dims * math.log(2.0))
    torch.testing.assert_close(net.pair_nll(clean, degraded, features, zeros), expected)
    # a degraded latent moved by +mu_u from the clean one fits the pair model better than one moved by -mu_u
    along = net.decode([z + s.mean.view(1, -1, 1, 1) for z, s in zip(zx, net.shifts, strict=True)], features)
    against = net.decode([z - s.mean.view(1, -1, 1, 1) for z, s in zip(zx, net.shifts, strict=True)], features)
    assert bool((net.pair_nll(clean, along, features, zeros) < net.pair_nll(clean, against, features, zeros)).all())



def test_a_deterministic_shift_is_undone_exactly_by_the_reverse_translation():
    """With M = 0 the shift is the constant mu_u: the Gaussian conditional of z_x given z_y is the point
    z_y - mu_u, so degraded -> clean after clean -> degraded returns the clean image (float64)."""
    net = _tiny()
    generator = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for shift in net.shifts:
            # small: this untrained, perturbed flow's inverse is steep away from its data (0.3 gives 1e9 pixels)
            shift.mean.copy_(torch.randn(shift.mean.shape, generator=generator, dtype=torch.float64) * 0.02)
            shift.matrix_weight.zero_()
    image = torch.rand(1, 3, 16, 16, generator=generator, dtype=torch.float64)
    features = net.condition(image, torch.zeros(1, 3, 4, 4, dtype=torch.float64))
    noise = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in net.latent_shapes(1, 16, 16)]
    ones = torch.ones(1, dtype=torch.float64)
    degraded = net.degrade(image, features, noise, ones)
    assert (degraded - image).abs().mean() > 1e-3
    torch.testing.assert_close(net.restore(degraded, features, noise, ones), image, atol=1e-8, rtol=0)


@pytest.mark.parametrize(("name", "kwargs", "authors"), [
    ("NTIRE-RWSR", {"hidden": 64, "condition_scale": 4}, 39_741_641),
    ("AIM-RWSR", {"hidden": 128, "condition_scale": 8}, 62_935_305),
])
def test_paper_configurations_have_the_authors_parameter_counts(name, kwargs, authors):
    """The authors' counts (reference 3.2) less what their code registers but DeFlow never uses: a 3x3 conv
    320 -> 96 with bias (its ``FlowUpsamplerNet.f``) and the frozen identity matrices of the two latent Gaussians
    (96 x 96 and 6 x 6)."""
    net = DeFlow(**kwargs)
    unused = (320 * 96 * 9 + 96) + (96 * 96 + 6 * 6)
    assert sum(p.numel() for p in net.parameters()) == authors - unused
    assert sum(p.numel() for p in net.encoder.parameters()) == (16_697_987 if kwargs["condition_scale"] == 4
                                                               else 16_697_987 + 64 * 64 * 9 + 64)


def test_conditioning_features_are_the_authors_maps():
    """h(x) per level, spelled out from ESRGAN's layers: level 1 (x2 of the small image at condition_scale 4)
    reads LeakyReLU(conv(nearest x2 of the trunk)), the map after the activation, because the authors' in-place
    LeakyReLU overwrites the map they store; level 2 the trunk itself; level 3 its bilinear half. Each is
    concatenated with the stacked RRDB blocks' outputs resized to it (nearest)."""
    torch.manual_seed(0)
    encoder = DeFlow(levels=3, steps=1, hidden=8, features=8, blocks=3, growth=4, stack_blocks=(0, 2)).encoder.eval()
    small = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        feat = encoder.conv_first(small)
        stacked = []
        for index, block in enumerate(encoder.body):
            feat = block(feat)
            if index in (0, 2):
                stacked.append(feat)
        trunk = feat + encoder.conv_body(feat)
        x2 = torch.nn.functional.leaky_relu(encoder.upsamplers[0](torch.nn.functional.interpolate(trunk, scale_factor=2)),
                                            0.2)
        half = torch.nn.functional.interpolate(trunk, scale_factor=0.5, mode="bilinear", align_corners=False)
        expected = [torch.cat([base, *[torch.nn.functional.interpolate(s, size=base.shape[-2:]) for s in stacked]], 1)
                    for base in (x2, trunk, half)]
        for got, want in zip(encoder(small, 3), expected, strict=True):
            torch.testing.assert_close(got, want)
        assert (x2 < 0).any() and not torch.equal(x2, encoder.upsamplers[0](torch.nn.functional.interpolate(trunk, scale_factor=2)))


def test_without_conditional_the_features_ignore_the_image():
    """Table 4's "no conditional", h(x) = 0: every image gets the encoder's features of an all-zero small image."""
    net = _tiny(conditional=False)
    generator = torch.Generator().manual_seed(4)
    one, other = (torch.rand(1, 3, 16, 16, generator=generator, dtype=torch.float64) for _ in range(2))
    zeros = net.encoder(torch.zeros(1, 3, 4, 4, dtype=torch.float64), net.levels)
    for a, b, z in zip(net.condition(one), net.condition(other), zeros, strict=True):
        torch.testing.assert_close(a, z)
        torch.testing.assert_close(b, z)
    conditioned = _tiny()
    assert not torch.equal(conditioned.condition(one, torch.zeros(1, 3, 4, 4, dtype=torch.float64))[0],
                           conditioned.condition(other, torch.zeros(1, 3, 4, 4, dtype=torch.float64))[0])
