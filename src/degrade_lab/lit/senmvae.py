"""Training SeNM-VAE from a few pairs plus unpaired clean and degraded domains (Zheng et al., CVPR 2024).

The objective is eq. (9), split by domain as in eq. (10)-(11) so that every batch contributes the term
of the domain it comes from (``batch["domain"]``: -1 paired, 0 source = clean only, 1 target = degraded
only), and nothing else:

* **paired** (x, y), Loss_p: z is drawn from the mixture posterior q(z|x,y) = p1 q(z|x) + p2 q(z|y)
  (eq. 5) by a per-image coin (the authors' code); ``MSE(decode(z), x)`` (the clean reconstruction of
  eq. 9) + ``MSE(decode(z, z_n), y)`` + w KL(q(z_n|y,z) || p(z_n|z)) + w λ KL(q(z|y) || q(z|x)) (the
  bound of Proposition 1, eq. 7, summed over the two decodes as the code does) + the level predictor's
  L1 to the true level sigma = std(y - x) (sec. 3.2), which is also the level the decoder sees;
* **source** x, Loss_s: ``MSE(decode(z), x)`` with z ~ q(z|x);
* **target** y, Loss_t: ``MSE(decode(z, z_n), y) + w KL(q(z_n|y,z) || p(z_n|z))`` with z ~ q(z|y) and
  the level predicted from y by :class:`~degrade_lab.archs.senmvae.NoiseLevelNet` (not detached: the
  VAE loss trains it too, as in the code).

Wherever y is reconstructed (paired, target), LPIPS (AlexNet, weight 1e-2) and a relativistic-average
PatchGAN term (weight 0.1) supplement the L2 loss (sec. 4.2); the discriminator steps after the
generator on (real y, reconstructed y). Every KL is averaged over channels and pixels per level and
summed over levels; w rises linearly to ``kl_weight`` over ``kl_anneal_steps`` (code: 1e-2 over 10k
steps, the KL annealing of sec. 4.2), λ = ``content_kl_ratio`` (paper: 1e-7, fig. 7). Stability as in
the authors' code: a step whose loss is not finite, or whose generator gradient norm reaches
``skip_grad_norm`` (150), is skipped and counted; other steps are clipped at ``clip_grad_norm`` (200).

Real-world SR (sec. 4.6, Tables 4-5): ``clean_operator`` is the bicubic down-sampling B, and the model learns
y = B(x) + n' (n' = n + D(x) - B(x): whatever separates the true down-sampling from bicubic counts as degradation)
on B(x) wherever it sees a clean image; a synthesized image is then B(x) degraded, an LR image of the HR one.

Validation translates the clean side of the validation pairs at the level of the real pair
(std(real - clean), the authors' test script) and scores the synthetic noise against the real one:
``val/akld`` (model selection), ``val/kld``, ``val/psnr_synthetic``, and ``val/level_error`` (the level
predictor's mean absolute error, 0-255).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MinMetric

from degrade_lab.archs.senmvae import NoiseLevelNet, SeNMVAE
from degrade_lab.data import domains as D
from degrade_lab.lit.adversarial import (
    TwoOptimizerSteps,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)
from degrade_lab.lit.base import DegradeLabModule
from degrade_lab.lit.degradation_scores import build_clean_operator, log_validation_scores
from degrade_lab.metrics import AKLD, NoiseKLD, psnr
from degrade_lab.metrics.residual import ResidualStatistics
from degrade_lab.utils.io import quantize_8bit
from degrade_lab.weights import MissingWeightsError

log = logging.getLogger(__name__)


def true_level(clean: torch.Tensor, degraded: torch.Tensor) -> torch.Tensor:
    """The degradation level of a pair: the standard deviation of ``degraded - clean`` per image ([0, 1])."""
    return (degraded.float() - clean.float()).flatten(1).std(dim=1)


class SeNMVAEModule(TwoOptimizerSteps, DegradeLabModule):
    """SeNM-VAE as a LightningModule (manual optimization: generator + level predictor, then the
    discriminator).

    Args:
        net / level_net / discriminator: :class:`SeNMVAE`, :class:`NoiseLevelNet` and the PatchGAN
            (``None`` trains without the GAN term).
        optimizer / discriminator_optimizer / scheduler: partial factories (scheduler stepped per step).
        kl_weight / kl_anneal_steps: w, the weight of the z_n KL after its linear warm-up.
        content_kl_ratio: λ, the weight of KL(q(z|y) || q(z|x)) relative to w (effective weight w λ).
        clean_reconstruction: keep the clean reconstruction term (Table 6 ablation: false; the source
            domain then contributes nothing, so switch it off in the data: ``data.weights.source=0``).
        level_weight: weight of the level predictor's L1 loss.
        lpips_weight / lpips_net / weights_source: the LPIPS term on reconstructed degraded images (needs
            the installed backbone, ``degrade-lab weights install``, unless its weight is 0).
        gan_weight: weight of the relativistic GAN term for the generator.
        posterior_mix: p1 of eq. (5), the probability that a paired image's z comes from q(z|x).
        skip_grad_norm / clip_grad_norm: skip a generator step whose gradient norm reaches the first
            (0: never), clip to the second (0: never).
        val_temperature: temperature of the scored validation translations.
        grid_level_factors: the validation grid adds the first image translated at these multiples of
            its true level (how the strength follows the level).
        clean_operator: the task's known operator on the clean side (a Degrader, ``conf/degrader``; real-world
            SR: ``degrader@model.clean_operator=bicubic``), applied to every clean image before the model sees
            it; none: the identity (denoising).
    """

    data_kind = "semi"
    monitor, monitor_mode = "val/akld", "min"
    degrader_target = "degrade_lab.degradations.senmvae.SeNMVAEDegrader"
    #: calibration sets the degradation level (noise std on [0, 1]) whose samples read like the target folder
    calibration_option, calibration_range = "level", (0.002, 0.3)

    def __init__(
        self,
        net: SeNMVAE,
        level_net: NoiseLevelNet,
        discriminator: nn.Module | None = None,
        optimizer: Callable | None = None,
        discriminator_optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        kl_weight: float = 1e-2,
        kl_anneal_steps: int = 10_000,
        content_kl_ratio: float = 1e-7,
        clean_reconstruction: bool = True,
        level_weight: float = 1.0,
        lpips_weight: float = 1e-2,
        lpips_net: str = "alex",
        weights_source: str = "pypi",
        gan_weight: float = 0.1,
        posterior_mix: float = 0.5,
        skip_grad_norm: float = 150.0,
        clip_grad_norm: float = 200.0,
        val_temperature: float = 1.0,
        grid_level_factors: tuple[float, ...] = (0.5, 2.0),
        clean_operator: Any = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        if not 0.0 <= posterior_mix <= 1.0:
            raise ValueError(f"posterior_mix is a probability, got {posterior_mix}")
        self.net, self.level_net = net, level_net
        self.discriminator = discriminator if gan_weight > 0 else None
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.kl_weight, self.kl_anneal_steps = float(kl_weight), int(kl_anneal_steps)
        self.content_kl_ratio, self.clean_reconstruction = float(content_kl_ratio), bool(clean_reconstruction)
        self.level_weight, self.lpips_weight, self.gan_weight = float(level_weight), float(lpips_weight), float(gan_weight)
        self.lpips_net, self.weights_source = lpips_net, weights_source
        self.posterior_mix = float(posterior_mix)
        self.skip_grad_norm, self.clip_grad_norm = float(skip_grad_norm), float(clip_grad_norm)
        self.val_temperature = float(val_temperature)
        self.grid_level_factors = [float(f) for f in grid_level_factors]
        self.clean_operator = build_clean_operator(clean_operator)
        self.scale = int(getattr(self.clean_operator, "scale", 1))
        # the range of true levels of the training pairs (the degrader's default range; it warns outside)
        self.register_buffer("level_range", torch.tensor([float("inf"), float("-inf")]))
        self.val_kld, self.val_akld, self.val_psnr, self.val_level_error = NoiseKLD(), AKLD(), MeanMetric(), MeanMetric()
        self.val_residual = ResidualStatistics()
        self.val_akld_best = MinMetric()
        self.skipped: dict[str, int] = {}
        self.keep_out_of_checkpoints("lpips_loss", None)  # built at fit start

    # ---- set-up --------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.lpips_weight > 0 and self.lpips_loss is None:
            from degrade_lab.losses.perceptual import LPIPSLoss

            try:
                self.keep_out_of_checkpoints("lpips_loss", LPIPSLoss(self.lpips_net, self.weights_source))
            except MissingWeightsError as err:
                raise MissingWeightsError(f"{err} Or train without the LPIPS term: model.lpips_weight=0.") from err

    def trained_level_range(self) -> tuple[float, float] | None:
        low, high = self.level_range.tolist()
        return (low, high) if low <= high else None

    # ---- the objective, per domain -------------------------------------------------------------
    def paired_terms(self, clean: torch.Tensor, degraded: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss_p's terms for aligned ``clean`` / ``degraded`` batches."""
        net = self.net
        level = true_level(clean, degraded)
        with torch.no_grad():
            self.level_range.copy_(torch.stack([torch.minimum(self.level_range[0], level.min()),
                                                torch.maximum(self.level_range[1], level.max())]))
        use_clean = torch.rand(clean.shape[0], device=clean.device) < self.posterior_mix
        h, low, noise = net.clean_encoder(clean), net.content_encoder(degraded), net.noise_encoder(degraded)
        rec = net.decode(h, low, noise, level, use_clean_posterior=use_clean, with_noise=True)
        terms = {"recon_degraded": F.mse_loss(rec["image"].float(), degraded.float()),
                 "kl_noise": rec["kl_noise"].mean(), "kl_content": rec["kl_z"].mean(),
                 "level_l1": F.l1_loss(self.level_net(degraded).float(), level),
                 "reconstructed": rec["image"]}
        if self.clean_reconstruction:
            rec_clean = net.decode(h, low, use_clean_posterior=use_clean)
            terms["recon_clean"] = F.mse_loss(rec_clean["image"].float(), clean.float())
            terms["kl_content"] = terms["kl_content"] + rec_clean["kl_z"].mean()
        return terms

    def source_terms(self, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss_s: the clean image reconstructed from z ~ q(z|x)."""
        rec = self.net.decode(self.net.clean_encoder(clean), None)
        return {"recon_clean": F.mse_loss(rec["image"].float(), clean.float())}

    def target_terms(self, degraded: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss_t: the degraded image reconstructed from z ~ q(z|y) and z_n ~ q(z_n|y, z) at the
        predicted level."""
        net = self.net
        level = self.level_net(degraded)
        rec = net.decode(None, net.content_encoder(degraded), net.noise_encoder(degraded), level, with_noise=True)
        return {"recon_degraded": F.mse_loss(rec["image"].float(), degraded.float()),
                "kl_noise": rec["kl_noise"].mean(), "reconstructed": rec["image"]}

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        """The batch's domain terms, its perceptual and adversarial terms, and their weighted sum
        ``loss``; ``reconstructed`` holds the reconstructed degraded images when there are any."""
        domain = batch["domain"]
        kinds = torch.unique(domain).tolist()
        if len(kinds) != 1:
            raise ValueError(f"a SeNM-VAE batch must come from one domain, got labels {kinds}")
        kind = int(kinds[0])
        if kind == D.PAIRED:
            terms = self.paired_terms(self.clean_operator(batch["clean"]), batch["degraded"])
        elif kind == D.SOURCE:
            if not self.clean_reconstruction:
                raise ValueError("without the clean reconstruction term the source domain contributes no "
                                 "loss: switch it off with data.weights.source=0")
            terms = self.source_terms(self.clean_operator(batch["clean"]))
        else:
            terms = self.target_terms(batch["degraded"])
        w = self.current_kl_weight()
        loss = terms.get("recon_clean", 0.0) + terms.get("recon_degraded", 0.0)
        if "kl_noise" in terms:
            loss = loss + w * terms["kl_noise"]
        if "kl_content" in terms:
            loss = loss + w * self.content_kl_ratio * terms["kl_content"]
        if "level_l1" in terms:
            loss = loss + self.level_weight * terms["level_l1"]
        if "reconstructed" in terms:
            real, fake = batch["degraded"], terms["reconstructed"]
            if self.lpips_loss is not None:
                self.lpips_loss.to(fake.device)
                terms["lpips"] = self.lpips_loss(fake.float().clamp(0, 1), real.float())
                loss = loss + self.lpips_weight * terms["lpips"]
            if self.discriminator is not None:
                terms["gan"] = relativistic_generator_loss(self.discriminator, real, fake)
                loss = loss + self.gan_weight * terms["gan"]
        terms["loss"] = loss
        return terms

    # ---- training ------------------------------------------------------------------------------
    def _generator_parameters(self) -> list[nn.Parameter]:
        return [*self.net.parameters(), *self.level_net.parameters()]

    def _check_gradients(self, optimizer) -> bool:
        """The authors' guard: skip the step when the gradient norm reaches ``skip_grad_norm``, else
        clip it to ``clip_grad_norm``. Under an fp16 grad scaler the gradients are still scaled, so the
        thresholds are scaled with them."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        scale = float(scaler.get_scale()) if scaler is not None else 1.0
        clip = self.clip_grad_norm * scale if self.clip_grad_norm > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self._generator_parameters(), clip)) / scale
        self._last_grad_norm = norm
        # an fp16 overflow (inf) is the grad scaler's to skip; anything else that large is ours
        if self.skip_grad_norm > 0 and norm >= self.skip_grad_norm and (math.isfinite(norm) or scaler is None):
            self.skipped["grad_norm"] = self.skipped.get("grad_norm", 0) + 1
            log.warning("step %d: generator gradient norm %.1f >= %.1f; the step is skipped (%d so far)",
                        self.global_step, norm, self.skip_grad_norm, self.skipped["grad_norm"])
            return False
        return True

    def training_step(self, batch, batch_idx):
        size = batch["domain"].shape[0]
        terms: dict[str, torch.Tensor] = {}

        def generator() -> torch.Tensor:
            terms.update(self.loss_terms(batch))
            return terms["loss"]

        self.gan_step(0, "generator", generator, before_step=self._check_gradients)
        fake = terms.pop("reconstructed", None)
        if self.discriminator is not None and fake is not None:
            real = batch["degraded"]

            terms["discriminator"] = self.gan_step(
                1, "discriminator", lambda: relativistic_discriminator_loss(self.discriminator, real, fake))
        self.log("train/kl_weight", self.current_kl_weight(), batch_size=size)
        if hasattr(self, "_last_grad_norm"):
            self.log("train/grad_norm", self._last_grad_norm, batch_size=size)
        self.finish_iteration(terms, size)

    # ---- validation: synthetic vs real degradation at the real pair's level --------------------
    def _translate(self, clean: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        seeds = torch.randint(2**62, (clean.shape[0],), generator=self.validation_generator, device=self.device).tolist()
        temperatures = torch.full((clean.shape[0],), self.val_temperature, device=self.device)
        return quantize_8bit(self.net.synthesize(clean, seeds, levels, temperatures))

    def validation_step(self, batch, batch_idx):
        clean, real = self.clean_operator(batch["clean"]), batch["degraded"]
        level = true_level(clean, real)
        synthetic = self._translate(clean, level)
        self.val_kld.update(synthetic, real, clean)
        self.val_akld.update(synthetic, real, clean)
        self.val_psnr.update(psnr(synthetic, clean))
        self.val_residual.update(synthetic, real, clean)
        self.val_level_error.update((self.level_net(real).float() - level).abs() * 255)
        panels, caption = [clean, real, synthetic], "clean | real degraded | synthetic at the real level"
        if batch_idx == 0 and self.grid_level_factors:  # only the grid's first row needs more samples
            factors = torch.tensor(self.grid_level_factors, device=self.device)
            extra = self._translate(clean[:1].expand(len(factors), -1, -1, -1), level[:1] * factors)
            panels += list(extra.split(1))
            caption += " | " + " | ".join(f"level x{f:g}" for f in self.grid_level_factors)
        return {"grid": panels, "caption": caption}

    def on_validation_epoch_end(self):
        log_validation_scores(self, self.val_akld, self.val_akld_best,
                              {"val/kld": self.val_kld, "val/psnr_synthetic": self.val_psnr,
                               "val/level_error": self.val_level_error, "val/residual": self.val_residual})

    def configure_optimizers(self):
        discriminator = self.discriminator.parameters() if self.discriminator is not None else None
        return self.build_optimizers(self._generator_parameters(), discriminator)
