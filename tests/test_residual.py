"""The residual statistics that tell a colour cast and content changes from noise (closed forms)."""

import math

import pytest
import torch

from degrade_lab.metrics.residual import ResidualStatistics, residual_statistics


def test_colour_cast_is_the_mean_and_has_no_spread():
    clean = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    shift = torch.tensor([10.0, -5.0, 0.0]).view(1, 3, 1, 1) / 255
    statistics = residual_statistics(clean + shift, clean)
    torch.testing.assert_close(statistics["mean"], torch.tensor([[10.0, -5.0, 0.0]] * 2), atol=1e-3, rtol=0)
    assert float(statistics["lowpass_std"].max()) < 1e-3 and float(statistics["highpass_std"].max()) < 1e-3


def test_white_noise_splits_as_the_gaussian_kernel_predicts():
    """For white noise of std s blurred by a Gaussian of std b (b = 3 px): the low-pass std is s * sqrt(sum g^2)
    = s / (2 b sqrt(pi)), the high-pass std s * sqrt(1 - 2 g(0) + sum g^2) with g(0) = 1 / (2 pi b^2)."""
    s, b = 20.0, 3.0
    clean = torch.full((4, 3, 256, 256), 0.5)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1)) * s / 255
    statistics = residual_statistics(clean + noise, clean)
    low = s / (2 * b * math.sqrt(math.pi))
    high = s * math.sqrt(1 - 2 / (2 * math.pi * b**2) + 1 / (4 * math.pi * b**2))
    assert float(statistics["lowpass_std"].mean()) == pytest.approx(low, rel=0.05)
    assert float(statistics["highpass_std"].mean()) == pytest.approx(high, rel=0.02)
    assert float(statistics["mean"].abs().max()) < 0.5


def test_metric_averages_synthetic_and_real_over_batches():
    clean = torch.full((2, 3, 32, 32), 0.5)
    metric = ResidualStatistics()
    metric.update(clean + 4 / 255, clean - 2 / 255, clean)
    metric.update(clean + 8 / 255, clean - 2 / 255, clean)
    values = metric.compute()
    assert float(values["residual_mean_r"]) == pytest.approx(6.0, abs=1e-3)
    assert float(values["real_residual_mean_b"]) == pytest.approx(-2.0, abs=1e-3)
    assert set(values) == {f"{side}residual_{key}" for side in ("", "real_")
                           for key in ("mean_r", "mean_g", "mean_b", "lowpass_std", "highpass_std")}
