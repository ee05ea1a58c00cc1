"""VDIR (Soh & Cho, "Variational Deep Image Restoration", TIP 2022), the networks of Fig. 3.

Layer shapes follow the official code (seed-reference sec. 4.2); all convolutions 3x3 with 64 filters
unless stated.

* :class:`VDIREncoder` q(c|y): two 2x max-poolings, so the latent ``c`` is at 1/4 resolution with 4
  channels; heads give the mean and the log-variance (154,120 parameters).
* :class:`VDIRDecoder` p(y|c): the mirror image, reconstructing the degraded input (114,883).
* :class:`VDIRRestorer` f(y, c): ``c`` bilinearly resized to ``y``'s size and concatenated, a conv,
  ``groups`` residual-in-residual groups of ``blocks`` residual blocks (conv-ReLU-conv + skip, then a
  conv + skip), a conv with a long skip from the first conv, then either a conv to the residual
  image added to ``y`` (restoration, Fig. 3a; 2,073,795 parameters at N = D = 5) or a sub-pixel
  up-sampler and a conv (super-resolution, Fig. 3b).
* :class:`VDIREstimator` EST(c): conv-ReLU-conv on ``c``, bilinearly up-sampled x4 to a per-pixel map
  of the known degradation parameter (eq. 18).
* :class:`VDIR`: encoder + restorer (+ decoder, estimator for training); the inference network is
  encoder + restorer, 2,227,915 parameters at the paper's N = D = 5 ("about 2.2 M").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(in_channels: int, out_channels: int = 64) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class VDIREncoder(nn.Module):
    def __init__(self, in_channels: int = 3, latent_channels: int = 4, features: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            conv(in_channels, features), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            conv(features, features), nn.ReLU(inplace=True),
            conv(features, features), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            conv(features, features), nn.ReLU(inplace=True),
            conv(features, features),
        )
        self.mean = conv(features, latent_channels)
        self.log_variance = conv(features, latent_channels)

    def forward(self, degraded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of q(c|y), each ``B x latent x H/4 x W/4``."""
        features = self.body(degraded)
        return self.mean(features), self.log_variance(features)


class VDIRDecoder(nn.Module):
    def __init__(self, out_channels: int = 3, latent_channels: int = 4, features: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            conv(latent_channels, features), nn.Upsample(scale_factor=2, mode="nearest"), nn.ReLU(inplace=True),
            conv(features, features), nn.ReLU(inplace=True),
            conv(features, features), nn.Upsample(scale_factor=2, mode="nearest"), nn.ReLU(inplace=True),
            conv(features, features), nn.ReLU(inplace=True),
            conv(features, out_channels),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.body(latent)


class ResidualBlock(nn.Module):
    def __init__(self, features: int = 64):
        super().__init__()
        self.body = nn.Sequential(conv(features, features), nn.ReLU(inplace=True), conv(features, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``blocks`` residual blocks and a conv, with a skip around them (RIRBlock)."""

    def __init__(self, features: int = 64, blocks: int = 5):
        super().__init__()
        self.body = nn.Sequential(*(ResidualBlock(features) for _ in range(blocks)), conv(features, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VDIRRestorer(nn.Module):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, latent_channels: int = 4, features: int = 64,
                 groups: int = 5, blocks: int = 5, scale: int = 1):
        super().__init__()
        if scale not in (1, 2, 3, 4):
            raise ValueError(f"VDIR restores at scale 1, 2, 3 or 4, got {scale}")
        self.scale, self.latent_channels = scale, latent_channels
        self.head = conv(in_channels + latent_channels, features)
        self.body = nn.Sequential(*(ResidualGroup(features, blocks) for _ in range(groups)), conv(features, features))
        if scale == 1:
            self.upsampler: nn.Module = nn.Identity()
        else:  # sub-pixel convolution (Shi et al. 2016): one x2/x3 stage, two x2 stages for x4
            stages = [2, 2] if scale == 4 else [scale]
            layers: list[nn.Module] = []
            for factor in stages:
                layers += [conv(features, features * factor * factor), nn.PixelShuffle(factor)]
            self.upsampler = nn.Sequential(*layers)
        self.tail = conv(features, out_channels)

    def forward(self, degraded: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        latent = F.interpolate(latent, size=degraded.shape[-2:], mode="bilinear", align_corners=False)
        first = self.head(torch.cat([degraded, latent.to(degraded.dtype)], dim=1))
        features = first + self.body(first)
        out = self.tail(self.upsampler(features))
        return degraded + out if self.scale == 1 else out


class VDIREstimator(nn.Module):
    def __init__(self, latent_channels: int = 4, out_channels: int = 3, features: int = 64):
        super().__init__()
        self.body = nn.Sequential(conv(latent_channels, features), nn.ReLU(inplace=True), conv(features, out_channels))

    def forward(self, latent: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The estimated parameter map at ``size`` (the degraded image's)."""
        return F.interpolate(self.body(latent), size=size, mode="bilinear", align_corners=False)


class VDIR(nn.Module):
    """Encoder + restorer for inference (``forward(y) -> x_hat``, one sample of c, or its mean with
    ``sample=False``); the decoder and estimator are only used by training.

    ``use_encoder=False`` is the paper's ablation "restorer alone" (Table IX, first row; the naive
    blind model): no encoder, decoder or estimator, and the restorer's latent input is all zeros, so
    the network is the same restorer with nothing to condition on.

    ``restorer``: another restoration network f(y, c) in place of the residual-in-residual one, called as
    ``restorer(y, c)`` with ``c`` at 1/4 resolution; Table XI puts FFDNet there
    (:class:`~degrade_lab.archs.ffdnet.FFDNet` with ``condition_channels = latent_channels``: the latent
    replaces its noise-level map)."""

    def __init__(self, in_channels: int = 3, latent_channels: int = 4, features: int = 64, groups: int = 5,
                 blocks: int = 5, scale: int = 1, estimator_channels: int = 3, use_encoder: bool = True,
                 restorer: nn.Module | None = None):
        super().__init__()
        self.scale, self.latent_channels, self.use_encoder = scale, latent_channels, use_encoder
        if restorer is None:
            restorer = VDIRRestorer(in_channels, in_channels, latent_channels, features, groups, blocks, scale)
        elif getattr(restorer, "scale", 1) != scale:
            raise ValueError(f"VDIR at scale {scale} needs a restorer at that scale; "
                             f"{type(restorer).__name__} restores at scale {getattr(restorer, 'scale', 1)}")
        elif getattr(restorer, "condition_channels", latent_channels) != latent_channels:
            raise ValueError(f"the restorer takes {restorer.condition_channels} condition channels, VDIR's "
                             f"latent has {latent_channels}: set condition_channels = latent_channels")
        self.restorer = restorer
        if use_encoder:
            self.encoder = VDIREncoder(in_channels, latent_channels, features)
            self.decoder = VDIRDecoder(in_channels, latent_channels, features)
        else:
            self.encoder = self.decoder = None
        self.estimator = (VDIREstimator(latent_channels, estimator_channels, features)
                          if estimator_channels and use_encoder else None)
        self.sample_latent = True

    def posterior(self, degraded: torch.Tensor):
        return self.encoder(degraded)

    @staticmethod
    def reparameterize(mean: torch.Tensor, log_variance: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_variance) * noise

    def forward(self, degraded: torch.Tensor, sample: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        height, width = degraded.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4  # the latent is at 1/4 resolution
        padded = F.pad(degraded, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else degraded
        if self.encoder is None:
            latent = padded.new_zeros(padded.shape[0], self.latent_channels, padded.shape[-2] // 4,
                                      padded.shape[-1] // 4)
            return self.restorer(padded, latent)[..., : height * self.scale, : width * self.scale]
        mean, log_variance = self.encoder(padded)
        sample = self.sample_latent if sample is None else sample
        latent = self.reparameterize(mean, log_variance, generator) if sample else mean
        restored = self.restorer(padded, latent)
        return restored[..., : height * self.scale, : width * self.scale]

    def inference_parameters(self) -> int:
        return sum(p.numel() for m in (self.encoder, self.restorer) if m is not None for p in m.parameters())
