"""SeNM-VAE training, generation and data: each domain's loss uses its own tensors only, the KL terms and
Proposition 1's bound, shapes for 1..7 latent levels, level control, paired-only training, checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import save_rgb, smooth_image
from degrade_lab.archs.discriminators import NLayerDiscriminator
from degrade_lab.archs.senmvae import NoiseLevelNet, SeNMVAE
from degrade_lab.data import domains as D
from degrade_lab.data.datamodules import folders
from degrade_lab.degradations.build import build_degrader
from degrade_lab.degradations.senmvae import SeNMVAEDegrader, sidd_levels
from degrade_lab.errors import UserInputError
from degrade_lab.lit.senmvae import SeNMVAEModule, true_level
from degrade_lab.losses.kl import gaussian_kl
from degrade_lab.tasks.evaluate import evaluate
from degrade_lab.tasks.synthesize import synthesize
from degrade_lab.tasks.train import train


def tiny_module(levels=(1, 1), gan=0.0, **kwargs) -> SeNMVAEModule:
    torch.manual_seed(0)
    net = SeNMVAE(features=8, levels=levels, noise_channels=4, growth=4)
    return SeNMVAEModule(net, NoiseLevelNet(features=4), NLayerDiscriminator(features=4, layers=2),
                         lpips_weight=0.0, gan_weight=gan, **kwargs)


def batch_of(kind: int, clean=None, degraded=None, size=2, hw=16):
    generator = torch.Generator().manual_seed(kind + 5)
    clean = torch.rand(size, 3, hw, hw, generator=generator) if clean is None else clean
    degraded = (clean + 0.1 * torch.randn(clean.shape, generator=generator)) if degraded is None else degraded
    batch = {"domain": torch.full((size,), kind)}
    if kind in (D.PAIRED, D.SOURCE):
        batch["clean"] = clean
    if kind in (D.PAIRED, D.TARGET):
        batch["degraded"] = degraded
    return batch


def grads_of(module: SeNMVAEModule, batch: dict) -> dict[str, bool]:
    module.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    module.loss_terms(batch)["loss"].backward()
    parts = {"clean_encoder": module.net.clean_encoder, "content_encoder": module.net.content_encoder,
             "noise_encoder": module.net.noise_encoder, "q_z_clean": module.net.q_z_clean,
             "q_noise": module.net.q_noise, "p_noise": module.net.p_noise, "level_net": module.level_net}
    return {name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
            for name, part in parts.items()}


# ---- the objective -------------------------------------------------------------------------------
def test_each_domain_trains_only_its_own_parts():
    module = tiny_module(kl_anneal_steps=0)  # the KL terms weigh from the first step
    for p in module.parameters():  # the zero-initialised heads would hide the paths
        torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else None
    source = grads_of(module, batch_of(D.SOURCE))
    assert source == {"clean_encoder": True, "content_encoder": False, "noise_encoder": False, "q_z_clean": True,
                      "q_noise": False, "p_noise": False, "level_net": False}
    target = grads_of(module, batch_of(D.TARGET))
    assert not target["clean_encoder"] and not target["q_z_clean"]
    assert all(target[k] for k in ("content_encoder", "noise_encoder", "q_noise", "p_noise", "level_net"))
    assert all(grads_of(module, batch_of(D.PAIRED)).values())


def test_no_paired_information_leaks_into_the_unpaired_terms():
    module = tiny_module()
    torch.manual_seed(3)
    target = batch_of(D.TARGET)
    torch.manual_seed(1)
    reference = module.loss_terms(target)
    # a clean image riding along in a target batch (or a degraded one in a source batch) changes nothing
    torch.manual_seed(1)
    polluted = module.loss_terms({**target, "clean": torch.rand(2, 3, 16, 16)})
    assert set(reference) == {"recon_degraded", "kl_noise", "reconstructed", "loss"}
    assert torch.equal(reference["loss"], polluted["loss"])
    source = batch_of(D.SOURCE)
    torch.manual_seed(1)
    a = module.loss_terms(source)["loss"]
    torch.manual_seed(1)
    b = module.loss_terms({**source, "degraded": torch.rand(2, 3, 16, 16)})["loss"]
    assert set(module.loss_terms(source)) == {"recon_clean", "loss"} and torch.equal(a, b)


def test_the_paired_loss_is_the_weighted_sum_of_its_terms():
    module = tiny_module(kl_weight=0.5, kl_anneal_steps=0, content_kl_ratio=0.1, level_weight=2.0)
    torch.manual_seed(1)
    terms = module.loss_terms(batch_of(D.PAIRED))
    expected = (terms["recon_clean"] + terms["recon_degraded"] + 0.5 * terms["kl_noise"]
                + 0.5 * 0.1 * terms["kl_content"] + 2.0 * terms["level_l1"])
    assert torch.allclose(terms["loss"], expected)
    assert {"recon_clean", "recon_degraded", "kl_noise", "kl_content", "level_l1"} <= set(terms)
    # Table 6 ablation: no clean reconstruction, and the source domain then has no loss at all
    ablated = tiny_module(clean_reconstruction=False)
    assert "recon_clean" not in ablated.loss_terms(batch_of(D.PAIRED))
    with pytest.raises(ValueError, match="data.weights.source=0"):
        ablated.loss_terms(batch_of(D.SOURCE))


def test_kl_weight_warms_up_linearly():
    module = tiny_module(kl_weight=1e-2, kl_anneal_steps=100)
    assert module.current_kl_weight(0) == 0 and module.current_kl_weight(50) == pytest.approx(5e-3)
    assert module.current_kl_weight(10_000) == pytest.approx(1e-2)


def test_the_true_level_recovers_the_noise_std_that_made_the_pair():
    """Pairs made with Gaussian noise of known std (and a per-image offset, which is not noise): the level
    is that std, within the sampling error of 3 x 256 x 256 values (< 1 %)."""
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 256, 256, generator=generator)
    sigmas = torch.tensor([0.01, 0.05, 0.2])
    offsets = torch.tensor([0.0, 0.1, -0.05]).view(3, 1, 1, 1)
    degraded = clean + offsets + torch.randn(clean.shape, generator=generator) * sigmas.view(3, 1, 1, 1)
    assert torch.allclose(true_level(clean, degraded), sigmas, rtol=0.01)


def test_kl_terms_match_the_closed_form_of_the_heads():
    net = tiny_module(levels=(1,)).net  # one level: the KL is that level's mean elementwise KL
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    image = torch.rand(2, 3, 8, 8)
    h, low = net.clean_encoder(image), net.content_encoder(image * 0.5)
    out = net.decode(h, low)
    d = torch.zeros_like(h[0])
    q_clean, q_degraded = net.q_z_clean[0](d + h[0]), net.q_z_degraded[0](d + low[0])
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(q_degraded[0], q_degraded[1].exp()),
        torch.distributions.Normal(q_clean[0], q_clean[1].exp())).mean(dim=(1, 2, 3))
    assert torch.allclose(out["kl_z"], expected, rtol=1e-5, atol=1e-6)


def test_proposition_1_bounds_the_kl_of_the_mixture_posterior():
    """KL(p1 q1 + p2 q2 || p) <= p1 KL(q1 || p) + p2 KL(q2 || p) (eq. 6), and with p = q1, KL <= p2 KL(q2 || q1)
    (eq. 7), checked by Monte Carlo on random diagonal Gaussians."""
    generator = torch.Generator().manual_seed(0)
    normal = torch.distributions.Normal
    for _ in range(5):
        m1, m2, mp = (torch.randn(4, generator=generator) for _ in range(3))
        s1, s2, sp = (torch.rand(4, generator=generator) + 0.3 for _ in range(3))
        q1, q2, p = normal(m1, s1), normal(m2, s2), normal(mp, sp)
        coin = torch.rand(200_000, 1, generator=generator) < 0.5
        z = torch.where(coin, q1.sample((200_000,)), q2.sample((200_000,)))
        log_mix = torch.logsumexp(torch.stack([q1.log_prob(z).sum(1), q2.log_prob(z).sum(1)]), 0) - np.log(2)
        kl_mix_p = (log_mix - p.log_prob(z).sum(1)).mean()
        bound = 0.5 * gaussian_kl(m1, s1.log(), mp, sp.log()).sum() + 0.5 * gaussian_kl(m2, s2.log(), mp, sp.log()).sum()
        assert kl_mix_p <= bound + 0.02
        kl_mix_q1 = (log_mix - q1.log_prob(z).sum(1)).mean()
        assert kl_mix_q1 <= 0.5 * gaussian_kl(m2, s2.log(), m1, s1.log()).sum() + 0.02


LEVELS = {1: (1,), 2: (2,), 3: (1, 1), 4: (1, 2), 5: (2, 2), 6: (2, 3), 7: (2, 4)}


@pytest.mark.parametrize("latent_levels", range(1, 8))
def test_shapes_for_one_to_seven_latent_levels(latent_levels):
    net = SeNMVAE(features=8, levels=LEVELS[latent_levels], noise_channels=4, growth=4)
    assert net.num_levels == latent_levels
    image = torch.rand(2, 3, 16, 16)
    h = net.clean_encoder(image)
    assert len(h) == latent_levels and h[-1].shape[-1] == 16 // net.multiple
    out = net.decode(h, net.content_encoder(image), net.noise_encoder(image), torch.tensor([0.1, 0.2]),
                     with_noise=True)
    assert out["image"].shape == image.shape and out["kl_noise"].shape == out["kl_z"].shape == (2,)
    shapes = net.latent_shapes(2, 16, 16)
    assert len(shapes) == latent_levels and shapes[-1][1] == (2, 4, 16 // net.multiple, 16 // net.multiple)


# ---- generation ----------------------------------------------------------------------------------
def test_tiled_translation_equals_the_whole_image():
    net = tiny_module(levels=(1, 1)).net.eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    clean = torch.rand(1, 3, 37, 45)  # odd sizes: padded to the network's multiple, cropped back
    args = ([7], torch.tensor([0.1]), torch.tensor([1.0]))
    with torch.no_grad():
        whole = net.synthesize(clean, *args)
        tiled = net.synthesize(clean, *args, tile_size=16)
    assert whole.shape == clean.shape and torch.allclose(whole, tiled, atol=1e-5)


def test_sidd_prior_matches_the_authors_ranges():
    levels = sidd_levels(20_000, torch.Generator().manual_seed(0), "cpu")
    # shot in [6.9e-4, 2.2e-2] and read << shot: the level is about sqrt(shot)
    assert levels.min() >= 6.8674e-4**0.5 and levels.max() < 0.18
    # log10(shot) is uniform: the median shot is the geometric mean of the range, 3.88e-3
    assert (6.8674e-4 * 2.194856e-2) ** 0.25 < levels.median() < 1.05 * (6.8674e-4 * 2.194856e-2) ** 0.25


def _degrader(module, **kwargs):
    module.level_range.copy_(torch.tensor([0.02, 0.1]))
    return SeNMVAEDegrader(module=module, **kwargs)


def test_level_modes_and_the_out_of_range_warning(caplog):
    module = tiny_module()
    clean = torch.rand(4, 3, 16, 16)
    paired = _degrader(module)
    paired(clean, torch.Generator().manual_seed(0))
    levels = paired.last_parameters["level"]
    assert torch.all((levels >= 0.02) & (levels <= 0.1)) and torch.allclose(paired.last_parameters["sigma"], levels * 255)
    steps = _degrader(module, level_steps=[0.02, 0.05])
    steps(clean, torch.Generator().manual_seed(0))
    assert steps.last_parameters["level"].tolist() == pytest.approx([0.02, 0.05, 0.02, 0.05])
    fixed = _degrader(module, level=0.05)
    fixed(clean, torch.Generator().manual_seed(0))
    assert torch.allclose(fixed.last_parameters["level"], torch.full((4,), 0.05))
    with caplog.at_level(logging.WARNING):
        _degrader(module, level=[0.05, 0.3])
    assert "outside the trained range" in caplog.text
    with pytest.raises(UserInputError, match="number, \\[low, high\\], 'paired' or 'sidd'"):
        _degrader(module, level="loud")
    module.level_range.fill_(float("nan"))
    with pytest.raises(UserInputError, match="saw no training pairs"):
        SeNMVAEDegrader(module=module)


def test_a_trained_model_makes_stronger_degradation_at_a_higher_level():
    """Paired-only training on grey images with AWGN of two strengths: generation follows the level."""
    torch.manual_seed(0)
    module = SeNMVAEModule(SeNMVAE(features=16, levels=(1,), noise_channels=4, growth=8), NoiseLevelNet(4), None,
                           lpips_weight=0.0, gan_weight=0.0, kl_weight=1e-3, kl_anneal_steps=0)
    optimizer = torch.optim.Adam(module._generator_parameters(), lr=2e-3)
    images = torch.full((8, 3, 16, 16), 0.5)
    sigma = torch.tensor([0.02, 0.15] * 4).view(-1, 1, 1, 1)
    for _ in range(300):
        degraded = images + sigma * torch.randn_like(images)
        loss = module.loss_terms({"clean": images, "degraded": degraded, "domain": torch.full((8,), -1)})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    degrader = SeNMVAEDegrader(module=module.eval(), level_steps=[0.02, 0.15])
    with torch.no_grad():
        out = degrader(images[:4], torch.Generator().manual_seed(0))
    strength = (out - images[:4]).flatten(1).std(dim=1)  # levels 0.02, 0.15, 0.02, 0.15
    assert strength[1] > 1.5 * strength[0] and strength[3] > 1.5 * strength[2]


def test_real_world_sr_learns_on_the_bicubic_shrunk_clean_side():
    """SeNM-VAE sec. 4.6: y = B(x) + n'. With the bicubic operator, a pair of an HR clean image and its LR degraded
    image has the level std(y - B(x)), the std of exactly the noise that was added; the degrader shrinks first."""
    from degrade_lab.degradations.resize import Bicubic

    module = tiny_module(clean_operator=Bicubic(scale=4))
    assert module.scale == 4
    generator = torch.Generator().manual_seed(3)
    clean = torch.rand(2, 3, 64, 64, generator=generator)
    noise = 0.05 * torch.randn(2, 3, 16, 16, generator=generator)
    degraded = Bicubic(scale=4)(clean) + noise
    terms = module.loss_terms({"clean": clean, "degraded": degraded, "domain": torch.full((2,), D.PAIRED)})
    assert torch.isfinite(terms["loss"])
    expected = noise.flatten(1).std(dim=1)
    assert module.level_range.tolist() == pytest.approx([expected.min().item(), expected.max().item()], rel=1e-4)
    assert torch.isfinite(module.loss_terms({"clean": clean, "domain": torch.full((2,), D.SOURCE)})["loss"])
    degrader = SeNMVAEDegrader(module=module.eval(), level=0.05)
    with torch.no_grad():
        out = degrader(clean, torch.Generator().manual_seed(0))
    assert degrader.scale == 4 and out.shape == (2, 3, 16, 16)  # an LR image of the HR input


def test_a_step_with_a_huge_gradient_is_skipped_and_counted():
    module = tiny_module(skip_grad_norm=1e-9)
    module.zero_grad()
    module.loss_terms(batch_of(D.PAIRED))["loss"].backward()
    assert module._check_gradients(None) is False and module.skipped["grad_norm"] == 1
    clipped = tiny_module(skip_grad_norm=0, clip_grad_norm=1e-3)
    clipped.loss_terms(batch_of(D.PAIRED))["loss"].backward()
    assert clipped._check_gradients(None) is True
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in clipped._generator_parameters() if p.grad is not None))
    assert float(norm) == pytest.approx(1e-3, rel=1e-3)


# ---- data ----------------------------------------------------------------------------------------
def _paired_set(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        clean = smooth_image(rng, 24, 24)
        save_rgb(root / "clean" / f"x{i:02d}.png", clean)
        save_rgb(root / "degraded" / f"x{i:02d}.png", np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8))
    return root


def test_split_from_gives_each_kind_its_share(tmp_path):
    root = _paired_set(tmp_path / "all", 12)
    common = {"split_from": str(root), "num_paired": 4, "crop_size": 16, "batch_size": 2, "test": str(root)}
    semi = folders("semi", **common)
    assert semi.train_sizes == [4, 4, 4] and semi.split_record["paired"] == sorted(semi.split_record["paired"])
    assert not set(semi.split_record["source"]) & set(semi.split_record["target"])
    unpaired = folders("unpaired", **common)
    assert unpaired.train_sizes == [8, 8]  # every image, without its pairing
    restorer = folders("paired", **common)
    assert restorer.train_sizes == [4]
    with pytest.raises(UserInputError, match="has 12 pairs, fewer than asked for: data.num_paired=11"):
        folders("semi", **{**common, "num_paired": 11})
    # Table 7: the unpaired domains cut to N images each, the pairs unchanged
    fewer = folders("semi", **common, num_unpaired=2)
    assert fewer.train_sizes == [4, 2, 2] and fewer.split_record["paired"] == semi.split_record["paired"]
    assert set(fewer.split_record["source"]) <= set(semi.split_record["source"])
    with pytest.raises(UserInputError, match="num_unpaired=5.*give 1 to 4"):
        folders("semi", **common, num_unpaired=5)


def test_switched_off_domains_need_no_folder(tmp_path, tiny_folders):
    empty = tmp_path / "empty"
    empty.mkdir()
    common = {"paired": str(tiny_folders / "paired"), "test": str(tiny_folders / "test"), "crop_size": 16}
    with pytest.raises(UserInputError, match=f"'{empty}' holds no images"):
        folders("semi", source=str(empty), target=str(tiny_folders / "target"), **common)
    with pytest.raises(UserInputError, match="data.weights.target=0"):
        folders("semi", source=str(tiny_folders / "source"), **common)
    module = folders("semi", source=str(empty), weights={"source": 0, "target": 0}, **common)
    assert module.domain_ids == [D.PAIRED]


# ---- end to end ----------------------------------------------------------------------------------
TINY = ["experiment=senmvae_cpu", "model.net.features=8", "model.net.growth=4", "model.net.noise_channels=4",
        "model.net.levels=[1,1]", "model.level_net.features=4", "model.discriminator.features=4", "model.discriminator.layers=2",
        "model.lpips_weight=0", "data=folders", "data.crop_size=16", "data.batch_size=2", "data.val_crop=null",
        "trainer.max_steps=4", "trainer.val_check_interval=2", "callbacks.progress.refresh_rate=0", "hardware=cpu"]


@pytest.fixture
def senmvae_run(compose, tiny_folders):
    cfg = compose("train", [*TINY, f"data.paired={tiny_folders / 'paired'}", f"data.source={tiny_folders / 'source'}",
                            f"data.target={tiny_folders / 'target'}", f"data.test={tiny_folders / 'test'}",
                            "data.weights.paired=3"])
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics


def test_train_synthesize_evaluate_a_senmvae(senmvae_run, compose, tiny_folders, tmp_path):
    run, metrics = senmvae_run
    assert {"val/akld", "val/kld", "val/level_error", "val/akld_best"} <= set(metrics)
    assert any(k.startswith("train/recon_") for k in metrics)
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = compose("synthesize", ["degrader=senmvae", f"degrader.ckpt={ckpt}", "degrader.level_steps=[0.02,0.08]",
                                 "samples=2", f"input={tiny_folders / 'source'}", f"output={tmp_path / 'syn'}",
                                 "progress=false"])
    synthesize(cfg)
    manifest = json.loads((tmp_path / "syn" / "manifest.json").read_text())
    assert manifest["files"]["s0_s1"]["parameters"]["level"] == pytest.approx(0.08)
    assert len(list((tmp_path / "syn" / "degraded").glob("*.png"))) == 8
    cfg = compose("evaluate", ["degrader=senmvae", f"degrader.ckpt={ckpt}", "degrader.level=0.08", "data=folders",
                               f"data.test={tiny_folders / 'test'}", "progress=false", "metrics.fid=false"])
    result = evaluate(cfg)
    assert result["degradation/kld"] == result["degradation/kld"] and result["test/images"] == 2


def test_a_checkpoint_reloads_from_itself_alone(senmvae_run, monkeypatch, tmp_path):
    run, _ = senmvae_run
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "no-weights"))  # nothing installed
    ckpt = run / "checkpoints" / "last.ckpt"
    from_path, from_name = build_degrader(str(ckpt)), build_degrader("senmvae", ckpt=str(ckpt))
    assert isinstance(from_path, SeNMVAEDegrader) and from_path.trained_range is not None
    clean = torch.rand(1, 3, 20, 20)
    assert torch.equal(from_path(clean, torch.Generator().manual_seed(1)), from_name(clean, torch.Generator().manual_seed(1)))


def test_paired_only_training_works_without_source_and_target(compose, tiny_folders):
    cfg = compose("train", [*TINY, f"data.paired={tiny_folders / 'paired'}", f"data.test={tiny_folders / 'test'}",
                            "data.weights.source=0", "data.weights.target=0"])
    metrics = train(cfg)
    assert "train/recon_clean" in metrics and "val/akld" in metrics


def test_lpips_term_without_weights_names_the_install_command(compose, tiny_folders, monkeypatch, tmp_path):
    from degrade_lab.weights import MissingWeightsError

    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "no-weights"))
    cfg = compose("train", [*[o for o in TINY if not o.startswith("model.lpips")], f"data.paired={tiny_folders / 'paired'}",
                            f"data.test={tiny_folders / 'test'}", "data.weights.source=0", "data.weights.target=0"])
    with pytest.raises(MissingWeightsError, match="weights install.*model.lpips_weight=0"):
        train(cfg)
