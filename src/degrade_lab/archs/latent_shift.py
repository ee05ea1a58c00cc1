"""DeFlow's latent domain shift (Wolf et al., CVPR 2021, sec. 3.2, eq. 2-5): the clean domain's latent is
``z_x ~ N(0, I)``, the degraded domain's ``z_y = z_x + u`` with ``u ~ N(mu_u, M M^T)``, so

    p(z_y) = N(z_y; mu_u, I + M M^T)                     (eq. 4b)
    p(z_y | z_x) = N(z_y; z_x + mu_u, M M^T)             (eq. 5, the likelihood of a pair)

per spatial position, with ``mu_u`` (C) and ``M`` (C x C) shared over positions, ``mu_u`` initialised to zero and
``M`` to ``init_std`` times the identity. At ``init_std = 0`` (the authors' configurations, ``std_init_shift: 0.0``)
both domains start with the same distribution, but ``M = 0`` is a stationary point: the gradient of any function
of ``M M^T`` vanishes there, so ``M`` never leaves zero and the learned shift is its mean alone (measured: exactly
0 after 1,900 steps of ``deflow_cpu``). A small ``init_std`` lets the covariance learn. ``mode``:

* ``full``: ``M`` a full matrix (the paper; channels correlated);
* ``diagonal``: ``M`` diagonal (channels independent);
* ``none``: nothing learned (Table 4's ablation): both domains are N(0, I) in training and ``mu_u``, ``M`` are
  estimated afterwards from the two domains' encoded latents (:meth:`estimate`).

Densities are computed through the Cholesky factor of the covariance, in float64 for the small C x C
algebra and float32 or wider for the per-position terms.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODES = ("full", "diagonal", "none")


class LatentShift(nn.Module):
    """The shift ``u ~ N(mu_u, M M^T)`` of one latent group of ``channels`` channels."""

    def __init__(self, channels: int, mode: str = "full", init_std: float = 0.0):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"latent shift mode must be one of {MODES}, got {mode!r}")
        if init_std < 0:
            raise ValueError(f"the latent shift's init_std must be >= 0, got {init_std}")
        self.mode, self.channels = mode, channels
        if mode == "full":
            self.mean = nn.Parameter(torch.zeros(channels))
            self.matrix_weight = nn.Parameter(torch.eye(channels) * init_std)
        elif mode == "diagonal":
            self.mean = nn.Parameter(torch.zeros(channels))
            self.matrix_weight = nn.Parameter(torch.full((channels,), float(init_std)))
        else:  # estimated after training, stored with the checkpoint
            self.register_buffer("mean", torch.zeros(channels))
            self.register_buffer("matrix_weight", torch.zeros(channels, channels))

    def matrix(self) -> torch.Tensor:
        """M (C x C)."""
        return torch.diag(self.matrix_weight) if self.matrix_weight.dim() == 1 else self.matrix_weight

    def covariance(self) -> torch.Tensor:
        """Sigma_u = M M^T (C x C)."""
        matrix = self.matrix()
        return matrix @ matrix.T

    def log_prob(self, eps: torch.Tensor, degraded: torch.Tensor) -> torch.Tensor:
        """log p(eps) per sample: N(0, I) for clean samples, N(mu_u, I + M M^T) for degraded ones (eq. 4;
        ``mode="none"`` trains both as N(0, I)). ``eps``: ``B x C x H x W``; ``degraded``: ``B`` booleans."""
        eps = eps.float() if eps.dtype in (torch.float16, torch.bfloat16) else eps
        out = standard_log_prob(eps)
        if self.mode == "none" or not bool(degraded.any()):
            return out
        covariance = torch.eye(self.channels, dtype=torch.float64, device=eps.device) + self.covariance().double()
        shifted = gaussian_log_prob(eps[degraded], self.mean, covariance)
        return out.masked_scatter(degraded, shifted.to(out.dtype))

    def pair_log_prob(self, eps_degraded: torch.Tensor, eps_clean: torch.Tensor, jitter: float = 1e-4) -> torch.Tensor:
        """log p(z_y | z_x) per sample, eq. (5): N(z_y; z_x + mu_u, M M^T + jitter I). The jitter keeps the
        density finite while M is still near its zero initialisation."""
        covariance = self.covariance().double()
        covariance = covariance + jitter * torch.eye(self.channels, dtype=torch.float64, device=covariance.device)
        return gaussian_log_prob(eps_degraded - eps_clean, self.mean, covariance)

    def shift(self, eps: torch.Tensor, noise: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        """``eps + T (mu_u + M n)`` (eq. 8 with the authors' temperature): ``noise`` n ~ N(0, I) of ``eps``'s
        shape, ``temperature`` one value per sample."""
        matrix = self.matrix().to(eps.dtype)
        u = self.mean.to(eps.dtype).view(1, -1, 1, 1) + torch.einsum("ij,bjhw->bihw", matrix, noise.to(eps.dtype))
        return eps + temperature.to(eps.dtype).view(-1, 1, 1, 1) * u

    def unshift(self, eps: torch.Tensor, noise: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        """The reverse translation (degraded -> clean; the reference's section 3.4): a draw from the Gaussian
        conditional of the clean latent given the degraded one, ``z_x | z_y ~ N(A (z_y - mu_u), Sigma A)`` with
        ``Sigma = M M^T`` and ``A = (I + Sigma)^-1``, its spread scaled by ``temperature`` per sample (0: the
        conditional mean). ``noise``: standard normal of ``eps``'s shape."""
        channels = self.channels
        covariance = self.covariance().double()
        eye = torch.eye(channels, dtype=torch.float64, device=covariance.device)
        inverse = torch.linalg.inv(eye + covariance)
        values, vectors = torch.linalg.eigh(covariance @ inverse)  # symmetric: Sigma and A commute
        root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
        centred = eps - self.mean.to(eps.dtype).view(1, -1, 1, 1)
        mean = torch.einsum("ij,bjhw->bihw", inverse.to(eps.dtype), centred)
        spread = torch.einsum("ij,bjhw->bihw", root.to(eps.dtype), noise.to(eps.dtype))
        return mean + temperature.to(eps.dtype).view(-1, 1, 1, 1) * spread

    @torch.no_grad()
    def estimate(self, clean: torch.Tensor, degraded: torch.Tensor) -> None:
        """``mode="none"``: mu_u and M from encoded latents of the two domains (``N x C x H x W`` each):
        mu_u = E[z_y] - E[z_x], M = Cholesky factor of Cov[z_y] - Cov[z_x] (clipped to be PSD)."""
        if self.mode != "none":
            raise ValueError("only a latent shift trained without a learned shift (mode='none') is estimated")
        x, y = (t.double().permute(0, 2, 3, 1).reshape(-1, self.channels) for t in (clean, degraded))
        difference = torch.cov(y.T).reshape(self.channels, self.channels) - torch.cov(x.T).reshape(
            self.channels, self.channels)
        values, vectors = torch.linalg.eigh((difference + difference.T) / 2)
        root = vectors @ torch.diag(values.clamp_min(0).sqrt())
        self.mean.copy_((y.mean(0) - x.mean(0)).to(self.mean.dtype))
        self.matrix_weight.copy_(root.to(self.matrix_weight.dtype))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode}"


def standard_log_prob(eps: torch.Tensor) -> torch.Tensor:
    """log N(eps; 0, I) summed per sample."""
    return (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(dim=1)


def gaussian_log_prob(eps: torch.Tensor, mean: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """log N(eps[:, :, h, w]; mean, covariance) summed over positions, per sample (``covariance`` C x C)."""
    batch, channels = eps.shape[:2]
    cholesky = torch.linalg.cholesky(covariance)
    centred = (eps.double() - mean.double().view(1, -1, 1, 1)).permute(0, 2, 3, 1).reshape(-1, channels)
    whitened = torch.linalg.solve_triangular(cholesky, centred.T, upper=False)  # C x (B H W)
    positions = centred.shape[0] // batch
    log_det = 2 * torch.log(torch.diagonal(cholesky)).sum()
    per_position = -0.5 * (whitened.pow(2).sum(0) + log_det + channels * math.log(2 * math.pi))
    return per_position.view(batch, positions).sum(dim=1).to(eps.dtype if eps.dtype == torch.float64 else torch.float32)
