"""VDIR training (Soh & Cho, TIP 2022, eq. 14-19), under Lightning's manual optimization.

Each step, as in the official code: a discriminator step on the degraded input y vs the decoder's
reconstruction y_hat (eq. 16), then one step of encoder + restorer + decoder + estimator on

    L = ||x - f(y, c)||_1 + beta * KL(q(c|y) || N(0, I)) + ||y - y_hat||_1 + lambda1 * L_adv
        + lambda2 * ||f(T) - EST(c)||_1                                               (eq. 19)

with c ~ q(c|y) by the reparameterization trick, the KL as a per-element mean ("normalized", the
official code's ``0.5 * mean(exp(s) + mu^2 - 1 - s)``), L_adv the non-saturating generator loss
(eq. 17), and f(T) the known degradation parameter of each image (``batch["parameters"][name]``,
recorded by on-the-fly degraders: ``sigma`` for AWGN, ``blur_sigma`` for SR kernels, ``quality`` for
JPEG), scaled by ``parameter_scale``. Without a known parameter (real noise) set
``estimation_weight=0``. Validation scores the restorer with the posterior mean (deterministic);
inference (``evaluate``) uses one sample of c as the paper does, or the mean with
``model.inference_sample=false``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from degrade_lab.archs.vdir import VDIR
from degrade_lab.lit.adversarial import (
    TwoOptimizerSteps,
    standard_gan_losses,
    standard_generator_loss,
)
from degrade_lab.lit.restoration import RestorationModule
from degrade_lab.losses.kl import gaussian_kl

log = logging.getLogger(__name__)


def vdir_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)) averaged over latent elements (eq. 15, normalised)."""
    return gaussian_kl(mean, 0.5 * log_variance).mean()


class VDIRModule(TwoOptimizerSteps, RestorationModule):
    """Args (beyond :class:`RestorationModule`'s):
        net: :class:`~degrade_lab.archs.vdir.VDIR`.
        discriminator: the patch discriminator on y (``None`` or ``adversarial_weight=0``: no GAN term).
        discriminator_optimizer: partial optimizer for it (default: the generator's).
        kl_weight: beta (0.01). adversarial_weight: lambda1 (1e-3). estimation_weight: lambda2 (1 when
            the degradation parameter is known, 0 for real noise).
        known_parameter / parameter_scale: which ``batch["parameters"]`` entry EST(c) regresses, and
            its scale (1/255 for sigma on 0-255, as the official code's sigma map in [0, 1]).
        inference_sample: use one sample of c at inference (the paper) instead of its mean.
    """

    def __init__(self, net: VDIR, discriminator: nn.Module | None = None, optimizer: Callable | None = None,
                 discriminator_optimizer: Callable | None = None, scheduler: Callable | None = None,
                 kl_weight: float = 0.01, adversarial_weight: float = 1e-3, estimation_weight: float = 1.0,
                 known_parameter: str | None = "sigma", parameter_scale: float = 1 / 255,
                 inference_sample: bool = True, scale: int = 1, crop_border: int = 0, y_channel: bool = False,
                 channels_last: bool = False, val_lpips: str | None = None):
        super().__init__(net, loss="l1", optimizer=optimizer, scheduler=scheduler, scale=scale, crop_border=crop_border,
                         y_channel=y_channel, channels_last=channels_last, val_lpips=val_lpips)
        self.automatic_optimization = False
        if not net.use_encoder:  # the "restorer alone" ablation: only the restoration term is left
            discriminator, adversarial_weight, kl_weight = None, 0.0, 0.0
        self.discriminator = discriminator if adversarial_weight > 0 else None
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.kl_weight, self.adversarial_weight = float(kl_weight), float(adversarial_weight)
        self.estimation_weight = float(estimation_weight) if net.estimator is not None else 0.0
        self.known_parameter, self.parameter_scale = known_parameter, float(parameter_scale)
        self.inference_sample = inference_sample
        self.skipped: dict[str, int] = {}

    def check_data(self, known: dict[str, set[str] | None]) -> None:
        """Without the known parameter in the training pairs (real pairs), train as the paper does on real
        noise: lambda2 = 0, no estimation term."""
        if self.estimation_weight and self.known_parameter not in (known.get("train") or set()):
            log.warning("the training pairs carry no '%s' (real pairs): VDIR's estimation term is off "
                        "(lambda2 = model.estimation_weight = 0), as in the paper's real-noise setting.",
                        self.known_parameter)
            self.estimation_weight = 0.0

    def restore(self, degraded: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        # inside fit (validation), the posterior mean keeps val/psnr deterministic; evaluate samples
        return self.net(degraded, sample=self.inference_sample and self._trainer is None)

    # ---- the objective ---------------------------------------------------------------------------
    def encode(self, degraded: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.net.encoder is None:
            zeros = degraded.new_zeros(degraded.shape[0], self.net.latent_channels, degraded.shape[-2] // 4,
                                       degraded.shape[-1] // 4)
            return {"latent": zeros}
        mean, log_variance = self.net.encoder(degraded)
        latent = self.net.reparameterize(mean, log_variance)
        return {"mean": mean, "log_variance": log_variance, "latent": latent,
                "reconstruction": self.net.decoder(latent)}

    def estimation_target(self, batch, like: torch.Tensor) -> torch.Tensor | None:
        parameters = batch.get("parameters") or {}
        if not self.estimation_weight or self.known_parameter not in parameters:
            return None
        values = parameters[self.known_parameter].to(like) * self.parameter_scale
        return values.view(-1, 1, 1, 1).expand_as(like)

    def generator_loss(self, batch, encoded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        degraded, clean = batch["degraded"], batch["clean"]
        restored = self.net.restorer(degraded, encoded["latent"])
        terms = {"restoration": F.l1_loss(restored.float(), clean)}
        if "mean" not in encoded:  # restorer alone
            terms["loss"] = terms["restoration"]
            return terms
        terms["kl"] = vdir_kl(encoded["mean"].float(), encoded["log_variance"].float())
        terms["reconstruction"] = F.l1_loss(encoded["reconstruction"].float(), degraded)
        loss = terms["restoration"] + self.kl_weight * terms["kl"] + terms["reconstruction"]
        if self.discriminator is not None:
            terms["adversarial"] = standard_generator_loss(self.discriminator(encoded["reconstruction"]).float())
            loss = loss + self.adversarial_weight * terms["adversarial"]
        if self.estimation_weight:
            estimate = self.net.estimator(encoded["latent"], degraded.shape[-2:]).float()
            target = self.estimation_target(batch, estimate)
            if target is None:
                raise ValueError(
                    f"VDIR's estimation term needs batch['parameters']['{self.known_parameter}'] (the known "
                    "degradation of each image): train on clean images with data.degrader=..., or set "
                    "model.estimation_weight=0 (real noise, unknown degradation)."
                )
            terms["estimation"] = F.l1_loss(estimate, target)
            loss = loss + self.estimation_weight * terms["estimation"]
        terms["loss"] = loss
        return terms

    def discriminator_loss(self, batch, reconstruction: torch.Tensor) -> torch.Tensor:
        return standard_gan_losses(self.discriminator(batch["degraded"]).float(),
                                   self.discriminator(reconstruction.detach()).float())

    def training_step(self, batch, batch_idx):
        size = batch["degraded"].shape[0]
        if batch["degraded"].shape[-2] % 4 or batch["degraded"].shape[-1] % 4:
            raise ValueError(f"VDIR trains on crops whose sides are multiples of 4 (its latent is at 1/4 "
                             f"resolution); got {tuple(batch['degraded'].shape[-2:])}: change data.crop_size")
        encoded = self.encode(batch["degraded"])
        if self.discriminator is not None:
            d_loss = self.gan_step(1, "discriminator", lambda: self.discriminator_loss(batch, encoded["reconstruction"]))
            self.log("train/discriminator", d_loss, batch_size=size)
        terms: dict[str, torch.Tensor] = {}

        def generator() -> torch.Tensor:
            terms.update(self.generator_loss(batch, encoded))
            return terms["loss"]

        self.gan_step(0, "generator", generator)
        self.finish_iteration(terms, size)

    def configure_optimizers(self):
        discriminator = self.discriminator.parameters() if self.discriminator is not None else None
        return self.build_optimizers(self.net.parameters(), discriminator)
