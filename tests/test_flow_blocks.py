"""DeFlow's invertible blocks: exact inverses, log-determinants against the autograd Jacobian (float64), and
the initialisations the papers prescribe (Glow sec. 3.1-3.2, SRFlow / DeFlow sec. 4.1)."""

import pytest
import torch

from degrade_lab.archs import flow_blocks as fb


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter off its (mostly zero / identity) initialisation, so no test passes trivially."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return module


def _log_abs_det_jacobian(function, x: torch.Tensor) -> torch.Tensor:
    """log |det J| of ``function`` at each sample of ``x``, from the full autograd Jacobian."""
    out = []
    for sample in x:
        jacobian = torch.autograd.functional.jacobian(lambda v: function(v[None]).flatten(), sample)
        out.append(torch.linalg.slogdet(jacobian.reshape(sample.numel(), sample.numel()))[1])
    return torch.stack(out)


CHANNELS, COND = 4, 3


def _blocks():
    torch.manual_seed(0)
    return {
        "actnorm": (fb.ActNorm(CHANNELS), False),
        "invconv": (fb.InvertibleConv1x1(CHANNELS), False),
        "injector": (fb.AffineInjector(CHANNELS, COND, hidden=8), True),
        "coupling": (fb.ConditionalCoupling(CHANNELS, COND, hidden=8), True),
        "flow step": (fb.FlowStep(CHANNELS, COND, hidden=8), True),
        "unconditional step": (fb.FlowStep(CHANNELS), False),
        "squeeze": (fb.Squeeze(), False),
    }


@pytest.mark.parametrize("name", list(_blocks()))
def test_every_block_inverts_exactly_and_its_logdet_is_the_jacobians(name):
    block, conditional = _blocks()[name]
    block = _randomise(block.double().eval())
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, CHANNELS, 4, 4, generator=generator, dtype=torch.float64)
    cond = torch.randn(2, COND, 4, 4, generator=generator, dtype=torch.float64) if conditional else None
    y, logdet = block(x, cond)
    torch.testing.assert_close(block.reverse(y, cond), x, atol=1e-10, rtol=0)
    expected = torch.stack([_log_abs_det_jacobian(lambda v, i=i: block(v, None if cond is None else cond[i:i + 1])[0],
                                                  x[i:i + 1])[0] for i in range(2)])
    torch.testing.assert_close(logdet, expected, atol=1e-8, rtol=0)


def test_split_prior_is_a_bijection_with_its_logdet():
    torch.manual_seed(0)
    split = _randomise(fb.SplitPrior(6).double())
    x = torch.randn(2, 6, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kept, eps, logdet = split(x)
    assert kept.shape == (2, 3, 3, 3) and eps.shape == (2, 3, 3, 3)
    torch.testing.assert_close(split.reverse(kept, eps), x, atol=1e-10, rtol=0)
    expected = _log_abs_det_jacobian(lambda v: torch.cat(split(v)[:2], dim=1), x)
    torch.testing.assert_close(logdet, expected, atol=1e-8, rtol=0)


def test_actnorm_initialises_from_the_first_batch():
    """Glow sec. 3.1: after the first training batch, zero mean and unit variance per channel; not again."""
    norm = fb.ActNorm(3).train()
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(3)) * torch.tensor([2.0, 0.5, 7.0]).view(1, 3, 1, 1) + 4
    y, logdet = norm(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    # log|det| = H W sum(log scale), the scales being 1 / std
    std = x.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(logdet, (-torch.log(std).sum() * 25).expand(8), rtol=1e-4, atol=1e-4)
    y2, _ = norm(x * 3)  # initialised once: a second batch does not re-initialise
    torch.testing.assert_close(y2, (x * 3 + norm.bias) * torch.exp(norm.log_scale))


def test_invertible_conv_starts_as_a_rotation_and_coupling_layers_near_the_identity():
    torch.manual_seed(0)
    conv = fb.InvertibleConv1x1(6)
    weight = conv.weight()
    torch.testing.assert_close(weight @ weight.T, torch.eye(6), atol=1e-5, rtol=0)
    assert abs(float(conv.log_s.detach().sum())) < 1e-5  # |det| = 1
    coupling = fb.ConditionalCoupling(6, 2, hidden=8)
    x, cond = torch.randn(1, 6, 4, 4), torch.randn(1, 2, 4, 4)
    y, logdet = coupling(x, cond)
    # zero-initialised last layer: shift 0, scale sigmoid(2) + 1e-4 on the changed half (DeFlow divides by it)
    scale = torch.sigmoid(torch.tensor(2.0)) + 1e-4
    torch.testing.assert_close(y[:, :3], x[:, :3])
    torch.testing.assert_close(y[:, 3:], x[:, 3:] / scale)
    torch.testing.assert_close(logdet, -torch.log(scale) * 3 * 16 * torch.ones(1))


def test_squeeze_follows_glows_channel_order():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    y, _ = fb.Squeeze()(x)
    assert y.shape == (1, 8, 2, 2)
    # channel c * 4 + 2 * i + j holds pixel (2 h + i, 2 w + j) of input channel c
    for c in range(2):
        for i in range(2):
            for j in range(2):
                torch.testing.assert_close(y[0, c * 4 + 2 * i + j], x[0, c, i::2, j::2])


def test_standard_log_prob_is_the_closed_form():
    from degrade_lab.archs.latent_shift import standard_log_prob

    eps = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum(dim=1)
    torch.testing.assert_close(standard_log_prob(eps), expected)
