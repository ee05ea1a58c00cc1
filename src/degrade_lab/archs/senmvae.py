"""SeNM-VAE (Zheng et al., CVPR 2024), the network of the official ``SIDD/models/network_senmvae.py``.

Three encoders without shared weights, each a 1x1 conv (3 -> 64) and a stack of ESRGAN dense blocks
(``levels=(2, 4)``: two blocks at full resolution, a 2x down-sampler, four blocks at 1/2; every module's
output is one latent level, 7 in all):

* ``clean`` (H) encodes the clean image, ``content`` (L) the degraded image, both for the content latent
  z (64 channels per level);
* ``noise`` (N) encodes the degraded image for the degradation latent z_n (16 channels per level).

Top-down over the levels, a decoder state d (zero at the top) is refined (sec. 3.2, Fig. 2):
q(z|H) and q(z|L) are Gaussians read from d + the level's features; d += proj(z); on the degraded
path the posterior q(z_n|.) reads [d + noise features, sigma] and the prior p(z_n|z, sigma) reads
[d, sigma], where sigma is the degradation level as a constant extra channel; d += proj(z_n); d passes
the level's dense block (or the 2x up-sampler at the down-sampling level). A head (conv, ReLU, conv)
gives the image. Decoding z alone reconstructs the clean image; z and z_n the degraded one.

At the official defaults (64 features, growth 32, ``levels=(2, 4)``, 16 noise channels) the network has
19,955,739 parameters; the noise-level estimator :class:`NoiseLevelNet` 2,920,897.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from degrade_lab.archs.rrdbnet import DenseBlock
from degrade_lab.losses.kl import gaussian_kl
from degrade_lab.utils.noise_field import normal_field
from degrade_lab.utils.tiling import tiled


class GaussianBlock(nn.Module):
    """Mean and log-std heads, each a dense block and a 1x1 conv whose weight starts at zero (so every
    posterior / prior starts as N(bias, exp(bias)))."""

    def __init__(self, in_channels: int, out_channels: int, growth: int = 32):
        super().__init__()
        self.mean = nn.Sequential(DenseBlock(in_channels, growth), nn.Conv2d(in_channels, out_channels, 1))
        self.logstd = nn.Sequential(DenseBlock(in_channels, growth), nn.Conv2d(in_channels, out_channels, 1))
        for head in (self.mean, self.logstd):
            nn.init.zeros_(head[-1].weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(x), self.logstd(x)


class DownSample(nn.Module):
    """Pixel unshuffle (2) and a 3x3 conv back to ``features`` channels."""

    def __init__(self, features: int):
        super().__init__()
        self.conv = nn.Conv2d(features * 4, features, 3, padding=1)

    def forward(self, x):
        return self.conv(F.pixel_unshuffle(x, 2))


class UpSample(nn.Module):
    """Pixel shuffle (2) and a 3x3 conv back to ``features`` channels."""

    def __init__(self, features: int):
        super().__init__()
        self.conv = nn.Conv2d(features // 4, features, 3, padding=1)

    def forward(self, x):
        return self.conv(F.pixel_shuffle(x, 2))


def _kl(q: tuple[torch.Tensor, torch.Tensor], p: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Per-image KL(q || p) of one level, averaged over channels and pixels, computed in fp32: under
    bf16 autocast the closed form's cancellations gave negative KLs of several nats."""
    return gaussian_kl(q[0].float(), q[1].float(), p[0].float(), p[1].float()).mean(dim=(1, 2, 3))


def _zero_conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 1)
    nn.init.zeros_(conv.weight)
    return conv


class Encoder(nn.Module):
    """1x1 conv, then dense blocks per resolution group with a down-sampler between groups; returns the
    output of every module (one feature map per latent level, finest first)."""

    def __init__(self, levels: Sequence[int], features: int = 64, growth: int = 32):
        super().__init__()
        self.head = nn.Conv2d(3, features, 1)
        modules: list[nn.Module] = []
        for group, count in enumerate(levels):
            if group:
                modules.append(DownSample(features))
            modules += [DenseBlock(features, growth) for _ in range(count)]
        self.stages = nn.ModuleList(modules)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x, outputs = self.head(image), []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class SeNMVAE(nn.Module):
    def __init__(self, features: int = 64, levels: Sequence[int] = (2, 4), noise_channels: int = 16,
                 growth: int = 32):
        super().__init__()
        self.levels, self.features, self.noise_channels = tuple(levels), features, noise_channels
        self.clean_encoder = Encoder(levels, features, growth)
        self.content_encoder = Encoder(levels, features, growth)
        self.noise_encoder = Encoder(levels, features, growth)
        kinds = [type(m).__name__ for m in self.clean_encoder.stages]
        self.num_levels = len(kinds)
        self.q_z_clean = nn.ModuleList(GaussianBlock(features, features, growth) for _ in kinds)
        self.q_z_degraded = nn.ModuleList(GaussianBlock(features, features, growth) for _ in kinds)
        self.project_z = nn.ModuleList(_zero_conv1x1(features, features) for _ in kinds)
        self.q_noise = nn.ModuleList(GaussianBlock(features + 1, noise_channels, growth) for _ in kinds)
        self.p_noise = nn.ModuleList(GaussianBlock(features + 1, noise_channels, growth) for _ in kinds)
        self.project_noise = nn.ModuleList(_zero_conv1x1(noise_channels, features) for _ in kinds)
        self.decoder_blocks = nn.ModuleList(
            UpSample(features) if kind == "DownSample" else DenseBlock(features, growth) for kind in kinds
        )
        self.out = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(features, 3, 3, padding=1))

    @staticmethod
    def sample(mean: torch.Tensor, logstd: torch.Tensor, temperature: torch.Tensor | float = 1.0,
               generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
        """A reparameterised sample; ``temperature`` scales the whole sample, mean included (the
        official code's convention, seed-reference gotcha 2). ``eps``: the standard-normal noise, when
        the caller addresses it by pixel position (tiled synthesis)."""
        noise = eps if eps is not None else torch.randn(mean.shape, generator=generator, device=mean.device,
                                                        dtype=mean.dtype)
        sample = mean + torch.exp(logstd) * noise.to(mean)
        if isinstance(temperature, torch.Tensor):
            temperature = temperature.view(-1, 1, 1, 1).to(sample)
        return sample * temperature

    def decode(self, clean_features: list[torch.Tensor] | None, degraded_features: list[torch.Tensor] | None,
               noise_features: list[torch.Tensor] | None = None, level: torch.Tensor | None = None,
               use_clean_posterior: torch.Tensor | None = None, with_noise: bool = False,
               temperature: torch.Tensor | float = 1.0, generator: torch.Generator | None = None,
               eps: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict:
        """One top-down pass.

        ``clean_features`` / ``degraded_features``: encoder outputs for q(z|H) / q(z|L) (either may be
        ``None``); z comes from q(z|H) where ``use_clean_posterior`` is true (per image), else q(z|L).
        ``with_noise``: add z_n (the degraded reconstruction), from its posterior when ``noise_features``
        are given, else from the prior p(z_n | z, level) at ``temperature``. ``level``: ``B`` degradation
        levels (std of the noise, [0, 1] units). ``eps``: per level, the standard-normal noise of the z
        and z_n samples (shapes from :meth:`latent_shapes`); drawn from ``generator`` when omitted. Returns ``image`` and the per-image KL terms ``kl_z``
        (KL(q(z|L) || q(z|H)), when both posteriors exist) and ``kl_noise`` (KL(q(z_n) || p(z_n))),
        each averaged over channels and pixels per level and summed over levels.
        """
        reference = (clean_features or degraded_features)[-1]
        batch = reference.shape[0]
        d = torch.zeros_like(reference)
        kl_z = reference.new_zeros(batch)
        kl_noise = reference.new_zeros(batch)
        for i in reversed(range(self.num_levels)):
            q_clean = self.q_z_clean[i](d + clean_features[i]) if clean_features is not None else None
            q_degraded = self.q_z_degraded[i](d + degraded_features[i]) if degraded_features is not None else None
            if q_clean is not None and q_degraded is not None:
                kl_z = kl_z + _kl(q_degraded, q_clean)
                choose = (torch.ones(batch, dtype=torch.bool, device=d.device) if use_clean_posterior is None
                          else use_clean_posterior.to(d.device).bool()).view(-1, 1, 1, 1)
                mean = torch.where(choose, q_clean[0], q_degraded[0])
                logstd = torch.where(choose, q_clean[1], q_degraded[1])
            else:
                mean, logstd = q_clean if q_clean is not None else q_degraded
            eps_z, eps_noise = eps[i] if eps is not None else (None, None)
            d = d + self.project_z[i](self.sample(mean, logstd, generator=generator, eps=eps_z))
            if with_noise:
                if level is None:
                    raise ValueError("decoding the degraded image needs the degradation level")
                level_map = level.to(d).view(-1, 1, 1, 1).expand(batch, 1, *d.shape[-2:])
                prior = self.p_noise[i](torch.cat([d, level_map], dim=1))
                if noise_features is not None:
                    posterior = self.q_noise[i](torch.cat([d + noise_features[i], level_map], dim=1))
                    kl_noise = kl_noise + _kl(posterior, prior)
                    noise = self.sample(*posterior, generator=generator, eps=eps_noise)
                else:
                    noise = self.sample(*prior, temperature=temperature, generator=generator, eps=eps_noise)
                d = d + self.project_noise[i](noise)
            d = self.decoder_blocks[i](d)
        return {"image": self.out(d), "kl_z": kl_z, "kl_noise": kl_noise}

    def translate(self, clean: torch.Tensor, level: torch.Tensor, temperature: torch.Tensor | float = 1.0,
                  generator: torch.Generator | None = None,
                  eps: list[tuple[torch.Tensor, torch.Tensor]] | None = None, degrade: bool = True,
                  with_clean: bool = False) -> torch.Tensor:
        """Clean -> degraded (C2N, sec. 3.2 "Degradation generation"): z ~ q(z|H), z_n ~ p(z_n | z, level)
        at ``temperature``, decoded by p(y | z, z_n). ``degrade=False``: the same z decoded without z_n, the
        model's clean rendering of the content (p(x | z)). ``with_clean`` (with ``degrade=True``): that rendering
        too, concatenated after the output on the channel axis (one content encoding for both; needs ``eps`` or
        the two decodings draw different z)."""
        features = self.clean_encoder(clean)
        out = self.decode(features, None, level=level, with_noise=degrade, temperature=temperature,
                          generator=generator, eps=eps)["image"]
        if with_clean and degrade:
            rendered = self.decode(features, None, level=level, with_noise=False, temperature=temperature,
                                   generator=generator, eps=eps)["image"]
            out = torch.cat([out, rendered], dim=1)
        return out

    def latent_shapes(self, batch: int, height: int, width: int) -> list[tuple[tuple, tuple]]:
        """Per level, the shapes of the z and z_n samples for ``height x width`` images."""
        shapes, factor = [], 1
        for stage in self.clean_encoder.stages:
            if isinstance(stage, DownSample):
                factor *= 2
            size = (height // factor, width // factor)
            shapes.append(((batch, self.features, *size), (batch, self.noise_channels, *size)))
        return shapes

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (one factor 2 per down-sampling stage)."""
        return 2 ** (len(self.levels) - 1)

    @property
    def receptive_radius(self) -> int:
        """Pixels a translated pixel depends on in every direction (an upper bound, a multiple of
        :attr:`multiple`): the clean encoder down to the top level, then, per level, the posterior
        head, the noise prior head and the decoder block, and the output head. A dense block is five
        3x3 convs deep. Tiles need this much context."""
        radius, factor = 0, 1
        for stage in self.clean_encoder.stages:  # encoder, finest first
            if isinstance(stage, DownSample):
                factor *= 2
                radius += factor
            else:
                radius += 5 * factor
        for block in reversed(self.decoder_blocks):  # top-down: q(z|.) head, p(z_n|.) head, decoder block
            radius += 2 * 5 * factor
            if isinstance(block, UpSample):
                factor //= 2
                radius += factor
            else:
                radius += 5 * factor
        radius += 2  # output head
        return -(-radius // self.multiple) * self.multiple

    @torch.no_grad()
    def synthesize(self, clean: torch.Tensor, seeds: list[int], level: torch.Tensor, temperature: torch.Tensor,
                   tile_size: int = 0, degrade: bool = True, with_clean: bool = False) -> torch.Tensor:
        """:meth:`translate` of ``clean`` (``B x 3 x H x W``, any size: reflect-padded to :attr:`multiple`)
        at per-image ``level`` ([0, 1]) and ``temperature``. Every random number is addressed by (image seed,
        position), and tiles carry :attr:`receptive_radius` pixels of context, so any ``tile_size`` gives
        the whole-image result. Returns the network output, unclamped, at the input's size. ``degrade=False``:
        the clean rendering of the same content sample (:meth:`translate`); ``with_clean``: both, on the channel
        axis."""
        batch, _, height, width = clean.shape
        multiple = self.multiple
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        image = F.pad(clean, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else clean
        tile = max(tile_size, multiple) // multiple * multiple if tile_size and tile_size > 0 else 0

        def window(part: torch.Tensor, top: int, left: int) -> torch.Tensor:
            eps = []
            for index, (z_shape, noise_shape) in enumerate(self.latent_shapes(batch, *part.shape[-2:])):
                factor = part.shape[-2] // z_shape[2]
                position = (top // factor, left // factor, z_shape[2], z_shape[3])
                eps.append((normal_field(seeds, 2 * index, z_shape[1], *position, image.device, image.dtype),
                            normal_field(seeds, 2 * index + 1, noise_shape[1], *position, image.device,
                                         image.dtype)))
            return self.translate(part, level, temperature, eps=eps, degrade=degrade, with_clean=with_clean)

        return tiled(window, image, tile, self.receptive_radius, multiple=multiple)[..., :height, :width]

    def denoise(self, degraded: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Degraded -> clean: z ~ q(z|L), decoded without z_n."""
        return self.decode(None, self.content_encoder(degraded), generator=generator)["image"]


class NoiseLevelNet(nn.Module):
    """Estimates the noise level (std, [0, 1] units) of a degraded image: four 4x4 stride-2 convs (64, 128,
    256, 512, ReLU), global average pooling, an MLP 512-256-128-1 (2,920,897 parameters)."""

    def __init__(self, features: int = 64):
        super().__init__()
        widths = [3, features, features * 2, features * 4, features * 8]
        layers: list[nn.Module] = []
        for index in range(4):
            layers.append(nn.Conv2d(widths[index], widths[index + 1], 4, stride=2, padding=1))
            if index < 3:
                layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(widths[-1], 256), nn.ReLU(inplace=True), nn.Linear(256, 128),
                                 nn.ReLU(inplace=True), nn.Linear(128, 1))

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(degraded).mean(dim=(2, 3))).squeeze(1)
