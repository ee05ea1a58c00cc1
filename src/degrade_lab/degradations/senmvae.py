"""A trained SeNM-VAE as a degrader: degradation-level-controllable clean-to-degraded generation.

:class:`SeNMVAEDegrader` loads a checkpoint of ``degrade-lab train model=senmvae`` and implements the
:class:`~degrade_lab.degradations.base.Degrader` interface, so synthesis, on-the-fly training pairs and
evaluation use it unchanged. Generation (SeNM-VAE sec. 3.2, Fig. 1b): z ~ q(z | clean), then the
degradation latents from their prior p(z_n | z, level) at a temperature, decoded by p(y | z, z_n).

The degradation level (the noise standard deviation on [0, 1], the extra input channel of the prior)
is chosen per image by ``level``:

* a number: fixed for every image; ``[low, high]``: uniform per image;
* ``paired`` (default): uniform over the range of levels of the training pairs (stored in the
  checkpoint);
* ``sidd``: the SIDD shot / read noise prior of the authors' ``main_translate.py``:
  log10(shot) ~ U(log10 6.8674e-4, log10 2.194856e-2), log10(read) = 1.85 log10(shot) + 0.30 + N(0, 0.2^2),
  level = sqrt(shot + read);
* ``steps: [l1, l2, ...]`` (``level_steps``): image ``i`` of a batch gets ``l_(i mod K)``: one clean image
  at several strengths (``degrade-lab synthesize samples=K``).

A model trained for real-world SR (``clean_operator``: bicubic) shrinks the clean image first and degrades that:
the output is the LR image, ``scale`` times smaller.

A level outside the trained range warns once (the prior was never trained there). Every drawn level is
recorded (``level``, [0, 1]; ``sigma``, 0-255) for synthesis manifests and non-blind restorers.

Images are padded (reflect) to a multiple of the network's down-sampling and, above ``tile_size``,
processed in tiles with the network's receptive radius of context; the latent noise is addressed by
pixel position (:meth:`degrade_lab.archs.senmvae.SeNMVAE.synthesize`), so tiled and whole results are
identical.
"""

from __future__ import annotations

import logging
import math

import torch

from degrade_lab.degradations.base import Range, as_range, sample_uniform
from degrade_lab.degradations.learned import LearnedDegrader
from degrade_lab.errors import UserInputError

log = logging.getLogger(__name__)

#: the authors' SIDD shot-noise range (main_translate.py)
SIDD_SHOT = (6.8674e-4, 2.194856e-2)


def sidd_levels(batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """Levels drawn from the SIDD shot / read noise prior of the authors' generation script."""
    u = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
    low, high = math.log10(SIDD_SHOT[0]), math.log10(SIDD_SHOT[1])
    log_shot = low + u * (high - low)
    jitter = torch.randn(batch, generator=generator, device=device, dtype=torch.float64) * 0.2
    log_read = 1.85 * log_shot + 0.30 + jitter
    return torch.sqrt(10**log_shot + 10**log_read).float()


class SeNMVAEDegrader(LearnedDegrader):
    """A trained SeNM-VAE checkpoint as a degrader.

    Args:
        ckpt: ``RUN/checkpoints/last.ckpt`` (or best) of a SeNM-VAE training run.
        level: the degradation level ([0, 1] noise std): a number, ``[low, high]``, ``paired`` (the range
            of the training pairs) or ``sidd`` (the authors' SIDD prior). See the module docstring.
        level_steps: a list of levels given in turn to the images of a batch (overrides ``level``):
            with ``synthesize samples=K`` one clean image at K strengths.
        temperature: multiplies the whole z_n prior sample (the authors' convention; their T = 1),
            a number or ``[low, high]`` per image.
        tile_size: process images larger than this in tiles (pixels; 0 = never), without seams.
        bf16: run under bfloat16 autocast.
        compile: ``torch.compile`` the networks (:class:`~degrade_lab.degradations.learned.LearnedDegrader`).
        lowpass_sigma: > 0: keep the clean image's frequencies below a Gaussian of this std (pixels) and take
            only the model's residual above it (degradations/learned.py).
        residual_transfer: the synthetic image is ``clean + D(z, z_n) - D(z)``: the same content sample decoded
            with and without the degradation latent, only their difference added to the clean image, so what
            the decoder itself changes in the content (detail, colours) cancels (as LUD-VAE's, not in the paper).
    """

    trained_by = "degrade_lab.lit.senmvae.SeNMVAEModule"

    def __init__(self, ckpt: str | None = None, level: Range | str | None = None, level_steps: list[float] | None = None,
                 temperature: Range = 1.0, tile_size: int = 512, bf16: bool = False, lowpass_sigma: float = 0.0,
                 residual_transfer: bool = False, module=None, compile: bool | str = False):
        super().__init__(ckpt, module=module, tile_size=tile_size, bf16=bf16, lowpass_sigma=lowpass_sigma,
                         compile=compile)
        module = self.module
        self.residual_transfer = bool(residual_transfer)
        self.trained_range = module.trained_level_range()
        self.level_steps = [float(v) for v in level_steps] if level_steps else None
        stored = self.calibration or {}
        if level is None and stored.get("option") == "level" and stored.get("at_edge") and self.trained_range:
            # the search hit its bound: the model's noise could not be matched, and that bound lies outside the
            # levels the prior was trained on; the training pairs' own range is the better default
            log.warning("the calibrated level %g of this checkpoint lies at the edge of its search (noise std %.2f "
                        "synthetic / %.2f target: not matched); using the training pairs' levels (level=paired) "
                        "instead; set degrader.level to override", stored["value"],
                        stored.get("noise_std_synthetic", math.nan), stored.get("noise_std_target", math.nan))
            level = "paired"
        level = self.calibrated("level", level, "paired")
        if isinstance(level, str):
            if level not in ("paired", "sidd"):
                raise UserInputError(f"degrader.level must be a number, [low, high], 'paired' or 'sidd'; got {level!r}.")
            if level == "paired" and self.trained_range is None and not self.level_steps:
                raise UserInputError("this checkpoint saw no training pairs: give degrader.level explicitly.")
            self.level = level
        else:
            self.level = as_range(level, "level")
        requested = self.level_steps or (self.level if isinstance(self.level, tuple) else [])
        if min(requested, default=0.0) < 0:
            raise UserInputError("degrader.level and degrader.level_steps must be >= 0.")
        self._check_range(requested)
        self.temperature = self.option(temperature, "temperature")
        self.produces = "degraded"  # scale: the model's clean operator's (bicubic x4 for real-world SR), set above
        self._warned_sidd = False  # the SIDD prior's range is checked once, on its first draws

    def set_option(self, name, value):
        if name == "level":
            self.level, self.level_steps = as_range(value, "level"), None
        elif name == "temperature":
            self.temperature = self.option(value, "temperature")
        else:
            raise UserInputError(f"SeNM-VAE degraders have no option {name!r}; they take level, temperature.")

    def _check_range(self, levels) -> None:
        """Warn once when asked for levels the prior never saw in training."""
        if self.trained_range is None or not levels:
            return
        low, high = self.trained_range
        outside = [v for v in levels if v < low * 0.999 or v > high * 1.001]
        if outside:
            log.warning("degradation levels %s lie outside the trained range [%.4f, %.4f] of this "
                        "SeNM-VAE (std on [0, 1]); the results there are extrapolations.",
                        [round(v, 4) for v in outside], low, high)

    def draw_levels(self, batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
        if self.level_steps:
            steps = torch.tensor(self.level_steps, device=device)
            return steps[torch.arange(batch, device=device) % len(steps)]
        if self.level == "sidd":
            levels = sidd_levels(batch, generator, device)
            if not self._warned_sidd:
                self._warned_sidd = True
                self._check_range([float(levels.min()), float(levels.max())])
            return levels
        if self.level == "paired":
            return sample_uniform(self.trained_range, batch, generator, device)
        return sample_uniform(self.level, batch, generator, device)

    def degrade(self, image, generator=None):
        operator = getattr(self.module, "clean_operator", None)  # identity for denoising, bicubic for SR
        image = operator(image.float(), generator) if operator is not None else image
        batch, device = image.shape[0], image.device
        seeds = self.seeds(batch, generator, device)
        levels = self.draw_levels(batch, generator, device)
        temperatures = self.draw(self.temperature, batch, generator, device)
        self.record("level", levels)
        self.record("sigma", levels * 255)
        with self.autocast(device):
            out = self.module.net.synthesize(image.float(), seeds, levels, temperatures, self.tile_size,
                                             with_clean=self.residual_transfer).float()
        if self.residual_transfer:  # one content encoding, decoded with and without the noise latents
            out, rendered = out.split(image.shape[1], dim=1)
            out = image.float() + out - rendered
        return self.keep_content(out, image).clamp(0, 1)

    def extra_repr(self):
        level = self.level_steps if self.level_steps else self.level
        return (f"level={level}, temperature={self.temperature}, residual_transfer={self.residual_transfer}, "
                f"tile_size={self.tile_size}")
