"""The LUD-VAE network (Zheng et al., TPAMI 2023, sec. 3.3 and Fig. 3; authors' ``network_ludvae.py``).

A hierarchical VAE over a degraded-or-clean image ``x`` conditioned on ``hx``, the same image after the
pre-processing noise h(.) of eq. (20). Everything stays at full resolution (no down-sampling), as in
the authors' code:

* a **content encoder** on ``hx`` gives deterministic features ``c_1..c_N`` (the shared content);
* a **noise encoder** on ``x`` gives ``n_1..n_N``, from which the posteriors q(z_i | x, hx) are read;
* a **top-down decoder**: the top latent z_N has prior N(0, I); each lower z_i has a learned prior
  p(z_i | z_>i, hx) (eq. 8-9). ``label`` gates every latent: degraded images (label 1) use them,
  clean images (label 0) are decoded from content alone and contribute no KL (eq. 10-11, 18-19).

Default widths (128 features, 128 latent channels, 3 levels) give the paper's 5,709,827 parameters.

``lowpass_sigma > 0`` (not in the paper) makes the output keep the input image's low frequencies
(:mod:`degrade_lab.archs.lowpass`): the model then learns only the degradation's detail, not the degraded
folder's colours, when the two folders show different scenes.
"""

from __future__ import annotations

import torch
from torch import nn

from degrade_lab.archs.lowpass import KeepLowFrequencies
from degrade_lab.losses.kl import gaussian_kl
from degrade_lab.utils.noise_field import normal_field
from degrade_lab.utils.tiling import tiled


class ConvBlock(nn.Sequential):
    """Four 3x3 convolutions with ReLU between them (none after the last), no normalisation."""

    def __init__(self, channels: int):
        layers: list[nn.Module] = []
        for i in range(4):
            layers.append(nn.Conv2d(channels, channels, 3, padding=1))
            if i < 3:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class GaussianHead(nn.Module):
    """Two 1x1 convolutions: the mean and the log standard deviation of a diagonal Gaussian."""

    def __init__(self, channels: int, latent_channels: int):
        super().__init__()
        self.mean = nn.Conv2d(channels, latent_channels, 1)
        self.logstd = nn.Conv2d(channels, latent_channels, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(features), self.logstd(features)


class Merge(nn.Module):
    """Concatenate two feature maps and mix them with a 1x1 convolution (the authors' ProjBlock)."""

    def __init__(self, channels_a: int, channels_b: int, out_channels: int):
        super().__init__()
        self.mix = nn.Conv2d(channels_a + channels_b, out_channels, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([a, b], dim=1))


class LUDVAE(nn.Module):
    """LUD-VAE network; see the module docstring.

    Args:
        in_channels: image channels.
        channels: feature width of every block (paper: 128).
        latent_channels: channels of every latent z_i (paper: 128).
        levels: number of latent levels N (paper: 3; Table 7 studies 1-5).
        lowpass_sigma: keep the input image's frequencies below a Gaussian of this std (pixels) in the
            output, so only detail is learned (0: off, the paper's network).
    """

    def __init__(self, in_channels: int = 3, channels: int = 128, latent_channels: int = 128, levels: int = 3,
                 lowpass_sigma: float = 0.0):
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        self.content_in = nn.Conv2d(in_channels, channels, 1)
        self.noise_in = nn.Conv2d(in_channels, channels, 1)
        self.content_blocks = nn.ModuleList(ConvBlock(channels) for _ in range(levels))
        self.noise_blocks = nn.ModuleList(ConvBlock(channels) for _ in range(levels))
        # index i holds level i + 1 (level 1 is the lowest, full detail; level N the top)
        self.posteriors = nn.ModuleList(GaussianHead(channels, latent_channels) for _ in range(levels))
        self.priors = nn.ModuleList(GaussianHead(channels, latent_channels) for _ in range(levels - 1))
        self.merge_latent = nn.ModuleList(Merge(channels, latent_channels, channels) for _ in range(levels))
        self.merge_content = nn.ModuleList(Merge(channels, channels, channels) for _ in range(levels - 1))
        self.merge_noise = nn.ModuleList(Merge(channels, channels, channels) for _ in range(levels - 1))
        self.decoder_blocks = nn.ModuleList(ConvBlock(channels) for _ in range(levels))
        self.out = nn.Conv2d(channels, in_channels, 1)
        self.keep_low_frequencies = KeepLowFrequencies(lowpass_sigma)

    def _encode(self, image: torch.Tensor, stem: nn.Module, blocks: nn.ModuleList) -> list[torch.Tensor]:
        features, out = stem(image), []
        for block in blocks:
            features = block(features)
            out.append(features)
        return out  # out[i] = features of level i + 1

    def encode_content(self, conditioning: torch.Tensor) -> list[torch.Tensor]:
        """Deterministic content features of the pre-noised image ``hx``, one map per level."""
        return self._encode(conditioning, self.content_in, self.content_blocks)

    @property
    def receptive_radius(self) -> int:
        """Pixels each output depends on in every direction: the longest path has 8 x levels 3x3 convs
        (content encoder to the top level, then every decoder block), plus the low-pass blur's radius.
        Tiles need this much context."""
        return 8 * self.levels + self.keep_low_frequencies.radius

    def latent_shapes(self, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
        """Shapes of the latent noise ``eps`` of each level (level 1 first)."""
        return [(batch, head.mean.out_channels, height, width) for head in self.posteriors]

    def _decode(
        self,
        content: list[torch.Tensor],
        noise: list[torch.Tensor] | None,
        gate: torch.Tensor,
        generator: torch.Generator | None,
        temperature: torch.Tensor | float = 1.0,
        eps: list[torch.Tensor] | None = None,
        temperature_mode: str = "sample",
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Top-down pass. With ``noise`` features: posterior samples and their KL; without: prior samples.

        ``gate`` (B x 1 x 1 x 1) multiplies every latent sample (the authors' ``label``). When sampling,
        ``temperature`` scales the whole sample ``mean + std * eps`` (``temperature_mode="sample"``, the
        authors' code) or only its spread, ``mean + temperature * std * eps`` (``"std"``). ``eps``
        (level 1 first) supplies the standard-normal noise instead of drawing it from ``generator``.
        """
        if temperature_mode not in ("sample", "std"):
            raise ValueError(f"temperature_mode must be 'sample' or 'std', got {temperature_mode!r}")
        kls: list[torch.Tensor] = []
        top = self.levels - 1
        state: torch.Tensor | None = None
        for i in range(top, -1, -1):
            if i == top:
                prior_mean = prior_logstd = None  # p(z_N) = N(0, I)
                context = content[i]
            else:
                state = self.merge_content[i](self.decoder_blocks[i + 1](state), content[i])
                prior_mean, prior_logstd = self.priors[i](state)
                context = state
            if noise is not None:
                posterior_input = noise[i] if i == top else self.merge_noise[i](state, noise[i])
                mean, logstd = self.posteriors[i](posterior_input)
                kl = gaussian_kl(mean.float(), logstd.float(), _float(prior_mean), _float(prior_logstd))
                kls.append(kl * gate)
            elif prior_mean is None:
                mean = torch.zeros(
                    (context.shape[0], self.posteriors[i].mean.out_channels, *context.shape[-2:]),
                    device=context.device, dtype=context.dtype,
                )
                logstd = torch.zeros_like(mean)
            else:
                mean, logstd = prior_mean, prior_logstd
            if eps is not None:
                noise_i = eps[i].to(mean.device, mean.dtype)
            else:
                noise_i = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            if noise is None and temperature_mode == "std":
                z = (mean + temperature * torch.exp(logstd) * noise_i) * gate
            else:
                z = (mean + torch.exp(logstd) * noise_i) * gate
                if noise is None:
                    z = z * temperature
            state = self.merge_latent[i](context, z.to(context.dtype))
        return self.out(self.decoder_blocks[0](state)), kls[::-1]

    def forward(
        self, image: torch.Tensor, conditioning: torch.Tensor, label: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Reconstruct ``image`` (x) given ``conditioning`` (hx = h(x)) and ``label`` (B,; 1 degraded,
        0 clean). Returns the reconstruction and the per-level elementwise KL maps (level 1 first),
        zero for clean images."""
        gate = label.to(image.dtype).view(-1, 1, 1, 1)
        content = self.encode_content(conditioning)
        noise = self._encode(image, self.noise_in, self.noise_blocks)
        out, kls = self._decode(content, noise, gate, generator)
        return self.keep_low_frequencies(out, image), kls

    @torch.no_grad()
    def sample(
        self, conditioning: torch.Tensor, generator: torch.Generator | None = None,
        temperature: torch.Tensor | float = 1.0, degrade: bool = True,
        eps: list[torch.Tensor] | None = None, temperature_mode: str = "sample",
        image: torch.Tensor | None = None, with_clean: bool = False,
    ) -> torch.Tensor:
        """Translate by sampling the prior (the C2N sampling of sec. 3.4): ``degrade=True`` decodes the
        content of ``hx`` with sampled degradation latents (clean -> noisy); ``degrade=False`` decodes it
        with the latents switched off (noisy -> clean, "denoising by translation"). The noise encoder is
        not run (the authors' ``translate`` computes it and throws it away).

        ``temperature`` (a number or a B-vector) multiplies the whole latent sample, mean included, as in
        the authors' code; ``temperature_mode="std"`` scales only the standard deviation instead.
        ``eps`` gives the latents' standard-normal noise explicitly (see :meth:`latent_shapes`).
        ``image``: the image before the pre-noise, whose low frequencies the output keeps when
        ``lowpass_sigma > 0`` (default: ``conditioning``). ``with_clean`` (with ``degrade=True``): the same
        content decoded without the latents too, concatenated after the output on the channel axis (one content
        encoding for both; the residual transfer of degradations/ludvae.py)."""
        batch = conditioning.shape[0]
        gate = torch.full((batch, 1, 1, 1), 1.0 if degrade else 0.0, device=conditioning.device,
                          dtype=conditioning.dtype)
        if isinstance(temperature, torch.Tensor):
            temperature = temperature.to(conditioning.device, conditioning.dtype).view(-1, 1, 1, 1)
        content = self.encode_content(conditioning)
        out, _ = self._decode(content, None, gate, generator, temperature, eps, temperature_mode)
        out = self.keep_low_frequencies(out, conditioning if image is None else image)
        if with_clean and degrade:
            clean, _ = self._decode(content, None, torch.zeros_like(gate), generator, temperature, eps, temperature_mode)
            out = torch.cat([out, self.keep_low_frequencies(clean, conditioning if image is None else image)], dim=1)
        return out

    @torch.no_grad()
    def synthesize(self, image: torch.Tensor, seeds: list[int], noise_level: torch.Tensor, temperature: torch.Tensor,
                   degrade: bool = True, temperature_mode: str = "sample", tile_size: int = 0,
                   channels_last: bool = False, with_clean: bool = False) -> torch.Tensor:
        """Translate ``image`` (already mapped by T for C2N, or normalised for N2C) by :meth:`sample`, with
        the pre-processing noise h(.) of eq. (20) at per-image ``noise_level`` (0-255) and per-image
        ``temperature``. Every random number (the pre-noise, each level's latent noise) is addressed by
        (image seed, pixel position), and tiles carry :attr:`receptive_radius` pixels of context, so any
        ``tile_size`` gives the whole-image result. Returns the network output, unclamped (with ``with_clean``:
        followed on the channel axis by the same content decoded without the latents, :meth:`sample`)."""
        batch, channels = image.shape[:2]
        levels = (noise_level.to(image.device, image.dtype) / 255.0).view(-1, 1, 1, 1)

        def window(part: torch.Tensor, top: int, left: int) -> torch.Tensor:
            height, width = part.shape[-2:]
            prenoise = normal_field(seeds, 0, channels, top, left, height, width, image.device, image.dtype)
            conditioning = part + levels * prenoise
            eps = [normal_field(seeds, 1 + i, shape[1], top, left, height, width, image.device, image.dtype)
                   for i, shape in enumerate(self.latent_shapes(batch, height, width))]
            if channels_last:
                conditioning = conditioning.contiguous(memory_format=torch.channels_last)
            return self.sample(conditioning, temperature=temperature, degrade=degrade, eps=eps,
                               temperature_mode=temperature_mode, image=part, with_clean=with_clean)

        return tiled(window, image, tile_size or 0, self.receptive_radius)


def _float(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.float()
