"""KLD, AKLD and MMD: zero for identical inputs, positive otherwise, correctly ordered."""

import torch

from degrade_lab.metrics import AKLD, NoiseKLD, akld, gaussian_mmd, noise_kld


def quantize(x):
    return (x.clamp(0, 1) * 255).round() / 255


def noisy(clean, sigma, seed):
    return quantize(clean + sigma / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed)))


def test_identical_noise_scores_zero():
    clean = torch.rand(2, 3, 64, 64) * 0.6 + 0.2
    real = noisy(clean, 15, 0)
    assert torch.all(noise_kld(real, real, clean) == 0) and torch.all(akld(real, real, clean) == 0)


def test_awgn_levels_are_ordered_against_a_sigma_15_reference():
    clean = torch.rand(4, 3, 96, 96) * 0.6 + 0.2
    real = noisy(clean, 15, 0)
    kld = {s: float(noise_kld(noisy(clean, s, s + 1), real, clean).mean()) for s in (10, 15, 30)}
    akl = {s: float(akld(noisy(clean, s, s + 1), real, clean).mean()) for s in (10, 15, 30)}
    # the closed-form Gaussian KL(15 || 10) = 0.22 < KL(15 || 30) = 0.32 sets the order
    assert 0 < kld[15] < 0.02 < kld[10] < kld[30]
    assert 0 < akl[15] < akl[10] < akl[30]
    assert abs(kld[10] - 0.22) < 0.05 and abs(kld[30] - 0.32) < 0.05


def test_metric_classes_average_per_image():
    clean = torch.rand(3, 3, 32, 32)
    real, fake = noisy(clean, 15, 0), noisy(clean, 25, 1)
    kld_metric, akld_metric = NoiseKLD(), AKLD()
    for i in range(3):
        kld_metric.update(fake[i : i + 1], real[i : i + 1], clean[i : i + 1])
        akld_metric.update(fake[i : i + 1], real[i : i + 1], clean[i : i + 1])
    assert torch.allclose(kld_metric.compute(), noise_kld(fake, real, clean).mean())
    assert torch.allclose(akld_metric.compute(), akld(fake, real, clean).mean())


def test_mmd_is_zero_for_the_same_samples_and_grows_with_the_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, 50, generator=g)
    assert float(gaussian_mmd(a, a)) < 1e-6
    near = gaussian_mmd(a, torch.randn(10, 50, generator=g) + 0.2)
    far = gaussian_mmd(a, torch.randn(10, 50, generator=g) + 2.0)
    assert 0 < float(near) < float(far)
