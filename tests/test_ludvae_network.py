"""LUD-VAE network: parameter count, KL mathematics, domain gating, sampling semantics."""

import pytest
import torch

from degrade_lab.archs.ludvae import LUDVAE
from degrade_lab.losses.kl import gaussian_kl
from degrade_lab.utils.runs import count_parameters


def tiny(levels=3):
    torch.manual_seed(0)
    return LUDVAE(channels=12, latent_channels=6, levels=levels)


def test_parameter_count_at_paper_settings():
    assert count_parameters(LUDVAE())["total"] == 5_709_827  # the official code instantiates exactly this


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5])
def test_every_level_count_gives_full_resolution_latents(levels):
    model = tiny(levels)
    x = torch.rand(2, 3, 12, 10)
    recon, kls = model(x, x, torch.ones(2))
    assert recon.shape == x.shape and len(kls) == levels
    assert all(kl.shape == (2, 6, 12, 10) for kl in kls)
    assert model.sample(x).shape == x.shape


def test_gaussian_kl_matches_closed_form_and_monte_carlo():
    torch.manual_seed(0)
    mean_q, logstd_q = torch.tensor([0.3, -1.0]), torch.tensor([-0.5, 0.2])
    mean_p, logstd_p = torch.tensor([0.1, 0.5]), torch.tensor([0.1, -0.3])
    kl = gaussian_kl(mean_q, logstd_q, mean_p, logstd_p)
    std_q, std_p = logstd_q.exp(), logstd_p.exp()
    closed = torch.log(std_p / std_q) + (std_q**2 + (mean_q - mean_p) ** 2) / (2 * std_p**2) - 0.5
    assert torch.allclose(kl, closed, atol=1e-6)
    samples = mean_q + std_q * torch.randn(400_000, 2)
    q = torch.distributions.Normal(mean_q, std_q)
    p = torch.distributions.Normal(mean_p, std_p)
    monte_carlo = (q.log_prob(samples) - p.log_prob(samples)).mean(0)
    assert torch.allclose(kl, monte_carlo, atol=0.01)
    assert torch.allclose(gaussian_kl(mean_q, logstd_q), torch.distributions.kl_divergence(
        q, torch.distributions.Normal(torch.zeros(2), torch.ones(2))), atol=1e-6)
    assert torch.all(gaussian_kl(mean_q, logstd_q, mean_q, logstd_q).abs() < 1e-7)


def test_clean_images_have_no_kl_and_ignore_the_noise_encoder():
    model = tiny()
    hx = torch.rand(2, 3, 8, 8)
    a, kls = model(torch.rand(2, 3, 8, 8), hx, torch.zeros(2), torch.Generator().manual_seed(1))
    b, _ = model(torch.rand(2, 3, 8, 8), hx, torch.zeros(2), torch.Generator().manual_seed(2))
    assert all(float(kl.detach().abs().max()) == 0 for kl in kls)
    assert torch.allclose(a, b)  # content only: neither x nor the latent noise matters


def test_a_clean_batch_never_touches_the_degraded_domain_terms():
    """ELBO_x has no term of the degradation latents: no gradient reaches the noise encoder,
    the posteriors or the learned priors from a clean-only batch (no paired term)."""
    model = tiny()
    x = torch.rand(2, 3, 8, 8)
    recon, kls = model(x, x + 0.05 * torch.randn_like(x), torch.zeros(2))
    ((recon - x) ** 2).mean().add(sum(kl.mean() for kl in kls)).backward()
    untouched = [model.noise_in, model.noise_blocks, model.posteriors, model.priors, model.merge_noise]
    for module in untouched:
        for param in module.parameters():
            assert param.grad is None or float(param.grad.abs().max()) == 0
    assert float(model.content_in.weight.grad.abs().max()) > 0


def test_degraded_batch_trains_every_part():
    model = tiny()
    x = torch.rand(2, 3, 8, 8)
    recon, kls = model(x, x, torch.ones(2))
    ((recon - x) ** 2).mean().add(sum(kl.mean() for kl in kls)).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and float(param.grad.abs().max()) > 0, name


def test_sampling_is_seeded_and_temperature_scales_the_whole_sample():
    model = tiny()
    hx = torch.rand(2, 3, 8, 8)

    def run(seed, **kwargs):
        return model.sample(hx, torch.Generator().manual_seed(seed), **kwargs)

    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))
    clean_translation = run(0, degrade=False)
    assert torch.equal(clean_translation, run(5, degrade=False))  # no latent, no randomness
    assert torch.allclose(run(3, temperature=0.0), clean_translation)  # T multiplies mean AND noise
    per_image = run(3, temperature=torch.tensor([0.0, 1.0]))
    assert torch.allclose(per_image[0], clean_translation[0]) and torch.allclose(per_image[1], run(3)[1])


def test_lowpass_sigma_keeps_the_inputs_colours_and_tiles_without_seams():
    """With lowpass_sigma the output's low frequencies are the input's: a decoder that outputs a flat colour
    (its last conv's bias) gives that colour without it, and the input's own channel means with it."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 44)
    cast = torch.tensor([0.2, -0.1, 0.05])
    means = {}
    for sigma in (0.0, 3.0):
        torch.manual_seed(1)
        model = LUDVAE(channels=8, latent_channels=4, levels=2, lowpass_sigma=sigma)
        with torch.no_grad():
            model.out.weight.zero_()
            model.out.bias.copy_(cast)
        recon, _ = model(image, image, torch.ones(1))
        means[sigma] = recon.mean(dim=(0, 2, 3))
        assert model.receptive_radius == 16 + (9 if sigma else 0)
    torch.testing.assert_close(means[0.0], cast)
    # blur(image) averages to the image's mean, up to the replicated borders
    assert (means[3.0] - image.mean(dim=(0, 2, 3))).abs().max() < 0.01

    torch.manual_seed(2)
    model = LUDVAE(channels=8, latent_channels=4, levels=2, lowpass_sigma=3.0)
    levels, temperatures = torch.full((1,), 10.0), torch.ones(1)
    whole = model.synthesize(image, [7], levels, temperatures)
    tiles = model.synthesize(image, [7], levels, temperatures, tile_size=16)
    torch.testing.assert_close(tiles, whole, atol=1e-5, rtol=0)
    # a flat grey image: the untrained network alone moves its colour, with the low-pass kept it does not
    flat = torch.full((1, 3, 40, 44), 0.5)
    plain = LUDVAE(channels=8, latent_channels=4, levels=2)
    plain.load_state_dict(model.state_dict())
    shift = {name: (net.synthesize(flat, [3], levels, temperatures) - flat).mean(dim=(2, 3)).abs().max()
             for name, net in (("plain", plain), ("lowpass", model))}
    assert shift["lowpass"] < 1e-3 < 0.02 < shift["plain"]


def test_the_lowpass_blur_runs_in_fp32_under_bf16_autocast():
    from degrade_lab.archs.lowpass import KeepLowFrequencies

    keep = KeepLowFrequencies(3.0)
    image, output = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    reference = keep(output, image)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = keep(output.bfloat16(), image)
    assert mixed.dtype == torch.bfloat16
    # only the final cast and the bf16 input are rounded: the blur itself ran in fp32
    assert torch.allclose(mixed.float(), reference, atol=2e-2)
