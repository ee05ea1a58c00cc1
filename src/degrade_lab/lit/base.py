"""What every degrade_lab LightningModule shares: the metric ``best.ckpt`` tracks, optimizers from partial
configs (one, or generator + discriminator), the KL warm-up, the seeded validation generator, the guard
that skips a step whose loss is not finite, and loss / metric networks kept out of checkpoints.

A new model subclasses :class:`DegradeLabModule`, sets ``data_kind`` (``paired``, ``unpaired``, ``semi``),
``monitor`` / ``monitor_mode`` (the checkpoint callback's ``monitor: auto`` and the sweeper's
``optimized_metric`` follow them) and, for a degradation model, ``degrader_target`` and the option that
calibration tunes (``calibration_option``, searched in ``calibration_range``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)
#: ``model.compile``: what torch.compile's ``mode`` each choice means (true: the default mode)
COMPILE_MODES = {True: "default", "default": "default", "reduce-overhead": "reduce-overhead",
                 "max-autotune": "max-autotune", "max-autotune-no-cudagraphs": "max-autotune-no-cudagraphs"}


def compile_parts(network: torch.nn.Module, mode: str = "default", prefix: str = "") -> list[str]:
    """``torch.compile`` (``nn.Module.compile``, in place) each part of ``network`` that holds parameters: its
    children, looking through ``ModuleList`` / ``ModuleDict`` (``network`` itself when it has no such part).
    Returns the compiled parts' names."""
    from torch import nn

    def parts(module: nn.Module, at: str):
        for name, child in module.named_children():
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                yield from parts(child, f"{at}{name}.")
            elif any(True for _ in child.parameters()):
                yield f"{at}{name}", child

    found = list(parts(network, prefix)) or [(prefix.rstrip(".") or type(network).__name__, network)]
    import torch._dynamo

    # every compiled part shares one traced function (nn.Module's call), specialised per part: dynamo's default of
    # 8 versions would leave the parts past the eighth uncompiled (DRUNet has nine)
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, 4 * len(found))
    config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 8 * len(found))
    for _, part in found:
        part.compile(mode=mode)
    return [name for name, _ in found]


def instantiate_model(config) -> DegradeLabModule:
    """Build a LightningModule from its config (``_target_`` + arguments). ``compile`` (false, true or a
    torch.compile mode) is taken out first: it is how the networks run, not what they are, so every model takes it
    and checkpoints load the same with or without it (:meth:`DegradeLabModule.compile_networks`)."""
    from omegaconf import DictConfig, OmegaConf

    from degrade_lab.utils.trusted_targets import COMMAND_LINE, instantiate

    config = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    mode = config.pop("compile", False)
    module = instantiate(config, origin=COMMAND_LINE)
    if mode not in (False, None, "false", "none"):
        module.compile_networks(mode)
    return module


class DegradeLabModule(pl.LightningModule):
    #: which data module the train task builds: ``paired``, ``unpaired`` or ``semi``
    data_kind = "paired"
    #: what checkpoints/best.ckpt tracks, and in which direction
    monitor, monitor_mode = "val/psnr", "max"
    #: degradation models: what best.ckpt tracks (same direction) when validation has no pairs, or None
    unpaired_monitor: str | None = None
    #: degradation models: the Degrader class (dotted path) that runs their checkpoints
    degrader_target: str | None = None
    #: degradation models: the degrader option ``degrade-lab calibrate`` tunes, and the range it searches
    calibration_option: str | None = None
    calibration_range: tuple[float, float] = (0.25, 4.0)
    #: what calibration matches (:mod:`degrade_lab.degradations.calibration`): ``reading`` or ``residual``
    calibration_statistic: str = "reading"
    #: a loaded checkpoint's stored calibration (``load_model`` sets it), else None
    calibration: dict | None = None
    #: every validation starts from this seed, so validation scores are comparable between steps
    validation_seed = 12345
    #: models with a KL term set these (the weight after the linear warm-up, and its length in steps)
    kl_weight, kl_anneal_steps = 0.0, 0

    optimizer_factory: Callable | None = None
    scheduler_factory: Callable | None = None
    discriminator_optimizer_factory: Callable | None = None

    def compile_networks(self, mode=True, option: str = "model.compile") -> list[str]:
        """``torch.compile`` the networks of the module in place (``nn.Module.compile``: parameter names and
        checkpoints do not change), not the metrics. Each network's parts (its child modules, through lists) are
        compiled rather than the network itself, because training and synthesis call a network's own methods
        (``decode``, ``nll``, ``synthesize``), not only its ``forward``. Returns the compiled modules' names."""
        from torchmetrics import Metric

        if mode not in COMPILE_MODES:
            from degrade_lab.errors import UserInputError

            raise UserInputError(f"{option}={mode!r}: choose false, true or one of "
                                 f"{', '.join(m for m in COMPILE_MODES if isinstance(m, str))}.")

        names = []
        for name, network in self.named_children():
            if not isinstance(network, Metric) and any(True for _ in network.parameters()):
                names += compile_parts(network, COMPILE_MODES[mode], f"{name}.")
        log.info("torch.compile (mode %s): %s", COMPILE_MODES[mode], ", ".join(names))
        return names

    def keep_out_of_checkpoints(self, name: str, value) -> None:
        """Attach a network (a perceptual loss, an LPIPS metric) without registering it as a sub-module:
        checkpoints neither carry it nor need its backbone's weights to load."""
        object.__setattr__(self, name, value)

    def current_kl_weight(self, step: int | None = None) -> float:
        """The linear KL warm-up: ``kl_weight * min(step / kl_anneal_steps, 1)``."""
        step = self.global_step if step is None else step
        if self.kl_anneal_steps <= 0:
            return self.kl_weight
        return self.kl_weight * min(step / self.kl_anneal_steps, 1.0)

    def on_validation_epoch_start(self):
        self.validation_generator = torch.Generator(device=self.device).manual_seed(self.validation_seed)

    def skip_non_finite(self, loss: torch.Tensor) -> bool:
        """True (and counted in ``train/skipped_steps``) when ``loss`` is not finite: the caller returns
        ``None`` so that Lightning skips the optimizer step and the weights stay intact."""
        if torch.isfinite(loss):
            return False
        self.skipped_steps = getattr(self, "skipped_steps", 0) + 1
        self.log("train/skipped_steps", float(self.skipped_steps))
        return True

    def build_optimizers(self, parameters: Iterable, discriminator_parameters: Iterable | None = None):
        """``configure_optimizers``' answer: the partial optimizer on ``parameters`` (and the discriminator's,
        default the same config, on ``discriminator_parameters``), each with the optional per-step scheduler."""
        if self.optimizer_factory is None:
            raise ValueError("model.optimizer is not set (a partial optimizer config is needed to train)")
        optimizers = [self.optimizer_factory(params=parameters)]
        if discriminator_parameters is not None:
            factory = self.discriminator_optimizer_factory or self.optimizer_factory
            optimizers.append(factory(params=discriminator_parameters))
        if self.scheduler_factory is None:
            return optimizers[0] if len(optimizers) == 1 else optimizers
        return optimizers, [{"scheduler": self.scheduler_factory(optimizer=o), "interval": "step"} for o in optimizers]
