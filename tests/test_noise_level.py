"""The blind noise estimator (Liu, Tanaka & Okutomi 2013) against noise of known level, and `estimate-noise`."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from degrade_lab.metrics.noise_level import (
    Patches,
    estimate,
    gradient_operator,
    noise_level,
    noise_level_function,
    patches,
    texture_threshold,
)
from degrade_lab.utils.io import list_images, read_image, write_png
from test_cli import cli


@pytest.fixture(scope="module")
def photos():
    """The builtin clean tiles (source and test): real photographs, 256 x 256."""
    from degrade_lab.data.builtin import ensure_builtin

    root = ensure_builtin("builtin")
    return [read_image(f) for f in list_images(root / "source") + list_images(root / "test" / "clean")]


def test_gradient_operator_closed_form():
    """D has 2 x 7 x 5 central differences, each with two entries of 1/2: tr(D^T D) = 70 / 2 = 35. Its null space
    is the patches constant on each of the 4 (row parity, column parity) classes, so rank(D^T D) = 49 - 4."""
    operator = gradient_operator(7)
    gram = operator.T @ operator
    assert operator.shape == (70, 49) and float(gram.trace()) == pytest.approx(35.0)
    assert int(torch.linalg.matrix_rank(gram)) == 45


def test_texture_threshold_keeps_flat_noise_patches():
    """Monte Carlo: for white noise of std 1, E||D n||^2 = tr(D^T D) = 35 exactly, and so is the mean of the
    paper's gamma approximation (eq. 17, shape r / 2, scale 2 tr / r); the threshold, its 1 - 1e-6 quantile, keeps
    every flat patch of 400k, while twice the noise variance would exceed it for most of them."""
    from scipy.stats import gamma

    operator = gradient_operator(7).float()
    noise = torch.randn(400_000, 49, generator=torch.Generator().manual_seed(0))
    energy = ((noise @ operator.T) ** 2).sum(1)
    assert float(energy.mean()) == pytest.approx(35.0, rel=0.01)
    assert gamma.mean(45 / 2, scale=2 * 35 / 45) == pytest.approx(35.0)
    threshold = texture_threshold(7)
    assert threshold == pytest.approx(gamma.ppf(1 - 1e-6, 45 / 2, scale=2 * 35 / 45))
    assert float((energy > threshold).float().mean()) < 1e-4
    assert float((4 * energy > threshold).float().mean()) > 0.5  # a patch of std 2 is textured


@pytest.mark.parametrize("sigma", [5, 15, 30, 50])
def test_white_noise_level_recovered_within_10_percent(photos, sigma):
    generator = torch.Generator().manual_seed(sigma)
    noisy = [image + torch.randn(image.shape, generator=generator) * sigma / 255 for image in photos]
    pooled = noise_level(Patches.cat([patches(image) for image in noisy]))
    assert torch.allclose(pooled, torch.full((3,), float(sigma)), rtol=0.1), pooled
    single = torch.stack([estimate(image) for image in noisy[:4]])  # one 256 x 256 image alone
    assert float((single.median() - sigma).abs()) < 0.1 * sigma + 0.5, single


def test_poisson_gaussian_noise_level_function_recovered(photos):
    """Variance shot * x + read: the estimated std per intensity band follows sqrt(shot * x + read), and the
    least-squares fit gives back shot and read."""
    from degrade_lab.degradations.noise import PoissonGaussian

    shot, read = 0.01, 1e-3
    make = PoissonGaussian(shot=shot, read=read, clip=False)
    noisy = [make(image[None], torch.Generator().manual_seed(i))[0] for i, image in enumerate(photos)]
    function = noise_level_function(Patches.cat([patches(image) for image in noisy]), bins=8)
    expected = (shot * function.intensity / 255 + read).sqrt() * 255
    assert torch.isfinite(function.sigma).all()
    assert torch.allclose(function.sigma, expected.expand(3, -1), rtol=0.1), (function.sigma, expected)
    fitted_shot, fitted_read = function.poisson_gaussian()
    assert torch.allclose(fitted_shot, torch.full((3,), shot), rtol=0.1), fitted_shot
    assert torch.allclose(fitted_read, torch.full((3,), read), rtol=0.3), fitted_read


def test_correlated_noise_reads_low_and_rises_with_the_scale(photos):
    """Noise blurred by a 3 x 3 box (its per-pixel std: sigma / 3) keeps little power at the highest
    frequencies, where the smallest eigenvalue looks: the estimate is far below its std, and rises when the
    images are box-averaged (the multi-scale reading of estimate-noise). White noise reads the same at x1 and x2."""
    generator = torch.Generator().manual_seed(1)
    blurred = [image + F.avg_pool2d(torch.randn(1, 3, 258, 258, generator=generator), 3, stride=1)[0] * 45 / 255
               for image in photos[:8]]
    std = 45 / 3
    at_1 = noise_level(Patches.cat([patches(image) for image in blurred]))
    at_4 = noise_level(Patches.cat([patches(F.avg_pool2d(image[None], 4)[0]) for image in blurred])) * 4
    assert (at_1 < 0.5 * std).all() and (at_4 > 2 * at_1).all(), (at_1, at_4)
    white = [image + torch.randn(image.shape, generator=generator) * 15 / 255 for image in photos[:8]]
    at_2 = noise_level(Patches.cat([patches(F.avg_pool2d(image[None], 2)[0]) for image in white])) * 2
    assert torch.allclose(at_2, torch.full((3,), 15.0), rtol=0.1), at_2


def test_patch_subset_is_seeded_and_unbiased(photos):
    noisy = photos[0] + torch.randn(photos[0].shape, generator=torch.Generator().manual_seed(2)) * 20 / 255
    first = patches(noisy, max_patches=20_000, generator=torch.Generator().manual_seed(5))
    again = patches(noisy, max_patches=20_000, generator=torch.Generator().manual_seed(5))
    assert first.count == 20_000 and torch.equal(first.values, again.values)
    every = patches(noisy)
    assert every.count == 250 * 250
    # patch k of the full set is the 7 x 7 window at (k // 250, k % 250), row-major, channel by channel
    k = 250 * 17 + 42
    torch.testing.assert_close(every.values[1, k, :], noisy[1, 17:24, 42:49].flatten() * 255)
    assert torch.allclose(noise_level(first), noise_level(every), rtol=0.05)


def test_estimate_noise_cli(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "noisy"
    for i in range(3):  # smooth gradients + N(0, 12^2), 8-bit
        y, x = np.mgrid[0:96, 0:128]
        clean = np.stack([40 + x, 60 + y, 200 - x / 2], axis=-1).astype(float)
        write_png(folder / f"n{i}.png", torch.from_numpy(np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255) / 255)
                  .permute(2, 0, 1).float())
    out = tmp_path / "noise.json"
    result = cli("estimate-noise", folder, "--json", out, "--per-image", "--bins", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| R |" in result.stdout and "noise level function" in result.stdout and str(out) in result.stdout
    written = json.loads(out.read_text())
    assert written["images"] == 3 and len(written["per_image"]) == 3
    assert all(abs(written["sigma"][c] - 12) < 1.2 for c in "RGB"), written["sigma"]  # rounding to 8 bits: +1/12
    assert set(written["sigma_by_scale"]) == {"1", "2", "4"}
    assert len(written["noise_level_function"]["intensity"]) == 4
    inside = cli("estimate-noise", folder, "--json", folder / "n.json")
    assert inside.returncode == 2 and "inside the input folder" in inside.stderr and not (folder / "n.json").exists()
    (tmp_path / "empty").mkdir()
    empty = cli("estimate-noise", tmp_path / "empty", "--json", out)
    assert empty.returncode == 2 and "holds no images" in empty.stderr
