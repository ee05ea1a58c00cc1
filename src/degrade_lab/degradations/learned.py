"""The degrader of a trained degradation model: its checkpoint loaded safely, per-image options, autocast,
per-image seeds, seamless tiles.

A learned degrader wraps the LightningModule of a checkpoint written by ``degrade-lab train`` (rebuilt
from the checkpoint's own config, safely: :func:`~degrade_lab.utils.checkpoint.load_model_of`). Its
network does the translation itself: ``net.synthesize(image, seeds, tile_size=..., **options)``, with
position-addressed noise so that tiles join without seams. This degrader draws a seed per image from the
caller's generator and each per-image option (a number, or a ``[low, high]`` range drawn per image),
and runs the network under bfloat16 autocast when asked.

:class:`LearnedDegrader` is complete as it is: a new learned model needs only a config,
``conf/degrader/NAME.yaml``, with ``_target_: degrade_lab.degradations.learned.LearnedDegrader``,
``trained_by`` (its LightningModule's dotted name) and the ``options`` its ``net.synthesize`` takes.
A model whose options need more than numbers and ranges (LUD-VAE's two directions, SeNM-VAE's level
priors) subclasses it and overrides ``__init__`` / :meth:`degrade` / :meth:`set_option`.

**Keeping the content** (``lowpass_sigma > 0``, for noise-type tasks): the synthetic image keeps the
input's frequencies below a Gaussian of that std (pixels) and takes only the model's residual above it,
``out = x + (y - x) - G * (y - x)`` with ``x`` the (operator-mapped) input and ``y`` the model's output
(:mod:`degrade_lab.archs.lowpass`, applied after synthesis, so any trained checkpoint can use it): a
model trained on folders of different scenes then cannot move colours or tones of its pairs.

**Calibration.** A checkpoint calibrated by ``degrade-lab calibrate`` (or at the end of training) stores
the value of one option (``module.calibration``, :mod:`degrade_lab.degradations.calibration`); an option
left unset (``null``) takes that value, with a log line saying so; an explicit option overrides it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math

import torch

from degrade_lab.archs.lowpass import KeepLowFrequencies
from degrade_lab.degradations.base import Degrader, Range, as_range, sample_uniform
from degrade_lab.errors import UserInputError
from degrade_lab.utils.checkpoint import load_model_of

log = logging.getLogger(__name__)


def model_name(class_path: str) -> str:
    """``degrade_lab.lit.deflow.DeFlowModule`` -> ``deflow`` (the ``model=`` / ``degrader=`` name)."""
    parts = class_path.split(".")
    return parts[-2] if len(parts) >= 2 else class_path


class LearnedDegrader(Degrader):
    """A trained degradation model's checkpoint as a degrader.

    Args:
        ckpt: a run's ``checkpoints/last.ckpt`` or ``best.ckpt``.
        trained_by: the dotted name of the LightningModule whose checkpoints this degrader runs (a config
            sets it; subclasses fix it).
        options: the per-image options of the network's ``synthesize``: ``{name: number or [low, high]}``,
            a range drawn uniformly per image (``degrader.options.temperature=[0.8,1]``); options not
            given keep the network's defaults.
        tile_size: process images larger than this in tiles (pixels; 0 = never), without seams.
        bf16: run under bfloat16 autocast (faster where the hardware has bf16 units).
        compile: ``torch.compile`` the model's networks (true or a mode, as ``model.compile``): the first images
            wait for the compilation (minutes on a CPU), later ones may run faster; docs/scaling.md has figures.
        lowpass_sigma: > 0: keep the input's frequencies below a Gaussian of this std (pixels) and take
            only the model's residual above it (see the module docstring); 0: the model's output as it is;
            None: the model's ``default_lowpass_sigma`` (0 where it has none; always 0 for ``n2c``).
        direction: ``c2n`` (clean -> degraded, the default) or ``n2c`` (degraded -> clean, for models whose
            ``net.synthesize`` takes ``reverse=True``: the input is a degraded image, normalised like the model's
            degraded domain, and the output its clean estimate at the same size).
        module: an already loaded LightningModule instead of ``ckpt``.
    """

    #: the LightningModule class (dotted path) whose checkpoints a subclass runs
    trained_by: str = ""
    #: what the output is (synthesis writes ``clean`` outputs as the clean side of a pair)
    produces = "degraded"

    def __init__(self, ckpt: str | None = None, trained_by: str | None = None, options: dict | None = None,
                 tile_size: int = 512, bf16: bool = False, lowpass_sigma: float | None = None, module=None,
                 direction: str = "c2n", compile: bool | str = False):
        super().__init__()
        if module is not None and not (trained_by or self.trained_by):
            trained_by = f"{type(module).__module__}.{type(module).__qualname__}"
        if lowpass_sigma is not None and lowpass_sigma < 0:
            raise UserInputError(f"degrader.lowpass_sigma must be >= 0 (pixels), got {lowpass_sigma}.")
        self.trained_by = trained_by or self.trained_by
        self.name = model_name(self.trained_by)
        if module is None:
            if not self.trained_by:
                raise UserInputError("a learned degrader's config must name the model it runs: trained_by=...")
            module = load_model_of(ckpt, self.trained_by, self.name).requires_grad_(False)
        self.module = module.eval()
        if compile:
            module.compile_networks(compile, option="degrader.compile")
        self.tile_size, self.bf16 = int(tile_size or 0), bool(bf16)
        self.scale = int(getattr(module, "scale", 1))
        if direction not in ("c2n", "n2c"):
            raise UserInputError(f"degrader.direction must be c2n or n2c, got {direction!r}.")
        self.reverse = direction == "n2c"
        if lowpass_sigma is None:  # the model's own default (DeFlow keeps the content of its denoising pairs)
            lowpass_sigma = 0.0 if self.reverse else float(getattr(module, "default_lowpass_sigma", 0.0))
        self.keep_low_frequencies = KeepLowFrequencies(float(lowpass_sigma))
        if self.reverse:
            if "reverse" not in inspect.signature(module.net.synthesize).parameters:
                raise UserInputError(f"{self.name} has no degraded -> clean translation: use degrader.direction=c2n.")
            self.produces, self.scale = "clean", 1
        #: the stored calibration (``{"option", "value", ...}``) or None
        self.calibration = getattr(module, "calibration", None) or None
        options = dict(options or {})
        if self.calibration and self.calibration["option"] in self._accepted_options():
            name = self.calibration["option"]
            options[name] = self.calibrated(name, options.get(name), None)
        self.options = self._network_options({key: value for key, value in options.items() if value is not None})

    def calibrated(self, option: str, value, default):
        """``value`` when given; else the checkpoint's calibrated value when ``option`` is the calibrated one
        (logged); else ``default``."""
        if value is not None:
            return value
        if self.calibration and self.calibration.get("option") == option:
            log.info("%s: using the calibrated %s = %g (noise std %.2f synthetic / %.2f target); set "
                     "degrader.%s to override", self.name, option, self.calibration["value"],
                     self.calibration.get("noise_std_synthetic", math.nan),
                     self.calibration.get("noise_std_target", math.nan), option)
            return self.calibration["value"]
        return default

    def set_option(self, name: str, value: Range) -> None:
        """Fix option ``name`` (a number or ``[low, high]``) from now on (calibration searches this way)."""
        self.options.update(self._network_options({name: value}))

    def _accepted_options(self) -> list[str]:
        """The per-image options of the network's ``synthesize``: its keyword-only arguments and those with
        defaults (``tile_size`` aside)."""
        return [name for name, parameter in inspect.signature(self.module.net.synthesize).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY
                or (parameter.default is not inspect.Parameter.empty and name not in ("tile_size", "reverse"))]

    def _network_options(self, options: dict) -> dict[str, tuple[float, float]]:
        """``options`` checked against the keyword arguments of the network's ``synthesize``."""
        if not options:
            return {}
        accepted = self._accepted_options()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UserInputError(
                f"degrader.options: {', '.join(unknown)} is not an option of {type(self.module.net).__name__}; "
                f"it takes: {', '.join(accepted) or 'none'}."
            )
        return {key: self.option(value, f"options.{key}", -math.inf) for key, value in options.items()}

    @staticmethod
    def option(value: Range, name: str, minimum: float = 0.0) -> tuple[float, float]:
        """A per-image option given as a number or a ``[low, high]`` range, checked against ``minimum``."""
        low_high = as_range(value, name)
        if low_high[0] < minimum:
            raise UserInputError(f"degrader.{name} must be >= {minimum:g}, got {value}.")
        return low_high

    @staticmethod
    def seeds(batch: int, generator: torch.Generator | None, device) -> list[int]:
        """One seed per image: it addresses every random number of that image's translation."""
        return torch.randint(2**62, (batch,), generator=generator, device=device).tolist()

    @staticmethod
    def draw(low_high: tuple[float, float], batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
        return sample_uniform(low_high, batch, generator, device)

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def degrade(self, image, generator=None):
        """The network's ``synthesize`` on the clean images after the model's task operator (``clean_operator``:
        identity for denoising, bicubic for SR), its output mapped back by the model's colour normalisation
        (``normalization``, AIM19) when the model has them."""
        batch, device = image.shape[0], image.device
        seeds = self.seeds(batch, generator, device)
        drawn = {key: self.draw(low_high, batch, generator, device) for key, low_high in self.options.items()}
        for key, values in drawn.items():
            self.record(key, values)
        operator = getattr(self.module, "clean_operator", None)
        normalization = getattr(self.module, "normalization", None)
        if self.reverse:  # a degraded image, in the model's degraded-domain colours; the output is clean
            source = normalization(image.float()) if normalization is not None else image.float()
            with self.autocast(device):
                out = self.module.net.synthesize(source, seeds, tile_size=self.tile_size, reverse=True, **drawn)
            return self.keep_content(out.float(), image.float()).clamp(0, 1)
        source = operator(image.float(), generator) if operator is not None else image.float()
        with self.autocast(device):
            out = self.module.net.synthesize(source, seeds, tile_size=self.tile_size, **drawn).float()
        if normalization is not None:
            out = normalization.inverse(out)
        return self.keep_content(out, source).clamp(0, 1)

    def keep_content(self, out: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """``out`` with ``reference``'s frequencies below ``lowpass_sigma`` (unchanged when it is 0)."""
        if self.keep_low_frequencies.sigma <= 0:
            return out
        if out.shape != reference.shape:
            raise UserInputError(f"degrader.lowpass_sigma needs an output the size of its input (after the task's "
                                 f"operator); got {tuple(out.shape)} from {tuple(reference.shape)}.")
        return self.keep_low_frequencies(out, reference.float())

    def extra_repr(self):
        return (f"model={self.name}, direction={'n2c' if self.reverse else 'c2n'}, options={self.options}, "
                f"tile_size={self.tile_size}, bf16={self.bf16}, "
                f"lowpass_sigma={self.keep_low_frequencies.sigma:g}")
