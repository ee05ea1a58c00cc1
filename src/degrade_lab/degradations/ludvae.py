"""A trained LUD-VAE as a degrader: clean-to-noisy (C2N) sampling, and noisy-to-clean (N2C).

:class:`LUDVAEDegrader` loads a checkpoint written by ``degrade-lab train model=ludvae`` and
implements the same :class:`~degrade_lab.degradations.base.Degrader` interface as the hand-made
degraders, so synthesis, on-the-fly training pairs and evaluation use it unchanged.

C2N (sec. 3.4, Fig. 4): ``x = T(clean)`` (the task's operator), ``hx = x + N(0, s^2)`` (the
pre-processing noise, here at the *inference* level ``s``, which may differ from training's), then the
decoder runs on the content of ``hx`` with degradation latents sampled from the priors. N2C: the
noisy image's content decoded with the latents switched off.

Large images are processed in tiles of ``tile_size`` pixels plus the network's receptive radius of
context on every side, and every random number is addressed by pixel position
(:meth:`degrade_lab.archs.ludvae.LUDVAE.synthesize`), so tiled and whole-image results are the same.
"""

from __future__ import annotations

import torch

from degrade_lab.degradations.base import Range
from degrade_lab.degradations.learned import LearnedDegrader
from degrade_lab.errors import UserInputError

DIRECTIONS = ("c2n", "n2c")


class LUDVAEDegrader(LearnedDegrader):
    """A trained LUD-VAE checkpoint as a degrader.

    Args:
        ckpt: ``RUN/checkpoints/last.ckpt`` (or best) of a LUD-VAE training run.
        direction: ``c2n`` (clean -> degraded, the default and what the paper uses for training data)
            or ``n2c`` (degraded -> clean; the input is then a degraded image and the output its
            clean estimate, LUD-VAE Table 5).
        noise_level: the inference pre-processing noise level s (0-255), fixed or a ``[low, high]``
            range drawn per image (the paper: SIDD U(30, 70), DND U(10, 30)). Default: the checkpoint's
            calibrated level (``degrade-lab calibrate``), else the training level of the input's domain
            (sigma_x for C2N, sigma_y for N2C).
        temperature: multiplies the whole latent sample (mean included) as in the authors' code, fixed
            or a range per image (DND: U(1, 3)); ``temperature_mode="std"`` scales only the std.
            Default (None): 1.
        tile_size: process images larger than this in tiles (pixels; 0 = never), without seams.
        bf16: run under bfloat16 autocast (faster on recent CPUs and GPUs).
        compile: ``torch.compile`` the networks (:class:`~degrade_lab.degradations.learned.LearnedDegrader`).
        lowpass_sigma: > 0 (C2N): the synthetic image keeps T(clean)'s frequencies below a Gaussian of this
            std (pixels) and takes only the model's residual above it (degradations/learned.py).
        residual_transfer: (C2N) the synthetic image is ``T(clean) + (degraded rendering - clean rendering)``:
            the decoder renders the same content (the same pre-noised input, the same noise) once with the
            degradation latents and once without (N2C's clean output), and only their difference is added
            to the input, so whatever detail or tone the decoder itself loses or changes cancels and the
            pairs differ by the degradation alone. Costs a second decoding. Not in the paper. Default
            (None): on for C2N (it trained better denoisers on the builtin camera noise: docs/results.md);
            ``False``: the paper's synthesis, the decoder's output as it is.
    """

    trained_by = "degrade_lab.lit.ludvae.LUDVAEModule"

    def __init__(
        self,
        ckpt: str | None = None,
        direction: str = "c2n",
        noise_level: Range | None = None,
        temperature: Range | None = None,
        temperature_mode: str = "sample",
        tile_size: int = 512,
        bf16: bool = False,
        lowpass_sigma: float = 0.0,
        residual_transfer: bool | None = None,
        module=None,
        compile: bool | str = False,
    ):
        if direction not in DIRECTIONS:
            raise UserInputError(f"degrader.direction must be one of {DIRECTIONS}, got {direction!r}.")
        super().__init__(ckpt, module=module, tile_size=tile_size, bf16=bf16, lowpass_sigma=lowpass_sigma,
                         compile=compile)
        module = self.module
        if temperature_mode not in ("sample", "std"):
            raise UserInputError(f"degrader.temperature_mode must be 'sample' or 'std', got {temperature_mode!r}.")
        if residual_transfer is None:
            residual_transfer = direction == "c2n"
        if residual_transfer and direction != "c2n":
            raise UserInputError("degrader.residual_transfer applies to direction=c2n only.")
        self.direction, self.temperature_mode = direction, temperature_mode
        self.residual_transfer = bool(residual_transfer)
        self.degrade_direction = direction == "c2n"
        #: what the output is: synthesis writes N2C results as the clean side of a pair
        self.produces = "degraded" if self.degrade_direction else "clean"
        self.scale = module.scale if self.degrade_direction else 1
        default_level = module.noise_level_clean if self.degrade_direction else module.noise_level_degraded
        self.noise_level = self.option(self.calibrated("noise_level", noise_level, default_level), "noise_level")
        self.temperature = self.option(self.calibrated("temperature", temperature, 1.0), "temperature")

    def set_option(self, name, value):
        if name not in ("temperature", "noise_level"):
            raise UserInputError(f"LUD-VAE degraders have no option {name!r}; they take temperature, noise_level.")
        setattr(self, name, self.option(value, name))

    def degrade(self, image, generator=None):
        batch, device = image.shape[0], image.device
        seeds = self.seeds(batch, generator, device)
        levels = self.draw(self.noise_level, batch, generator, device)
        temperatures = self.draw(self.temperature, batch, generator, device)
        self.record("temperature", temperatures)
        self.record("noise_level", levels)
        image = image.float()
        if self.degrade_direction:
            source = self.module.clean_operator(image, generator)
        else:
            source = self.module.normalization(image)
        with self.autocast(device):
            if self.degrade_direction:
                out = self.module.render(source, seeds, levels, temperatures, self.residual_transfer,
                                         self.temperature_mode, self.tile_size)
            else:
                out = self.module.net.synthesize(source, seeds, levels, temperatures, False, self.temperature_mode,
                                                 self.tile_size, self.module.channels_last)
        out = out.float()
        if self.degrade_direction:  # outside autocast: the low-pass blur in fp32
            out = self.keep_content(out, source)
        return out.clamp(0, 1)

    @torch.inference_mode()
    def latent_samples(self, image: torch.Tensor, degraded: bool, samples: int,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``samples`` draws of the content latent z ~ q(z | image) (the top level's content
        features of the pre-noised image; random through h(.) only) for one image, flattened:
        ``samples x D``. Clean images are mapped by T first; degraded ones are normalised."""
        module = self.module
        x = module.normalization(image) if degraded else module.clean_operator(image, generator)
        level = module.noise_level_degraded if degraded else module.noise_level_clean
        x = x.expand(samples, -1, -1, -1)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        conditioning = x + noise * (level / 255.0)
        return module.net.encode_content(conditioning)[-1].flatten(1).float()

    def extra_repr(self):
        return (f"direction={self.direction}, scale={self.scale}, noise_level={self.noise_level}, "
                f"temperature={self.temperature} ({self.temperature_mode}), residual_transfer="
                f"{self.residual_transfer}, tile_size={self.tile_size}")
