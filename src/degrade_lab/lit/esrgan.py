"""ESRGAN training (Wang et al., ECCVW 2018, sec. 3): RRDBNet generator, VGG-style discriminator,
relativistic average GAN, perceptual loss, exponential moving average of the generator.

Per step (Lightning manual optimization, BasicSR's order): a generator step on

    L_G = pixel_weight * ||G(y) - x||_1 + perceptual_weight * L_percep + gan_weight * L_G^Ra   (eq. 3)

then a discriminator step on L_D^Ra with G(y) detached; then the EMA copy of the generator is updated
(``ema_decay``, BasicSR's 0.999). Validation, checkpoints' inference and ``evaluate`` use the EMA
weights; ``ema_decay=null`` trains without one, as the real-world SR papers' ESRGAN runs did (their Real-SR /
DeFlow configs have no EMA). ``select_by="lpips"`` makes best.ckpt the lowest validation LPIPS (the papers chose
their ESRGAN checkpoints by it) instead of the highest PSNR. Defaults are the papers' SR configs: 1e-2 L1, 1 perceptual, 5e-3 GAN. The perceptual loss
is the VGG16 substitute of ESRGAN's VGG19 ``conv5_4`` (``conf/loss/perceptual.yaml``); without its
installed weights the run stops with the install command, unless ``model.perceptual_weight=0``.
``init_from`` starts the generator from a PSNR-oriented RRDBNet run (ESRGAN's two-stage training). Both the
VGG loss and ``init_from`` are used when training starts, never when a checkpoint is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from degrade_lab.errors import UserInputError
from degrade_lab.lit.adversarial import (
    TwoOptimizerSteps,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)
from degrade_lab.lit.restoration import RestorationModule
from degrade_lab.weights import MissingWeightsError


class ESRGANModule(TwoOptimizerSteps, RestorationModule):
    def __init__(self, net: nn.Module, discriminator: nn.Module, optimizer: Callable | None = None,
                 discriminator_optimizer: Callable | None = None, scheduler: Callable | None = None,
                 perceptual: Callable | None = None, pixel_weight: float = 1e-2, perceptual_weight: float = 1.0,
                 gan_weight: float = 5e-3, ema_decay: float | None = 0.999, init_from: str | None = None,
                 scale: int = 4, crop_border: int = 0, y_channel: bool = False, channels_last: bool = False,
                 val_lpips: str | None = None, select_by: str = "psnr"):
        super().__init__(net, loss="l1", optimizer=optimizer, scheduler=scheduler, scale=scale, crop_border=crop_border,
                         y_channel=y_channel, channels_last=channels_last, val_lpips=val_lpips)
        self.automatic_optimization = False
        self.discriminator = discriminator
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.pixel_weight, self.perceptual_weight, self.gan_weight = pixel_weight, perceptual_weight, gan_weight
        if perceptual_weight > 0 and perceptual is None:
            raise ValueError("perceptual_weight > 0 needs a perceptual loss (model.perceptual)")
        self.perceptual_factory, self.init_from = perceptual, init_from
        self.ema = None
        if ema_decay:
            self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            self.ema.requires_grad_(False)
        if select_by not in ("psnr", "lpips"):
            raise ValueError(f"select_by={select_by!r}: psnr or lpips")
        if select_by == "lpips":
            self.monitor, self.monitor_mode = "val/lpips", "min"
        # built when training starts (setup): rebuilding a checkpoint needs neither the VGG weights nor
        # the init_from run
        self.keep_out_of_checkpoints("perceptual_loss", None)
        self.skipped: dict[str, int] = {}

    def setup(self, stage: str) -> None:
        """Before training: start the generator (and its average) from ``init_from``, build the VGG loss."""
        if stage == "fit" and self.monitor == "val/lpips" and self.val_lpips is None:
            raise UserInputError("model.select_by=lpips chooses best.ckpt by the validation LPIPS, which needs "
                                 "model.val_lpips=alex and its installed weights (degrade-lab weights install).")
        if stage != "fit":
            return
        if self.init_from and self.trainer.ckpt_path is None:  # a resumed run loads its own weights
            self._load_generator(self.init_from)
            if self.ema is not None:
                self.ema.module.load_state_dict(self.net.state_dict())
        if self.perceptual_weight > 0 and self.perceptual_loss is None:
            try:
                self.keep_out_of_checkpoints("perceptual_loss", self.perceptual_factory())
            except MissingWeightsError as err:
                raise MissingWeightsError(f"{err} Or train without the perceptual term: model.perceptual_weight=0.") from err

    def _load_generator(self, path: str) -> None:
        from degrade_lab.utils.checkpoint import load_model

        source, _ = load_model(path)
        try:
            self.net.load_state_dict(source.net.state_dict())
        except RuntimeError as err:
            raise UserInputError(f"model.init_from='{path}' does not hold this generator ({err})") from err

    def restore(self, degraded: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        if self.channels_last:
            degraded = degraded.contiguous(memory_format=torch.channels_last)
        # the averaged generator is the result, where there is one
        return (self.ema.module if self.ema is not None else self.net)(degraded)

    def generator_loss(self, batch, restored: torch.Tensor) -> dict[str, torch.Tensor]:
        clean = batch["clean"]
        terms = {"pixel": F.l1_loss(restored.float(), clean)}
        loss = self.pixel_weight * terms["pixel"]
        if self.perceptual_loss is not None:
            self.perceptual_loss.to(restored.device)
            terms["perceptual"] = self.perceptual_loss(restored.float(), clean)
            loss = loss + self.perceptual_weight * terms["perceptual"]
        if self.gan_weight > 0:
            terms["gan"] = relativistic_generator_loss(self.discriminator, clean, restored)
            loss = loss + self.gan_weight * terms["gan"]
        terms["loss"] = loss
        return terms

    def discriminator_loss(self, batch, restored: torch.Tensor) -> torch.Tensor:
        return relativistic_discriminator_loss(self.discriminator, batch["clean"], restored)

    def training_step(self, batch, batch_idx):
        size = batch["degraded"].shape[0]
        terms: dict[str, torch.Tensor] = {}
        restored: dict[str, torch.Tensor] = {}

        def generator() -> torch.Tensor:
            restored["image"] = self.net(batch["degraded"])
            terms.update(self.generator_loss(batch, restored["image"]))
            return terms["loss"]

        self.gan_step(0, "generator", generator)
        if self.gan_weight > 0:
            d_loss = self.gan_step(1, "discriminator", lambda: self.discriminator_loss(batch, restored["image"]))
            self.log("train/discriminator", d_loss, batch_size=size)
        if self.ema is not None:
            self.ema.update_parameters(self.net)
        self.finish_iteration(terms, size)

    def configure_optimizers(self):
        return self.build_optimizers(self.net.parameters(), self.discriminator.parameters())
