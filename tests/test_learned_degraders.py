"""Behaviour pins of the learned degraders: the synthesis of seeded tiny LUD-VAE and SeNM-VAE networks, recorded
before the learned-degrader machinery was shared (issue 14), must not change. The reference numbers in
tests/data/learned_degrader_pins.json were written by ``python tests/test_learned_degraders.py --write`` on the
code before that refactor; values are compared to 1e-5 (CPU instruction sets round the last bits differently)."""

import json
import sys
from pathlib import Path

import torch

PINS = Path(__file__).parent / "data" / "learned_degrader_pins.json"


def _ludvae_module(**kwargs):
    from degrade_lab.archs.ludvae import LUDVAE
    from degrade_lab.lit.ludvae import LUDVAEModule

    torch.manual_seed(0)
    return _mid_grey(LUDVAEModule(LUDVAE(channels=8, latent_channels=4, levels=2), **kwargs).eval())


def _mid_grey(module):
    """Untrained outputs sit near 0 and would mostly clip: centre them so every pinned value is informative."""
    out = module.net.out
    last = out if isinstance(out, torch.nn.Conv2d) else [m for m in out.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.bias += 0.5
    return module


def _senmvae_module():
    from degrade_lab.archs.discriminators import NLayerDiscriminator
    from degrade_lab.archs.senmvae import NoiseLevelNet, SeNMVAE
    from degrade_lab.lit.senmvae import SeNMVAEModule

    torch.manual_seed(0)
    net = SeNMVAE(features=8, levels=(1, 1), noise_channels=4, growth=4)
    with torch.no_grad():  # zero-initialised layers would make the output ignore the level and the noise
        generator = torch.Generator().manual_seed(1)
        for parameter in net.parameters():
            if not parameter.any():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return _mid_grey(SeNMVAEModule(net, NoiseLevelNet(features=4), NLayerDiscriminator(features=4, layers=2),
                                   lpips_weight=0.0, gan_weight=0.0).eval())


def _clean() -> torch.Tensor:
    return torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(7))


def outputs() -> dict[str, torch.Tensor]:
    """Every kind of learned synthesis the degraders offer, on a fixed clean batch and generator seed."""
    from degrade_lab.degradations.ludvae import LUDVAEDegrader
    from degrade_lab.degradations.senmvae import SeNMVAEDegrader

    results = {}
    lud = _ludvae_module()
    plain = {"residual_transfer": False}  # the paper's synthesis, which these pins recorded
    for name, options in {"ludvae_c2n": plain, "ludvae_n2c": {"direction": "n2c"},
                          "ludvae_ranges": {"noise_level": [10, 40], "temperature": [0.5, 2.0], "tile_size": 16, **plain},
                          "ludvae_std_mode": {"temperature": 0.5, "temperature_mode": "std", **plain}}.items():
        degrader = LUDVAEDegrader(module=lud, **options)
        results[name] = degrader(_clean(), torch.Generator().manual_seed(3))
    aim = _ludvae_module(color_normalization={"mean_from": [150, 140, 130], "std_from": [60, 50, 40],
                                              "mean_to": [100, 110, 120], "std_to": [50, 55, 60]})
    results["ludvae_aim19"] = LUDVAEDegrader(module=aim, **plain)(_clean(), torch.Generator().manual_seed(3))
    sen = _senmvae_module()
    for name, options in {"senmvae_level": {"level": 0.05}, "senmvae_range": {"level": [0.01, 0.1], "tile_size": 16,
                                                                            "temperature": [0.5, 1.5]},
                          "senmvae_sidd": {"level": "sidd"}}.items():
        degrader = SeNMVAEDegrader(module=sen, **options)
        results[name] = degrader(_clean(), torch.Generator().manual_seed(3))
    return results


def _summary(image: torch.Tensor) -> dict:
    image = image.detach().double()
    return {"corner": image[:, :, :6, :6].flatten().tolist(), "mean": float(image.mean()), "std": float(image.std()),
            "shape": list(image.shape)}


def test_learned_synthesis_is_unchanged():
    pins = json.loads(PINS.read_text())
    results = outputs()
    assert sorted(results) == sorted(pins)
    for name, image in results.items():
        got, expected = _summary(image), pins[name]
        assert got["shape"] == expected["shape"], name
        assert torch.allclose(torch.tensor(got["corner"]), torch.tensor(expected["corner"]), atol=1e-5), name
        assert abs(got["mean"] - expected["mean"]) < 1e-5 and abs(got["std"] - expected["std"]) < 1e-5, name


class _GainNet(torch.nn.Module):
    """A toy degradation network: ``image * gain + offset * N(0, 1)`` with the noise drawn from each image's seed."""

    def synthesize(self, image, seeds, tile_size=0, *, gain=None, offset=None):
        gain = torch.ones(len(image)) if gain is None else gain
        offset = torch.zeros(len(image)) if offset is None else offset
        noise = torch.stack([torch.randn(image.shape[1:], generator=torch.Generator().manual_seed(seed))
                             for seed in seeds])
        return image * gain.view(-1, 1, 1, 1) + offset.view(-1, 1, 1, 1) * noise


class _GainModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _GainNet()


def test_generic_learned_degrader_draws_options_per_image_and_checks_them():
    """The degrader of a new model is LearnedDegrader itself: options go to ``net.synthesize`` by name, ranges
    are drawn per image and recorded, the seeds come from the caller's generator, unknown options are refused."""
    import pytest

    from degrade_lab.degradations.build import build_degrader
    from degrade_lab.degradations.learned import LearnedDegrader
    from degrade_lab.errors import UserInputError

    clean = torch.full((64, 3, 4, 4), 0.5)
    degrader = LearnedDegrader(module=_GainModule(), options={"gain": [0.2, 0.6]})
    out = degrader(clean, torch.Generator().manual_seed(1))
    gains = degrader.last_parameters["gain"]
    assert gains.shape == (64,) and 0.2 <= gains.min() < 0.25 and 0.55 < gains.max() <= 0.6
    torch.testing.assert_close(out, clean * gains.view(-1, 1, 1, 1))  # offset kept the network's default, 0
    noisy = LearnedDegrader(module=_GainModule(), options={"offset": 0.1})
    first, again = (noisy(clean[:2], torch.Generator().manual_seed(4)) for _ in range(2))
    other = noisy(clean[:2], torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert abs(float((first - 0.5).std()) - 0.1) < 0.03  # N(0, 0.1^2) around the clean value
    with pytest.raises(UserInputError, match="brightness is not an option of _GainNet; it takes: gain, offset"):
        LearnedDegrader(module=_GainModule(), options={"brightness": 1.0})
    with pytest.raises(UserInputError, match="has no degraded -> clean translation"):
        LearnedDegrader(module=_GainModule(), direction="n2c")
    with pytest.raises(UserInputError, match="needs a checkpoint"):
        build_degrader({"_target_": "degrade_lab.degradations.learned.LearnedDegrader",
                        "trained_by": "degrade_lab.lit.ludvae.LUDVAEModule"})


def test_lowpass_sigma_keeps_the_clean_images_low_frequencies_for_every_learned_degrader():
    """``lowpass_sigma=s``: the output is x + r - G_s * r, r the residual the same degrader gives with s = 0 and
    the same seeds; G is scipy's Gaussian filter here (an independent blur: nearest-edge borders, 3 std wide)."""
    import numpy as np
    import pytest
    from scipy.ndimage import gaussian_filter

    from degrade_lab.degradations.learned import LearnedDegrader
    from degrade_lab.degradations.ludvae import LUDVAEDegrader
    from degrade_lab.degradations.senmvae import SeNMVAEDegrader
    from degrade_lab.errors import UserInputError

    clean = 0.25 + 0.5 * _clean()
    sigma = 2.0
    for build in (lambda **kw: LUDVAEDegrader(module=_ludvae_module(), residual_transfer=False, **kw),
                  lambda **kw: SeNMVAEDegrader(module=_senmvae_module(), level=0.05, **kw),
                  lambda **kw: LearnedDegrader(module=_GainModule(), options={"gain": 0.9, "offset": 0.03}, **kw)):
        plain = build()(clean, torch.Generator().manual_seed(3))
        kept = build(lowpass_sigma=sigma)(clean, torch.Generator().manual_seed(3))
        assert 0 < float(plain.min()) and float(plain.max()) < 1  # no clipping: the identity below is exact
        residual = (plain - clean).double().numpy()
        low = gaussian_filter(residual, sigma=(0, 0, sigma, sigma), mode="nearest", truncate=3.0)
        expected = torch.from_numpy(clean.double().numpy() + residual - low).clamp(0, 1)
        torch.testing.assert_close(kept.double(), expected, atol=2e-5, rtol=0)
        # the colour and tone of every channel come from the clean image: residual means drop towards 0
        assert np.abs((kept - clean).mean(dim=(0, 2, 3)).numpy()).max() < 0.2 * np.abs(residual.mean(axis=(0, 2, 3))).max()
    with pytest.raises(UserInputError, match="lowpass_sigma must be >= 0"):
        LearnedDegrader(module=_GainModule(), lowpass_sigma=-1)



def test_ludvae_residual_transfer_adds_only_what_the_degradation_latents_change():
    """``residual_transfer=True``: output = x + D(content, latents) - D(content, no latents). With the latents'
    path to the decoder cut (their merge weights zeroed) the two renderings are equal, so the pair differs by
    nothing and the output is the clean input exactly, while plain C2N returns the decoder's (different)
    rendering; with the latents on, the residual is the plain C2N output minus the N2C-style clean rendering of
    the same pre-noised content."""
    import pytest

    from degrade_lab.degradations.ludvae import LUDVAEDegrader
    from degrade_lab.errors import UserInputError

    clean = 0.25 + 0.5 * _clean()
    module = _ludvae_module()
    transferred = LUDVAEDegrader(module=module, residual_transfer=True)(clean, torch.Generator().manual_seed(3))
    plain = LUDVAEDegrader(module=module, residual_transfer=False)(clean, torch.Generator().manual_seed(3))
    assert float((transferred - plain).abs().max()) > 1e-3  # the option changes the output
    assert float((transferred - clean).abs().mean()) > 1e-4  # and the latents do add a residual
    with torch.no_grad():
        for merge in module.net.merge_latent:
            merge.mix.weight[:, -module.net.posteriors[0].mean.out_channels:] = 0
    cut = LUDVAEDegrader(module=module, residual_transfer=True)(clean, torch.Generator().manual_seed(3))
    torch.testing.assert_close(cut, clean, atol=1e-5, rtol=0)
    rendered = LUDVAEDegrader(module=module, residual_transfer=False)(clean, torch.Generator().manual_seed(3))
    torch.testing.assert_close(LUDVAEDegrader(module=module)(clean, torch.Generator().manual_seed(3)), cut)  # default on
    assert float((rendered - clean).abs().mean()) > 1e-2  # the decoder's own rendering is not the input
    with pytest.raises(UserInputError, match="residual_transfer applies to direction=c2n"):
        LUDVAEDegrader(module=module, direction="n2c", residual_transfer=True)



def test_senmvae_keeps_the_pairs_levels_when_its_calibration_hit_the_search_edge(caplog):
    """A stored calibration at the edge of its search (noise not matched, a level the prior never saw) does not
    become SeNM-VAE's default: the training pairs' range does, with a warning; one inside the range does."""
    from degrade_lab.degradations.senmvae import SeNMVAEDegrader

    module = _senmvae_module()
    module.level_range.copy_(torch.tensor([0.02, 0.08]))
    module.calibration = {"option": "level", "value": 0.3, "at_edge": True, "noise_std_synthetic": 3.8,
                          "noise_std_target": 18.5}
    with caplog.at_level("WARNING"):
        assert SeNMVAEDegrader(module=module).level == "paired"
    assert "edge of its search" in caplog.text
    assert SeNMVAEDegrader(module=module, level=0.3).level == (0.3, 0.3)  # asked for: given
    module.calibration = {**module.calibration, "value": 0.05, "at_edge": False}
    assert SeNMVAEDegrader(module=module).level == (0.05, 0.05)


def test_senmvae_residual_transfer_adds_only_what_the_degradation_latent_changes():
    """SeNM-VAE's ``residual_transfer``: clean + D(z, z_n) - D(z). With z_n's path to the decoder cut (its
    projections zeroed) the pair differs by nothing: the output is the clean image, while the plain synthesis is
    the decoder's own rendering of it."""
    from degrade_lab.degradations.senmvae import SeNMVAEDegrader

    clean = 0.25 + 0.5 * _clean()
    module = _senmvae_module()
    encodings = []
    hook = module.net.clean_encoder.register_forward_hook(lambda *_: encodings.append(1))
    transferred = SeNMVAEDegrader(module=module, level=0.05, residual_transfer=True)(clean, torch.Generator().manual_seed(3))
    hook.remove()
    assert len(encodings) == 1  # one content encoding, decoded with and without z_n
    plain = SeNMVAEDegrader(module=module, level=0.05)(clean, torch.Generator().manual_seed(3))
    assert float((transferred - plain).abs().max()) > 1e-3 and float((transferred - clean).abs().mean()) > 1e-4
    with torch.no_grad():
        for projection in module.net.project_noise:
            for parameter in projection.parameters():
                parameter.zero_()
    cut = SeNMVAEDegrader(module=module, level=0.05, residual_transfer=True)(clean, torch.Generator().manual_seed(3))
    torch.testing.assert_close(cut, clean, atol=1e-5, rtol=0)
    rendered = SeNMVAEDegrader(module=module, level=0.05)(clean, torch.Generator().manual_seed(3))
    assert float((rendered - clean).abs().mean()) > 1e-2


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    PINS.write_text(json.dumps({name: _summary(image) for name, image in outputs().items()}, indent=1) + "\n")
    print(f"wrote {PINS}")
