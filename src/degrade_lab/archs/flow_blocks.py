"""Invertible blocks of a conditional normalizing flow (Glow / SRFlow / DeFlow), one contract for all.

Every block maps a feature map ``x`` (and, where it is conditional, the conditioning features ``cond``)
one way and back:

* ``forward(x, cond) -> (y, logdet)``: the normalizing direction (image -> latent), with ``logdet`` the
  log |det dy/dx| per sample (shape ``B``);
* ``reverse(y, cond) -> x``: the exact inverse (latent -> image), used to sample.

The blocks (DeFlow sec. 4.1, Glow sec. 3, SRFlow sec. 3):

* :class:`ActNorm`: per-channel shift and log-scale, initialised from the first training batch so that its
  output has zero mean and unit variance per channel (Glow sec. 3.1);
* :class:`InvertibleConv1x1`: a learned invertible channel mixing, LU-parametrised so that its log-determinant
  is a sum of logs (Glow sec. 3.2, eq. 10);
* :class:`AffineInjector` and :class:`ConditionalCoupling`: an elementwise affine map whose shift and scale come
  from ``cond`` alone, and one whose shift and scale for half of the channels come from the other half and
  ``cond`` (SRFlow sec. 3.3; RealNVP). Scales are ``sigmoid(s + 2) + eps``, so every block starts near the
  identity and no scale reaches zero. DeFlow applies both "in their inverted form" compared with SRFlow
  (DeFlow sec. 4.1; ``multReverse`` in the authors' code): the normalizing direction divides, sampling
  multiplies;
* :class:`Squeeze`: space to channels (2x2 blocks), log-det 0;
* :class:`SplitPrior`: factors half of the channels out at the end of a level, normalising them by a Gaussian
  whose mean and log-std a zero-initialised convolution reads from the channels that stay (Glow sec. 3 /
  RealNVP's multi-scale architecture); what it returns for the factored channels is the standardised
  ``eps = (z2 - mean) / std``, the variable DeFlow's latent domain shift acts on.

Written by hand: FrEIA, the invertible-network library (last release 0.2, 2022), has ActNorm and couplings
with exp-of-soft-clamped scales and fixed 1x1 convolutions, but not the LU-parametrised learned 1x1
convolution, the ``sigmoid(s + 2)`` scales or the inverted form that DeFlow's layers (and its released
weights' layout) need.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in at least fp32 (scales, log-determinants and densities are never computed in bf16 / fp16)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _pixels(x: torch.Tensor) -> int:
    return x.shape[2] * x.shape[3]


class ActNorm(nn.Module):
    """``y = (x + bias) * exp(log_scale)`` per channel; data-dependent initialisation on the first forward
    pass in training mode (zero mean, unit std per channel over the batch). log|det| = H W sum(log_scale)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        x = _wide(x)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = self.log_scale.sum() * _pixels(x)
        return y, logdet.expand(x.shape[0])

    def reverse(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleConv1x1(nn.Module):
    """A 1x1 convolution by ``W = P L (U + diag(sign * exp(log_s)))`` (Glow eq. 10): P a fixed permutation, L
    unit lower triangular, U strictly upper triangular; initialised from a random rotation (seeded by the
    global generator). log|det| = H W sum(log_s)."""

    def __init__(self, channels: int):
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))[0]
        permutation, lower, upper = torch.linalg.lu(rotation)
        diagonal = torch.diagonal(upper)
        self.register_buffer("permutation", permutation.float())
        self.register_buffer("sign", torch.sign(diagonal).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(diagonal.abs()).float())

    def weight(self) -> torch.Tensor:
        eye = torch.eye(len(self.log_s), device=self.log_s.device, dtype=self.log_s.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.permutation @ lower @ upper

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.weight().to(x.dtype)
        y = F.conv2d(x, weight[:, :, None, None])
        return y, (self.log_s.sum() * _pixels(x)).expand(x.shape[0])

    def reverse(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        inverse = torch.linalg.inv(self.weight().double()).to(y.dtype)
        return F.conv2d(y, inverse[:, :, None, None])


class ZeroConv2d(nn.Module):
    """A 3x3 convolution initialised to output zero, times ``exp(3 * log_scale)`` per channel (Glow's
    ``Conv2dZeros``): the last layer of every shift / scale network, so that each block starts as the
    identity."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.log_scale = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.exp(self.log_scale * 3.0)


class ConvActNorm(nn.Module):
    """Convolution without bias followed by an (unconditional) ActNorm: the hidden layers of Glow's networks."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        nn.init.normal_(self.conv.weight, 0.0, 0.05)
        self.norm = ActNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))[0]


def shift_scale_network(in_channels: int, out_channels: int, hidden: int) -> nn.Sequential:
    """3x3 conv + ActNorm, ReLU, 1x1 conv + ActNorm, ReLU, zero-initialised 3x3 conv (SRFlow's ``F``)."""
    return nn.Sequential(ConvActNorm(in_channels, hidden, 3), nn.ReLU(inplace=False),
                         ConvActNorm(hidden, hidden, 1), nn.ReLU(inplace=False), ZeroConv2d(hidden, out_channels))


def shift_and_scale(h: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved network output -> (shift, scale = sigmoid(s + 2) + eps), computed in fp32."""
    h = _wide(h)
    return h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0) + eps


class AffineInjector(nn.Module):
    """Every channel's shift t and scale s from the conditioning alone (SRFlow's affine injector), in DeFlow's
    inverted form: normalizing ``y = x / s - t`` (log|det| = -sum log s), sampling ``x = (y + t) * s``."""

    def __init__(self, channels: int, cond_channels: int, hidden: int = 64, eps: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.net = shift_scale_network(cond_channels, 2 * channels, hidden)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, scale = shift_and_scale(self.net(cond), self.eps)
        y = _wide(x) / scale - shift
        return y.to(x.dtype), -torch.log(scale).sum(dim=(1, 2, 3))

    def reverse(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = shift_and_scale(self.net(cond), self.eps)
        return ((_wide(y) + shift) * scale).to(y.dtype)


class ConditionalCoupling(nn.Module):
    """The conditional affine coupling: the first ``channels // 2`` channels pass unchanged; the shift and scale
    of the rest come from them and the conditioning; DeFlow's inverted form as in :class:`AffineInjector`."""

    def __init__(self, channels: int, cond_channels: int, hidden: int = 64, eps: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.passed = channels // 2
        self.net = shift_scale_network(self.passed + cond_channels, 2 * (channels - self.passed), hidden)

    def _shift_scale(self, kept: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the first convolution reads cat(kept, cond); as the sum of its two parts' convolutions it is the same map
        # without copying the wide conditioning into a concatenation every step (and without a convolution over
        # an odd channel count, which oneDNN runs far below its speed on 320)
        first = self.net[0]
        weight = first.conv.weight
        hidden = (F.conv2d(kept, weight[:, :self.passed], padding=1)
                  + F.conv2d(cond, weight[:, self.passed:], padding=1))
        return shift_and_scale(self.net[1:](first.norm(hidden)[0]), self.eps)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept, changed = x[:, :self.passed], x[:, self.passed:]
        shift, scale = self._shift_scale(kept, cond)
        changed = (_wide(changed) / scale - shift).to(x.dtype)
        return torch.cat([kept, changed], dim=1), -torch.log(scale).sum(dim=(1, 2, 3))

    def reverse(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        kept, changed = y[:, :self.passed], y[:, self.passed:]
        shift, scale = self._shift_scale(kept, cond)
        return torch.cat([kept, ((_wide(changed) + shift) * scale).to(y.dtype)], dim=1)


class FlowStep(nn.Module):
    """One DeFlow flow step (sec. 4.1): ActNorm, invertible 1x1 convolution, conditional affine coupling,
    affine injector (``cond_channels=0``: ActNorm and the 1x1 convolution only, the steps that open a level)."""

    def __init__(self, channels: int, cond_channels: int = 0, hidden: int = 64, eps: float = 1e-4):
        super().__init__()
        layers: list[nn.Module] = [ActNorm(channels), InvertibleConv1x1(channels)]
        if cond_channels:
            layers += [ConditionalCoupling(channels, cond_channels, hidden, eps),
                       AffineInjector(channels, cond_channels, hidden, eps)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = _wide(x.new_zeros(x.shape[0]))
        for layer in self.layers:
            x, step = layer(x, cond)
            logdet = logdet + _wide(step)
        return x, logdet

    def reverse(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.reverse(y, cond)
        return y


class Squeeze(nn.Module):
    """``B x C x H x W`` -> ``B x 4C x H/2 x W/2`` (2x2 blocks to channels, Glow's order; torch's pixel
    unshuffle), log|det| = 0."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return F.pixel_unshuffle(x, 2), _wide(x.new_zeros(x.shape[0]))

    def reverse(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return F.pixel_shuffle(y, 2)


class SplitPrior(nn.Module):
    """Factor out the last ``channels - kept`` channels: ``eps = (z2 - mean) / (exp(log_std) + 1e-6)`` with mean
    and log-std from a zero-initialised convolution of the kept channels (the reference's split; no
    conditioning). As a bijection (z1, z2) -> (z1, eps): log|det| = -sum log(exp(log_std) + 1e-6)."""

    def __init__(self, channels: int, kept: int | None = None):
        super().__init__()
        self.kept = channels // 2 if kept is None else kept
        self.prior = ZeroConv2d(self.kept, 2 * (channels - self.kept))

    def _mean_std(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = _wide(self.prior(kept))
        return h[:, 0::2], torch.exp(h[:, 1::2]) + 1e-6

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` -> (kept channels, eps of the factored ones, log|det|)."""
        kept, factored = x[:, :self.kept], x[:, self.kept:]
        mean, std = self._mean_std(kept)
        eps = (_wide(factored) - mean) / std
        return kept, eps, -torch.log(std).sum(dim=(1, 2, 3))

    def reverse(self, kept: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        mean, std = self._mean_std(kept)
        return torch.cat([kept, (_wide(eps) * std + mean).to(kept.dtype)], dim=1)
