"""DeFlow (Wolf, Lugmayr, Danelljan, Van Gool and Timofte, CVPR 2021): a conditional normalizing flow whose
two domains differ by a shift in its Gaussian latent space. The network of the authors' ``RRDBGlowNet``.

**Model** (sec. 3.2-3.3). An invertible flow ``z = f(x; h(x))`` maps an image to Gaussian latents, given a
conditioning ``h(x)`` that both domains share (eq. 6): here the image shrunk ``condition_scale`` times with
MATLAB bicubic plus Gaussian noise of std ``condition_noise`` (sec. 4.2), encoded by an RRDB network. Clean
latents are N(0, I); degraded latents are N(mu_u, I + M M^T) (:mod:`degrade_lab.archs.latent_shift`).
Training minimises both domains' negative log-likelihood (eq. 7, :meth:`DeFlow.nll`). A clean image is
degraded by encoding it, adding ``u ~ N(mu_u, M M^T)`` to every latent and decoding with the same
conditioning (eq. 8, :meth:`DeFlow.degrade`).

**Flow** (sec. 4.1, reference section 3.2). ``levels`` levels at 1/2, 1/4, ... of the image's resolution. Each
level: squeeze (space to channels), 2 flow steps without coupling (ActNorm and 1x1 convolution), ``steps``
conditional flow steps (:class:`~degrade_lab.archs.flow_blocks.FlowStep`), then, on levels 1 .. L - 2, a
split that factors half of the channels out (the authors' code splits only there: ``correct_splits`` is off).
Every latent group (each split's eps and the final z) has its own latent shift.

**Conditioning features** (reference 3.2). The RRDB encoder runs on the small image; level ``l`` (resolution
1/2^l) reads the feature map of the encoder's up-sampling path at that resolution (``last``: the trunk output
at the small image's resolution; x2, x4: nearest up-sampling, conv and LeakyReLU, as in ESRGAN, the map taken
after the activation as the authors' in-place LeakyReLU leaves it; 1/2: bilinear shrink of the trunk output),
concatenated with the outputs of the RRDB blocks ``stack_blocks`` resized to it (nearest):
``features * (1 + len(stack_blocks))`` channels (320 at the paper's settings).

At the NTIRE-RWSR settings (``condition_scale=4``, 23 blocks, hidden 64) the network has 39,455,813 parameters,
at AIM-RWSR's (``condition_scale=8``, hidden 128) 62,649,477. The authors' code reports 285,828 more for both
(39,741,641 and 62,935,305): it also registers a 3x3 convolution (320 -> 96 channels, 276,576 parameters) that
its DeFlow configurations never run, and the identity matrices of its latent Gaussians as frozen parameters
(96^2 + 6^2 = 9,252). The encoder keeps ESRGAN's whole layer set (16,697,987 parameters at x4), output layers
included, as the reference does, so that the authors' weights map one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from degrade_lab.archs.flow_blocks import FlowStep, SplitPrior, Squeeze
from degrade_lab.archs.latent_shift import LatentShift, standard_log_prob
from degrade_lab.archs.rrdbnet import RRDB
from degrade_lab.utils.imresize import imresize
from degrade_lab.utils.noise_field import normal_field
from degrade_lab.utils.tiling import tiled


class ConditionEncoder(nn.Module):
    """The RRDB encoder of h(x) (ESRGAN's RRDBNet layers, ``log2(scale)`` x2 up-samplers); returns one
    feature map per flow level."""

    def __init__(self, in_channels: int = 3, features: int = 64, blocks: int = 23, growth: int = 32,
                 scale: int = 4, stack_blocks: tuple[int, ...] = (1, 8, 15, 22), out_channels: int = 3):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"the conditioning scale must be a power of 2 >= 2, got {scale}")
        if any(not 0 <= b < blocks for b in stack_blocks):
            raise ValueError(f"stack_blocks {list(stack_blocks)} must index the {blocks} RRDB blocks")
        self.scale, self.stack_blocks = scale, tuple(stack_blocks)
        self.conv_first = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.ModuleList(RRDB(features, growth) for _ in range(blocks))
        self.conv_body = nn.Conv2d(features, features, 3, padding=1)
        self.upsamplers = nn.ModuleList(nn.Conv2d(features, features, 3, padding=1)
                                        for _ in range(max(2, int(math.log2(scale)))))
        # ESRGAN's output layers: unused by the flow, kept so that parameter counts and the authors' weights match
        self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=False)
        self.channels = features * (1 + len(self.stack_blocks))

    def freeze_unused(self) -> None:
        """No gradient for the layers the flow never runs (ESRGAN's output layers, up-samplers past
        level 1's resolution): they stay in the state dict but out of the optimizer and of DDP's reduction."""
        used = max(0, int(math.log2(self.scale)) - 1)
        for module in (self.conv_hr, self.conv_last, *list(self.upsamplers)[used:]):
            module.requires_grad_(False)

    def forward(self, small: torch.Tensor, levels: int) -> list[torch.Tensor]:
        """Features for levels 1..``levels`` (level l at ``scale / 2^l`` times ``small``'s size)."""
        feat = self.conv_first(small)
        stacked = []
        for index, block in enumerate(self.body):
            feat = block(feat)
            if index in self.stack_blocks:
                stacked.append(feat)
        trunk = feat + self.conv_body(feat)
        factors = [self.scale / 2**level for level in range(1, levels + 1)]
        maps = {1.0: trunk}
        up, factor = trunk, 1
        while factor < max(factors):
            # conv then LeakyReLU, and the map after the activation: the authors' in-place LeakyReLU overwrites
            # the feature map they store (their fea_up2, fea_up4 ...), so that is what their flow reads
            up = self.act(self.upsamplers[int(math.log2(factor))](F.interpolate(up, scale_factor=2, mode="nearest")))
            factor *= 2
            maps[float(factor)] = up
        out = []
        for factor in factors:
            if factor >= 1:
                base = maps[factor]
            else:
                base = F.interpolate(trunk, scale_factor=factor, mode="bilinear", align_corners=False)
            resized = [F.interpolate(s, size=base.shape[-2:], mode="nearest") for s in stacked]
            out.append(torch.cat([base, *resized], dim=1))
        return out


class DeFlow(nn.Module):
    """The conditional flow with its conditioning encoder and latent shifts.

    Args:
        in_channels: image channels.
        levels: L (paper 3); steps: K conditional flow steps per level (paper 16; Table 4: 4 / 8 / 16).
        hidden: channels of the coupling and injector networks (NTIRE / DPED 64, AIM 128).
        affine_eps: the scales' floor, ``sigmoid(s + 2) + eps`` (NTIRE config 1e-3).
        condition_scale: h(x) shrinks the image this many times (4; AIM 8); condition_noise: std of the
            Gaussian noise added to the shrunk image ([0, 1] units; 0.03).
        features, blocks, growth, stack_blocks: the RRDB encoder (64, 23, 32, blocks 1, 8, 15, 22).
        shift: the latent shift's form, ``full``, ``diagonal`` or ``none`` (:mod:`~degrade_lab.archs.latent_shift`).
        quantization: the dequantisation bins per unit (the authors' 5-bit: 32).
        shift_init_std: M starts as this times the identity. The authors' 0 is a stationary point that M never
            leaves (:mod:`~degrade_lab.archs.latent_shift`), so their learned shift is a mean alone; > 0 lets the
            degraded domain's latent covariance I + M M^T learn.
        conditional: false feeds the encoder h(x) = 0, an image of zeros, instead (Table 4's "no conditional":
            the flow then sees no information about the image it models).
    """

    #: context (pixels) around each tile of a tiled synthesis; the flow's receptive field is far wider (the RRDB
    #: encoder alone spans hundreds of pixels), but its influence beyond this is below 8-bit precision
    tile_margin = 64

    def __init__(self, in_channels: int = 3, levels: int = 3, steps: int = 16, hidden: int = 64,
                 affine_eps: float = 1e-3, condition_scale: int = 4, condition_noise: float = 0.03,
                 features: int = 64, blocks: int = 23, growth: int = 32,
                 stack_blocks: tuple[int, ...] = (1, 8, 15, 22), shift: str = "full", quantization: int = 32,
                 shift_init_std: float = 0.0, conditional: bool = True):
        super().__init__()
        if levels < 1 or steps < 1:
            raise ValueError(f"DeFlow needs levels >= 1 and steps >= 1, got {levels} / {steps}")
        self.in_channels, self.levels = in_channels, levels
        self.condition_scale, self.condition_noise = int(condition_scale), float(condition_noise)
        self.quantization, self.conditional = int(quantization), bool(conditional)
        self.encoder = ConditionEncoder(in_channels, features, blocks, growth, condition_scale, tuple(stack_blocks))
        self.encoder.freeze_unused()
        cond = self.encoder.channels
        self.flow_levels = nn.ModuleList()
        self.splits = nn.ModuleList()
        self.shifts = nn.ModuleList()
        channels = in_channels
        for level in range(1, levels + 1):
            channels *= 4
            steps_of_level = nn.ModuleList([FlowStep(channels), FlowStep(channels)])
            steps_of_level.extend(FlowStep(channels, cond, hidden, affine_eps) for _ in range(steps))
            self.flow_levels.append(steps_of_level)
            if level <= levels - 2:  # the reference splits levels 1 .. L - 2
                split = SplitPrior(channels)
                self.splits.append(split)
                self.shifts.append(LatentShift(channels - split.kept, shift, shift_init_std))
                channels = split.kept
            else:
                self.splits.append(None)
        self.shifts.append(LatentShift(channels, shift, shift_init_std))
        self.latent_channels = channels
        self.squeeze = Squeeze()

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this: the flow squeezes ``levels`` times, h(x) shrinks by
        ``condition_scale`` (both powers of 2)."""
        return max(2**self.levels, self.condition_scale)

    def condition(self, image: torch.Tensor, noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        """h(x): the image shrunk ``condition_scale`` times (MATLAB bicubic) plus ``condition_noise`` times
        ``noise`` (standard normal of the shrunk size; drawn when None), encoded per level."""
        if not self.conditional:  # h(x) = 0 (Table 4)
            size = (image.shape[-2] // self.condition_scale, image.shape[-1] // self.condition_scale)
            return self.encoder(image.new_zeros(*image.shape[:-2], *size), self.levels)
        small = imresize(image, 1.0 / self.condition_scale)
        if self.condition_noise > 0:
            noise = torch.randn_like(small) if noise is None else noise.to(small.dtype)
            small = small + self.condition_noise * noise
        return self.encoder(small, self.levels)

    def encode(self, image: torch.Tensor, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``z = f(x; h)``: the latent groups (each split's eps, then the final z) and log|det df/dx| per sample."""
        z = image
        logdet = torch.zeros(image.shape[0], device=image.device,
                             dtype=torch.float64 if image.dtype == torch.float64 else torch.float32)
        latents = []
        for steps, split, feat in zip(self.flow_levels, self.splits, features, strict=True):
            z, _ = self.squeeze(z)
            for step in steps:
                z, step_logdet = step(z, feat)
                logdet = logdet + step_logdet
            if split is not None:
                z, eps, split_logdet = split(z)
                logdet = logdet + split_logdet
                latents.append(eps)
        latents.append(z)
        return latents, logdet

    def decode(self, latents: list[torch.Tensor], features: list[torch.Tensor]) -> torch.Tensor:
        """``x = f^-1(z; h)``, the exact inverse of :meth:`encode`."""
        groups = iter(reversed(latents))
        z = next(groups)
        for steps, split, feat in zip(reversed(self.flow_levels), reversed(self.splits), reversed(features), strict=True):
            if split is not None:
                z = split.reverse(z, next(groups).to(z.dtype))
            for step in reversed(steps):
                z = step.reverse(z, feat)
            z = self.squeeze.reverse(z)
        return z

    def latent_shapes(self, batch: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """Shapes of the latent groups of a ``height x width`` image, in :meth:`encode`'s order."""
        shapes, channels = [], self.in_channels
        for level, split in enumerate(self.splits, start=1):
            channels *= 4
            size = (height >> level, width >> level)
            if split is not None:
                shapes.append((batch, channels - split.kept, *size))
                channels = split.kept
        shapes.append((batch, channels, height >> self.levels, width >> self.levels))
        return shapes

    def nll(self, image: torch.Tensor, degraded: torch.Tensor, features: list[torch.Tensor],
            dequantize: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x | h(x)) in bits per dimension (eq. 7, 10), per sample: ``image`` in [0, 1] dequantised with
        uniform noise of one bin (``dequantize`` ~ U(-0.5, 0.5), drawn when None), ``degraded`` a boolean per
        sample choosing the domain's latent distribution. Divides by C H W (the authors' code divides by H W,
        so its numbers are 3x these)."""
        if dequantize is None:
            dequantize = torch.rand_like(image) - 0.5
        x = image + dequantize / self.quantization
        latents, logdet = self.encode(x, features)
        log_prob = logdet - math.log(self.quantization) * image[0].numel()
        for shift, eps in zip(self.shifts, latents, strict=True):
            log_prob = log_prob + shift.log_prob(eps, degraded)
        return -log_prob / (image[0].numel() * math.log(2.0))

    def pair_nll(self, clean: torch.Tensor, degraded: torch.Tensor, features: list[torch.Tensor],
                 dequantize: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """-log p(x, y | h) of a clean/degraded pair in bits per dimension of the pair (2 C H W), per sample:
        eq. (5), ``p(x, y) = p(z_x) p(z_y | z_x) |det df/dx| |det df/dy|`` with ``z_x ~ N(0, I)`` and
        ``z_y | z_x ~ N(z_x + mu_u, M M^T)`` per latent group. Both images are encoded with the same
        conditioning ``features`` (h of the clean image, as synthesis uses), each dequantised with its own
        uniform noise (``dequantize``: the two U(-0.5, 0.5) tensors, drawn when None)."""
        if dequantize is None:
            dequantize = (torch.rand_like(clean) - 0.5, torch.rand_like(degraded) - 0.5)
        latents_x, logdet_x = self.encode(clean + dequantize[0] / self.quantization, features)
        latents_y, logdet_y = self.encode(degraded + dequantize[1] / self.quantization, features)
        dims = clean[0].numel()
        log_prob = logdet_x + logdet_y - 2 * math.log(self.quantization) * dims
        for shift, z_x, z_y in zip(self.shifts, latents_x, latents_y, strict=True):
            log_prob = log_prob + standard_log_prob(z_x.float()) + shift.pair_log_prob(z_y, z_x).to(log_prob.dtype)
        return -log_prob / (2 * dims * math.log(2.0))

    def degrade(self, image: torch.Tensor, features: list[torch.Tensor], noise: list[torch.Tensor],
                temperature: torch.Tensor) -> torch.Tensor:
        """Eq. (8): ``y = f^-1(f(x; h) + T u; h)``, ``u = mu_u + M n`` per latent group, ``noise`` the standard
        normal n of each group (:meth:`latent_shapes`), ``temperature`` T per sample (the reference's heat)."""
        latents, _ = self.encode(image, features)
        shifted = [shift.shift(z, n, temperature) for shift, z, n in zip(self.shifts, latents, noise, strict=True)]
        return self.decode(shifted, features)

    def restore(self, image: torch.Tensor, features: list[torch.Tensor], noise: list[torch.Tensor],
                temperature: torch.Tensor) -> torch.Tensor:
        """The reverse of eq. (8), degraded -> clean: encode ``y``, draw each clean latent group from its Gaussian
        conditional given the degraded one (:meth:`LatentShift.unshift`), decode."""
        latents, _ = self.encode(image, features)
        clean = [shift.unshift(z, n, temperature) for shift, z, n in zip(self.shifts, latents, noise, strict=True)]
        return self.decode(clean, features)

    def synthesize(self, image: torch.Tensor, seeds: list[int], tile_size: int = 0, *,
                   temperature: torch.Tensor | None = None, reverse: bool = False) -> torch.Tensor:
        """Eq. (8) on whole images of any size (``reverse=True``: :meth:`restore`, degraded -> clean): each image
        padded (replicate) to a multiple of :attr:`multiple`, its conditioning noise and latent noise addressed by
        (image seed, position) so that tiles of ``tile_size`` pixels (with :attr:`tile_margin` of context) draw
        the numbers the whole image would; ``temperature`` T per image (default 1). Returns the network output,
        unclamped."""
        batch = image.shape[0]
        temperature = torch.ones(batch, device=image.device) if temperature is None else temperature
        temperature = temperature.to(image.device, image.dtype).view(-1)
        translate = self.restore if reverse else self.degrade

        def window(part: torch.Tensor, top: int, left: int) -> torch.Tensor:
            height, width = part.shape[-2:]
            pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
            if pad_h or pad_w:
                part = F.pad(part, (0, pad_w, 0, pad_h), mode="replicate")
            full_h, full_w = part.shape[-2:]
            scale = self.condition_scale
            condition_noise = normal_field(seeds, 0, self.in_channels, top // scale, left // scale, full_h // scale,
                                           full_w // scale, part.device, part.dtype)
            features = self.condition(part, condition_noise)
            noise = []
            for group, shape in enumerate(self.latent_shapes(batch, full_h, full_w)):
                factor = full_h // shape[2]
                noise.append(normal_field(seeds, 1 + group, shape[1], top // factor, left // factor, shape[2],
                                          shape[3], part.device, part.dtype))
            return translate(part, features, noise, temperature)[..., :height, :width]

        return tiled(window, image, tile_size or 0, self.tile_margin, multiple=self.multiple)
