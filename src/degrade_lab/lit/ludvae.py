"""Training LUD-VAE on unpaired clean and degraded folders (Zheng et al., TPAMI 2023, sec. 3).

Loss = -(ELBO_x + ELBO_y) (eq. 10-11, 18-19), computed per domain and summed:

* clean domain (source, label 0): ``MSE(recon(x), x)`` where ``x = T(clean)`` is the clean image after
  the task's known operator T (identity for denoising, bicubic x4 for real-world SR, eq. 23-24,
  ``c * x^gamma`` for low light, eq. 26). No latent is used, so there is no KL term;
* degraded domain (target, label 1): ``MSE(recon(y), y) + w * KL`` with the KL of every latent level
  summed and divided by (images x C x H x W), as the authors normalise it.

The encoder's conditioning input is the pre-processed image h(.) of eq. (20): Gaussian noise of
``noise_level_clean`` (sigma_x) on clean images and ``noise_level_degraded`` (sigma_y) on degraded
ones, on the 0-255 scale. The KL weight rises linearly from 0 to ``kl_weight`` over
``kl_anneal_steps`` (authors: 1e-4 over 10k steps). There is no paired term: a batch of one domain
never touches the other domain's loss.

Loss balance. The authors draw both domains into every batch (a class-balanced sampler, about half each)
and take the reconstruction MSE over the whole batch but divide the KL by the degraded images' elements only,
so each domain's reconstruction weighs about 0.5 against a KL of full weight. Our batches hold one domain
each (``data/samplers.py``); ``loss_balance="mixed_batch"`` gives the authors' balance in expectation by
halving each domain's reconstruction term, ``"per_batch"`` keeps it at 1 (the KL then weighs half as much
relative to the reconstruction as in the authors' training).

Validation translates the clean side of the validation pairs (C2N) and scores the synthetic noise
against the real one: ``val/kld``, ``val/akld`` (model selection: lowest AKLD), ``val/psnr_synthetic``. It also
compares the synthetic images' blind noise reading with the degraded training folder's (``val/noise_distance``,
``val/noise_ratio``; :class:`~degrade_lab.metrics.noise_match.NoiseMatch`), which needs no pair: without
validation pairs, clean images alone are translated and ``best.ckpt`` is the lowest ``val/noise_distance``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from degrade_lab.archs.ludvae import LUDVAE
from degrade_lab.errors import UserInputError
from degrade_lab.lit.base import DegradeLabModule
from degrade_lab.lit.degradation_scores import SyntheticValidation
from degrade_lab.utils.io import quantize_8bit

#: weight of each domain's reconstruction term (the KL keeps weight 1): the authors' mixed batches hold
#: each domain about half the time, and their MSE is a mean over the whole batch
RECON_WEIGHT = {"mixed_batch": 0.5, "per_batch": 1.0}


class LUDVAEModule(SyntheticValidation, DegradeLabModule):
    """LUD-VAE as a LightningModule.

    Args:
        net: the :class:`~degrade_lab.archs.ludvae.LUDVAE` network.
        optimizer / scheduler: partial optimizer and (per-step) scheduler factories.
        clean_operator: the task's known operator T on the clean side: a Degrader (Hydra builds it from
            ``conf/degrader``, so the constructor reads no file), or, in checkpoints written before that,
            a degrader name or config
            (``null`` = identity, ``bicubic`` for x4 SR, ``lowlight``).
        noise_level_clean / noise_level_degraded: sigma_x / sigma_y of the pre-processing noise (0-255).
        kl_weight / kl_anneal_steps: final KL weight and the length of its linear warm-up.
        color_normalization: optional ``{mean_from, std_from, mean_to, std_to}`` (0-255) mapping the
            degraded domain to the clean domain's channel statistics (AIM19); outputs are mapped back.
        channels_last: run the network in channels-last memory format (faster on CPU and GPU).
        loss_balance: ``"mixed_batch"`` (the authors' balance: reconstruction terms x 0.5, see above) or
            ``"per_batch"`` (x 1).
        val_temperature: temperature of the validation translations (the scored ones).
        grid_temperatures / grid_samples: the validation image grid shows ``grid_samples`` extra
            translations of the first image at each of these temperatures (how diverse the model is).
    """

    data_kind = "unpaired"
    #: what checkpoints/best.ckpt tracks, and in which direction
    monitor, monitor_mode = "val/akld", "min"
    #: what best.ckpt tracks when validation has no pairs (train switches ``monitor`` to it)
    unpaired_monitor = "val/noise_distance"
    #: the degrader that turns a checkpoint of this module into a Degrader
    degrader_target = "degrade_lab.degradations.ludvae.LUDVAEDegrader"
    #: calibration sets the inference pre-noise level (0-255) until the noise reads like the target's: the
    #: translated pre-noise is most of the synthetic noise (the paper widens it at inference for the same
    #: reason), while the temperature multiplies the latent mean too and brings colour casts (docs/ludvae.md)
    calibration_option, calibration_range = "noise_level", (2.0, 128.0)

    @staticmethod
    def settings_from_noise(settings: dict, noise_std: float) -> dict[str, float]:
        """The model ``settings`` given as ``auto``, from the target folder's estimated per-pixel noise std ``noise_std``
        (0-255, ``degrade-lab estimate-noise``): the pre-noise rule of sec. 3.4, sigma_x^2 = sigma_y^2 + noise^2,
        with sigma_y = noise / sqrt(3) when it is ``auto`` too (so sigma_x = 2 sigma_y, the ratio of the authors'
        SIDD setting, 40 / 20, and of ludvae_cpu, 20 / 10)."""
        degraded = settings.get("noise_level_degraded", "auto")
        degraded = noise_std / math.sqrt(3) if degraded == "auto" else float(degraded)
        values = {"noise_level_degraded": degraded, "noise_level_clean": math.sqrt(degraded**2 + noise_std**2)}
        return {key: round(value, 2) for key, value in values.items() if settings.get(key) == "auto"}

    def __init__(
        self,
        net: LUDVAE,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        clean_operator: Any = None,
        noise_level_clean: float | str = 15.0,
        noise_level_degraded: float | str = 10.0,
        kl_weight: float = 1e-4,
        kl_anneal_steps: int = 10_000,
        color_normalization: dict | None = None,
        channels_last: bool = False,
        loss_balance: str = "mixed_batch",
        val_temperature: float = 1.0,
        grid_temperatures: tuple[float, ...] = (1.0, 0.5),
        grid_samples: int = 2,
    ):
        super().__init__()
        if "auto" in (noise_level_clean, noise_level_degraded):
            raise UserInputError("noise_level_clean / noise_level_degraded = auto are set by `degrade-lab train` from the "
                                 "noise it estimates in data.target; give numbers when building the module directly.")
        if noise_level_clean < 0 or noise_level_degraded < 0:
            raise ValueError("pre-processing noise levels must be >= 0")
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.channels_last = channels_last
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.set_domain_maps(clean_operator, color_normalization)
        self.noise_level_clean, self.noise_level_degraded = float(noise_level_clean), float(noise_level_degraded)
        self.kl_weight, self.kl_anneal_steps = float(kl_weight), int(kl_anneal_steps)
        if loss_balance not in RECON_WEIGHT:
            raise UserInputError(f"model.loss_balance={loss_balance!r}: choose one of {sorted(RECON_WEIGHT)}")
        self.loss_balance, self.recon_weight = loss_balance, RECON_WEIGHT[loss_balance]
        self.val_temperature = float(val_temperature)
        self.grid_temperatures, self.grid_samples = [float(t) for t in grid_temperatures], int(grid_samples)
        self.init_validation_metrics()
        self.skipped_steps = 0

    # ---- the objective -------------------------------------------------------------------------
    def prenoise(self, image: torch.Tensor, level: float | torch.Tensor) -> torch.Tensor:
        """h(.) of eq. (20): ``image + N(0, (level / 255)^2)``."""
        return image + torch.randn_like(image) * (level / 255.0)

    def _net_input(self, image: torch.Tensor) -> torch.Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.channels_last else image

    def domain_terms(self, image: torch.Tensor, degraded: bool) -> dict[str, torch.Tensor]:
        """The negative ELBO of one domain's batch (``image`` already mapped by T or normalised):
        ``recon`` (MSE) and ``kl`` (per element, zero for the clean domain)."""
        level = self.noise_level_degraded if degraded else self.noise_level_clean
        conditioning = self._net_input(self.prenoise(image, level))
        label = torch.full((image.shape[0],), 1.0 if degraded else 0.0, device=image.device)
        recon, kls = self.net(self._net_input(image), conditioning, label)
        terms = {"recon": F.mse_loss(recon.float(), image.float())}
        if degraded:
            terms["kl"] = sum(kl.sum() for kl in kls) / image.numel()
        else:
            terms["kl"] = torch.zeros((), device=image.device)
        return terms

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        """``loss = sum over the domains present of (a * recon + w * kl)``, ``a`` from ``loss_balance``, with each
        domain's terms logged separately and unweighted (``recon_clean``, ``recon_degraded``, ``kl``)."""
        weight = self.current_kl_weight()
        out: dict[str, torch.Tensor] = {}
        loss = None
        if batch.get("clean") is not None:
            x = self.clean_operator(batch["clean"])
            terms = self.domain_terms(x, degraded=False)
            out["recon_clean"] = terms["recon"]
            loss = self.recon_weight * terms["recon"]
        if batch.get("degraded") is not None:
            y = self.normalization(batch["degraded"])
            terms = self.domain_terms(y, degraded=True)
            out["recon_degraded"], out["kl"] = terms["recon"], terms["kl"]
            part = self.recon_weight * terms["recon"] + weight * terms["kl"]
            loss = part if loss is None else loss + part
        if loss is None:
            raise ValueError("a LUD-VAE batch needs 'clean' or 'degraded' images")
        out["loss"] = loss
        return out

    def training_step(self, batch, batch_idx):
        terms = self.loss_terms(batch)
        loss = terms["loss"]
        if self.skip_non_finite(loss):
            return None
        size = next(v for k, v in batch.items() if k in ("clean", "degraded")).shape[0]
        for name, value in terms.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        self.log("train/kl_weight", self.current_kl_weight(), batch_size=size)
        return loss

    # ---- validation: how close is the synthetic noise to the real one (lit/degradation_scores.py) ------------
    def render(self, target: torch.Tensor, seeds: list[int], levels: torch.Tensor, temperatures: torch.Tensor,
               residual_transfer: bool = True, temperature_mode: str = "sample", tile_size: int = 0) -> torch.Tensor:
        """C2N synthesis of ``target`` (T(clean)) in image colours, unclamped: the network's sample
        (:meth:`LUDVAE.synthesize`, per-image pre-noise ``levels`` 0-255 and ``temperatures``) mapped back by the
        colour normalisation, or with ``residual_transfer`` ``target + (that - the same content rendered without
        the degradation latents)`` (same pre-noise and seeds; degradations/ludvae.py says why)."""
        out = self.net.synthesize(target, seeds, levels, temperatures, True, temperature_mode, tile_size,
                                  self.channels_last, with_clean=residual_transfer).float()
        if residual_transfer:  # one content encoding, decoded with and without the latents
            out, rendered = out.split(target.shape[1], dim=1)
            return target.float() + self.normalization.inverse(out) - rendered
        return self.normalization.inverse(out)

    def validation_step(self, batch, batch_idx):
        """Scores what synthesis makes by default: the residual transfer at the training pre-noise."""
        clean, real = batch["clean"], batch.get("degraded")
        target = self.clean_operator(clean, self.validation_generator)
        batch_size = clean.shape[0]
        seeds = torch.randint(2**62, (batch_size,), generator=self.validation_generator, device=self.device).tolist()
        levels = torch.full((batch_size,), self.noise_level_clean, device=self.device)
        synthetic = self.render(target, seeds, levels, torch.full((batch_size,), self.val_temperature, device=self.device))
        # the scores compare on the real images' scale
        synthetic = quantize_8bit(synthetic.clamp(0, 1))
        panels, caption = self.score_synthetic(synthetic, target, real)
        if batch_idx == 0 and self.grid_samples > 0:  # only the grid's first row needs more samples
            count = self.grid_samples * len(self.grid_temperatures)
            temperatures = torch.tensor(self.grid_temperatures, device=self.device).repeat_interleave(self.grid_samples)
            seeds = torch.randint(2**62, (count,), generator=self.validation_generator, device=self.device).tolist()
            extra = self.render(target[:1].expand(count, -1, -1, -1), seeds,
                                torch.full((count,), self.noise_level_clean, device=self.device), temperatures)
            panels += list(quantize_8bit(extra.clamp(0, 1)).split(1))
            caption += " | " + " | ".join(f"T={t:g}" for t in temperatures.tolist())
        return {"grid": panels, "caption": caption}

    def configure_optimizers(self):
        return self.build_optimizers(self.net.parameters())
