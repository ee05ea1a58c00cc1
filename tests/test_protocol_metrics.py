"""The papers' own metric definitions, each against a value computed independently: NoiseFlow's KLD against the
binned Gaussian closed form and a hand count, SeNM-VAE's grey-level KL against its numpy / scipy recipe, DANet's
AKLD kernel against OpenCV's table, MATLAB's valid-region SSIM against a scipy transcription of ``ssim_index.m``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import correlate2d
from scipy.special import ndtr
from scipy.stats import entropy

from degrade_lab.metrics import akld, ssim
from degrade_lab.metrics.akld import local_variance
from degrade_lab.metrics.intensity_kl import grey_levels, intensity_kl
from degrade_lab.metrics.noise_kld import EDGES, noise_kld, noiseflow_kld
from degrade_lab.tasks.evaluate import evaluate

# OpenCV 4.x imgproc/src/smooth.dispatch.cpp, small_gaussian_tab[3] (what getGaussianKernel(7, -1) returns)
OPENCV_TABLE = np.array([1.0, 3.5, 7.0, 9.0, 7.0, 3.5, 1.0]) / 32


def _binned_gaussian(sigma: float) -> np.ndarray:
    """The exact probabilities of N(0, sigma^2) falling in NoiseFlow's 66 bins (normal CDF at the edges)."""
    return np.diff(ndtr(EDGES.double().numpy() / sigma))


def test_noiseflow_kld_matches_the_closed_form_of_two_binned_gaussians():
    generator = torch.Generator().manual_seed(0)
    clean = torch.zeros(1, 3, 512, 512, dtype=torch.float64)
    real = 0.02 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    synthetic = 0.025 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    p, q = _binned_gaussian(0.02), _binned_gaussian(0.025)
    expected = float(np.sum(p * np.log(p / q)))  # KL(real || synthetic); all 66 bins filled at these levels
    assert 0.03 < expected < 0.05  # near the continuous log(0.025 / 0.02) + 0.02^2 / (2 * 0.025^2) - 1/2 = 0.043
    assert float(noiseflow_kld(synthetic, real, clean)) == pytest.approx(expected, abs=1.5e-3)
    assert float(noise_kld(synthetic, real, clean)) == pytest.approx(expected, abs=1.5e-3)  # smoothing: negligible
    assert float(noiseflow_kld(real, synthetic, clean)) != pytest.approx(expected, abs=5e-3)  # the order matters


def test_noiseflow_kld_sums_only_bins_both_fill_and_can_go_negative():
    clean = torch.zeros(1, 1, 1, 4, dtype=torch.float64)
    bin_width = 0.2 / 64
    # real: two values in the bin above 0, two in the one above that; synthetic: all four in the first
    real = torch.tensor([0.5, 0.5, 1.5, 1.5], dtype=torch.float64).view(1, 1, 1, 4) * bin_width
    synthetic = torch.full_like(real, 0.5 * bin_width)
    assert float(noiseflow_kld(synthetic, real, clean)) == pytest.approx(0.5 * math.log(0.5), rel=1e-6)  # < 0
    smoothed_p = np.full(66, 1 / 70)
    smoothed_p[[33, 34]] = 3 / 70
    smoothed_q = np.full(66, 1 / 70)
    smoothed_q[33] = 5 / 70
    expected = float(np.sum(smoothed_p * np.log(smoothed_p / smoothed_q)))
    assert float(noise_kld(synthetic, real, clean)) == pytest.approx(expected, rel=1e-6) and expected > 0


def _noiseflow_reference(real_noise: np.ndarray, synthetic_noise: np.ndarray) -> float:
    """NoiseFlow's kl_div_3_data (forward KL) transcribed with numpy's histogram."""
    edges = np.concatenate(([-1000.0], np.arange(-0.1, 0.1 + 1e-9, 0.2 / 64), [1000.0]))
    p = np.histogram(real_noise, edges)[0] / real_noise.size
    q = np.histogram(synthetic_noise, edges)[0] / synthetic_noise.size
    both = (p > 0) & (q > 0)
    return float(np.sum(p[both] * (np.log(p[both]) - np.log(q[both]))))


def test_a_much_weaker_synthetic_noise_scores_low_under_noiseflow_and_high_smoothed():
    """The issue's example: real std 0.03 against synthetic 0.005, both 8-bit quantised: NoiseFlow's definition
    leaves out the real tails the weak noise never reaches; the smoothed one charges for them."""
    generator = torch.Generator().manual_seed(1)
    clean = torch.full((1, 3, 256, 256), 0.4, dtype=torch.float64)
    real = ((clean + 0.03 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)) * 255).round() / 255
    fake = ((clean + 0.005 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)) * 255).round() / 255
    noiseflow, smoothed = float(noiseflow_kld(fake, real, clean)), float(noise_kld(fake, real, clean))
    assert noiseflow == pytest.approx(_noiseflow_reference((real - clean).numpy(), (fake - clean).numpy()), rel=1e-5)
    assert noiseflow < 1.5 and smoothed > 3.0


def _authors_intensity_kl(generated: np.ndarray, real: np.ndarray) -> float:
    """SeNM-VAE's compute_kl.py on two uint8 grey images (numpy / scipy, as the authors run it)."""
    hist1, _ = np.histogram(generated.ravel(), bins=256, range=(0, 255))
    hist2, _ = np.histogram(real.ravel(), bins=256, range=(0, 255))
    prob2 = hist2 / hist2.sum() + 1e-8
    return float(entropy(hist1 / hist1.sum(), qk=prob2 / prob2.sum()))


def test_intensity_kl_follows_the_authors_recipe():
    rng = np.random.default_rng(2)
    real = np.clip(rng.normal(120, 40, (2, 1, 40, 50)), 0, 255).round()
    generated = np.clip(rng.normal(130, 30, (2, 1, 40, 50)), 0, 255).round()
    ours = intensity_kl(torch.from_numpy(generated) / 255, torch.from_numpy(real) / 255)
    for i in range(2):
        assert float(ours[i]) == pytest.approx(_authors_intensity_kl(generated[i, 0], real[i, 0]), rel=1e-5)
    # one grey level against two equally likely ones: log 2; the level 255 shares numpy's last, closed bin
    half = torch.cat([torch.full((1, 1, 4, 4), 100.0), torch.full((1, 1, 4, 4), 255.0)], dim=-1) / 255
    assert float(intensity_kl(torch.full((1, 1, 4, 8), 100 / 255), half)) == pytest.approx(
        math.log(2 * (1 + 256e-8) / (1 + 2e-8)), rel=1e-7)


def test_grey_levels_agree_with_an_independent_bt601_conversion():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.int64)  # Pillow's 299/587/114
    ours = grey_levels(torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255)[0].numpy()
    assert np.abs(ours - pil).max() <= 1 and (ours == pil).mean() > 0.9
    grey = np.repeat(rgb[..., :1], 3, axis=2)  # R = G = B keeps its level exactly
    assert np.array_equal(grey_levels(torch.from_numpy(grey).permute(2, 0, 1)[None].double() / 255)[0].numpy(),
                          grey[..., 0].astype(np.int64))


def test_akld_blur_is_opencvs_7_tap_table_with_reflect_border():
    impulse = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    impulse[..., 10, 10] = 1.0  # local_variance squares it: still 1
    response = local_variance(impulse)[0, 0, 7:14, 7:14].numpy()
    assert np.allclose(response, np.outer(OPENCV_TABLE, OPENCV_TABLE), atol=1e-12)
    corner = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    corner[..., 0, 0] = 1.0  # reflect without repeating the edge: the corner pixel counts once
    assert float(local_variance(corner)[0, 0, 0, 0]) == pytest.approx((9 / 32) ** 2)
    # the table is not the sigma = 1.4 Gaussian that OpenCV's documented formula gives
    taps = np.exp(-np.arange(-3, 4) ** 2 / (2 * 1.4**2))
    assert np.abs(taps / taps.sum() - OPENCV_TABLE).max() > 0.005


def test_akld_matches_a_direct_transcription_of_danet():
    generator = torch.Generator().manual_seed(4)
    clean = torch.rand(2, 3, 24, 20, generator=generator, dtype=torch.float64)
    real = clean + 0.05 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    fake = clean + 0.03 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    window = np.outer(OPENCV_TABLE, OPENCV_TABLE)

    def variance(noise):  # numpy: reflect-pad 3, valid correlation, clamp 1e-10
        padded = np.pad(noise**2, 3, mode="reflect")
        return np.maximum(correlate2d(padded, window, mode="valid"), 1e-10)

    for i in range(2):
        ratios = np.stack([variance((fake - clean)[i, c].numpy()) / variance((real - clean)[i, c].numpy())
                           for c in range(3)]).clip(0.1, 10)
        expected = float(np.mean(0.5 * (np.log(1 / ratios) + ratios - 1)))
        assert float(akld(fake, real, clean)[i]) == pytest.approx(expected, rel=1e-5)


def _matlab_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """ssim_index.m (Wang et al. 2004) on 0-255 float64 H x W x C arrays, per channel then averaged."""
    offsets = np.arange(11) - 5
    taps = np.exp(-offsets**2 / (2 * 1.5**2))
    window = np.outer(taps, taps) / np.outer(taps, taps).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(x.shape[2]):
        a, b = x[..., c], y[..., c]
        mu_a, mu_b = correlate2d(a, window, "valid"), correlate2d(b, window, "valid")
        sigma_a = correlate2d(a * a, window, "valid") - mu_a**2
        sigma_b = correlate2d(b * b, window, "valid") - mu_b**2
        sigma_ab = correlate2d(a * b, window, "valid") - mu_a * mu_b
        values.append(np.mean(((2 * mu_a * mu_b + c1) * (2 * sigma_ab + c2))
                              / ((mu_a**2 + mu_b**2 + c1) * (sigma_a + sigma_b + c2))))
    return float(np.mean(values))


def test_matlab_ssim_is_the_valid_region_of_ssim_index():
    rng = np.random.default_rng(5)
    ramp = np.linspace(40, 220, 80)[None, :, None] + np.linspace(-20, 20, 64)[:, None, None]
    clean = np.repeat(ramp, 3, axis=2).round()  # a smooth 64 x 80 image: SSIM of its noisy copy is low
    noisy = np.clip(clean + rng.normal(0, 40, clean.shape), 0, 255).round()
    as_tensor = [torch.from_numpy(a / 255).permute(2, 0, 1)[None] for a in (noisy, clean)]
    matlab = float(ssim(*as_tensor, variant="matlab"))
    assert matlab == pytest.approx(_matlab_ssim(noisy, clean), rel=1e-5)
    assert matlab < 0.5 and abs(float(ssim(*as_tensor)) - matlab) > 0.01 * matlab  # torchmetrics: padded map
    with pytest.raises(ValueError, match="unknown SSIM variant"):
        ssim(*as_tensor, variant="skimage")


def test_evaluate_records_the_definitions_and_the_protocol(compose, tiny_folders):
    common = ["data=folders", f"data.test={tiny_folders / 'test'}", "progress=false", "metrics.fid=false"]
    restorer_cfg = compose("evaluate", [*common, "ckpt=identity", "metrics.ssim=matlab", "metrics.lpips=null"])
    restorer = evaluate(restorer_cfg)
    assert "valid region" in restorer["labels"]["test/ssim"]
    saved = json.loads((Path(restorer_cfg.paths.output_dir) / "metrics.json").read_text())
    assert saved["labels"]["input/ssim"] == restorer["labels"]["test/ssim"]
    degrader_cfg = compose("evaluate", [*common, "degrader=awgn", "degrader.sigma=20", "metrics.samples=2",
                                        "metrics.center_crop=16"])
    degrader = evaluate(degrader_cfg)
    assert degrader["degradation/center_crop"] == 16
    assert {"degradation/kld_noiseflow", "degradation/kl_intensity"} <= set(degrader)
    assert "NoiseFlow" in degrader["labels"]["degradation/kld_noiseflow"]
    assert "getGaussianKernel" in degrader["labels"]["degradation/akld"]


def test_unclipped_awgn_sweep_reads_the_closed_form_input_psnr(compose, tiny_folders):
    """sigma = 50 unclipped: input PSNR = 20 log10(255 / 50) = 14.15 dB; clipping at 0 and 255 raises it."""
    common = ["data=folders", f"data.test={tiny_folders / 'test'}", "progress=false", "ckpt=identity",
              "metrics.lpips=null", "sweep.degrader=awgn", "sweep.parameter=sigma", "sweep.values=[50]"]
    unclipped = evaluate(compose("evaluate", [*common, "+sweep.options.clip=false"]))
    clipped = evaluate(compose("evaluate", common))
    assert unclipped["input/psnr"] == pytest.approx(20 * math.log10(255 / 50), abs=0.25)
    assert clipped["input/psnr"] > unclipped["input/psnr"] + 0.3
