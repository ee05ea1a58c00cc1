"""KL divergence between diagonal Gaussians parameterised by mean and log standard deviation."""

from __future__ import annotations

import torch


def gaussian_kl(
    mean_q: torch.Tensor, logstd_q: torch.Tensor, mean_p: torch.Tensor | None = None, logstd_p: torch.Tensor | None = None
) -> torch.Tensor:
    """Elementwise KL( N(mean_q, exp(logstd_q)^2) || N(mean_p, exp(logstd_p)^2) ).

    ``mean_p``/``logstd_p`` default to the standard normal. Closed form:
    ``log(s_p / s_q) + (s_q^2 + (m_q - m_p)^2) / (2 s_p^2) - 1/2``.
    """
    if mean_p is None:
        mean_p = torch.zeros_like(mean_q)
    if logstd_p is None:
        logstd_p = torch.zeros_like(logstd_q)
    var_ratio = torch.exp(2 * (logstd_q - logstd_p))
    mean_term = (mean_q - mean_p).pow(2) * torch.exp(-2 * logstd_p)
    return logstd_p - logstd_q + 0.5 * (var_ratio + mean_term) - 0.5
