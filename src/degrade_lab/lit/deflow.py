"""Training DeFlow on unpaired clean and degraded folders (Wolf et al., CVPR 2021, sec. 3.3 and 5).

Loss (eq. 7): the negative log-likelihood of each domain's images given their conditioning h(.), in bits per
dimension (:meth:`degrade_lab.archs.deflow.DeFlow.nll`): clean images (after the task's operator T: identity for
denoising, bicubic x4 for real-world SR) under N(0, I) latents, degraded images under the shifted latents
N(mu_u, I + M M^T). Batches hold one domain each (``data/samplers.py``); averaged over batches this is the
authors' class-balanced objective, so no weighting is needed. AIM19's colour normalisation of the degraded
domain is available as for LUD-VAE (``color_normalization``).

Semi-supervised (``pairs=True``; not in the authors' code, the paper's eq. 5): the model asks for the
semi-supervised data (``data.paired`` next to ``data.source`` / ``data.target``, or ``data.split_from``) and a
paired batch (domain -1) adds the pair's joint likelihood ``-log p(x, y | h(x))`` (:meth:`DeFlow.pair_nll`),
which ties the degraded latent to its own clean one: ``z_y | z_x ~ N(z_x + mu_u, M M^T)``.

ActNorm layers initialise from the first training batch (Glow); under DDP rank 0's initialisation is
broadcast so that every replica starts from the same weights. A step whose loss is not finite is skipped and
counted; after ``max_non_finite`` in a row training stops with an error that names the cause (learned scales
over- or under-flowing, the authors' issue #4) and the fix (a lower learning rate); the weights on disk are the
last good ones, because skipped steps change nothing.

Validation translates the validation clean images (eq. 8 at ``val_temperature``) and scores them like every
unpaired degradation model (:class:`~degrade_lab.lit.degradation_scores.SyntheticValidation`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from degrade_lab.archs.deflow import DeFlow
from degrade_lab.archs.flow_blocks import ActNorm
from degrade_lab.archs.lowpass import KeepLowFrequencies
from degrade_lab.data import domains as D
from degrade_lab.errors import UserInputError
from degrade_lab.lit.base import DegradeLabModule
from degrade_lab.lit.degradation_scores import SyntheticValidation
from degrade_lab.utils.io import quantize_8bit


class TrainingDiverged(UserInputError):
    """Too many consecutive non-finite losses."""


class DeFlowModule(SyntheticValidation, DegradeLabModule):
    """DeFlow as a LightningModule.

    Args:
        net: the :class:`~degrade_lab.archs.deflow.DeFlow` network.
        optimizer / scheduler: partial optimizer and (per-step) scheduler factories.
        clean_operator: the task's known operator T on the clean side (a Degrader; ``conf/degrader``).
        color_normalization: optional ``{mean_from, std_from, mean_to, std_to}`` (0-255) mapping the degraded
            domain to the clean domain's channel statistics (AIM19); synthetic outputs are mapped back.
        max_non_finite: consecutive non-finite losses after which training stops (the authors: 100).
        val_temperature: T of the scored validation translations.
        grid_temperatures / grid_samples: extra translations of the first validation image in the image grid.
        pairs: also train on clean/degraded pairs through eq. (5) (the semi-supervised data setting).
        channels_last: keep the network's convolution weights in channels-last memory format (faster on CPUs and
            GPUs alike; the outputs are the same up to float rounding).
    """

    data_kind = "unpaired"
    monitor, monitor_mode = "val/akld", "min"
    unpaired_monitor = "val/noise_distance"
    degrader_target = "degrade_lab.degradations.learned.LearnedDegrader"
    #: calibration scales the latent shift u (the reference's "heat" T), so the synthetic noise reads like the
    #: degraded folder's
    calibration_option, calibration_range = "temperature", (0.1, 4.0)
    #: its noise grows with texture, so the blind reading (flat patches) under-measures it: match its own residual
    calibration_statistic = "residual"

    @property
    def default_lowpass_sigma(self) -> float:
        """Synthesis keeps the clean image's frequencies below a Gaussian of 3 pixels when the task is denoising
        (no operator on the clean side): trained on folders of other scenes, DeFlow's translation also moves
        colours and tones (builtin camera noise: mean residual -3.6 / -3.7 / -5.2 grey levels, low-pass std 2.1x
        the real one), which a denoiser trained on its pairs learns to undo (docs/results.md: DnCNN 23.71 ->
        24.73 dB with it). 0 for x4 SR, where the operator's output is the reference."""
        return 3.0 if int(getattr(self, "scale", 1)) == 1 else 0.0

    def __init__(
        self,
        net: DeFlow,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        clean_operator: Any = None,
        color_normalization: dict | None = None,
        max_non_finite: int = 100,
        val_temperature: float = 1.0,
        grid_temperatures: tuple[float, ...] = (1.0, 0.5),
        grid_samples: int = 2,
        pairs: bool = False,
        channels_last: bool = True,
    ):
        super().__init__()
        if pairs and any(shift.mode == "none" for shift in net.shifts):
            raise UserInputError("model.pairs=true needs a learned latent shift (model.net.shift=full or diagonal): "
                                 "eq. (5) fits the shift's distribution to the pairs.")
        self.pairs = bool(pairs)
        self.data_kind = "semi" if pairs else "unpaired"
        # channels-last convolution weights: oneDNN then runs the convolutions without reordering every
        # activation (7 % off an fp32 training step on the CPU, half of a bf16 translation)
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.set_domain_maps(clean_operator, color_normalization)
        # validation scores what synthesis makes by default (the same content-keeping as LearnedDegrader)
        self.keep_low_frequencies = KeepLowFrequencies(self.default_lowpass_sigma)
        if max_non_finite < 1:
            raise UserInputError(f"model.max_non_finite must be >= 1, got {max_non_finite}")
        self.max_non_finite = int(max_non_finite)
        self.non_finite_in_a_row = 0
        self.skipped_steps = 0
        self.val_temperature = float(val_temperature)
        self.grid_temperatures, self.grid_samples = [float(t) for t in grid_temperatures], int(grid_samples)
        self.init_validation_metrics()

    # ---- the objective -------------------------------------------------------------------------
    def domain_nll(self, image: torch.Tensor, degraded: bool) -> torch.Tensor:
        """Mean -log2 p(image | h(image)) per dimension of one domain's batch (already mapped by T or normalised)."""
        multiple = self.net.multiple
        if image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise UserInputError(f"DeFlow trains on crops whose sides are multiples of {multiple} (its "
                                 f"squeezes and h(x)'s shrink); got {tuple(image.shape[-2:])}: set data.crop_size.")
        labels = torch.full((image.shape[0],), degraded, dtype=torch.bool, device=image.device)
        return self.net.nll(image, labels, self.net.condition(image)).mean()

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        """``nll_clean`` / ``nll_degraded`` of the domains present, or ``nll_paired`` of a paired batch (bits per
        dimension), and their sum ``loss``."""
        out: dict[str, torch.Tensor] = {}
        domain = batch.get("domain")
        if domain is not None and bool((domain == D.PAIRED).any()):
            if not bool((domain == D.PAIRED).all()):
                raise ValueError("a DeFlow batch must come from one domain")
            clean = self.clean_operator(batch["clean"])
            out["nll_paired"] = self.net.pair_nll(clean, self.normalization(batch["degraded"]),
                                                  self.net.condition(clean)).mean()
        elif batch.get("clean") is not None:
            out["nll_clean"] = self.domain_nll(self.clean_operator(batch["clean"]), degraded=False)
        if batch.get("degraded") is not None and "nll_paired" not in out:
            out["nll_degraded"] = self.domain_nll(self.normalization(batch["degraded"]), degraded=True)
        if not out:
            raise ValueError("a DeFlow batch needs 'clean' or 'degraded' images")
        out["loss"] = sum(out.values())
        return out

    def on_train_batch_start(self, batch, batch_idx):
        """Initialise every ActNorm from the first batch (Glow), identically on every DDP replica."""
        norms = [m for m in self.net.modules() if isinstance(m, ActNorm)]
        if all(bool(n.initialized) for n in norms):
            return
        with torch.no_grad():
            self.loss_terms(batch)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for norm in norms:
                for tensor in (norm.bias, norm.log_scale, norm.initialized):
                    dist.broadcast(tensor.data, src=0)

    def training_step(self, batch, batch_idx):
        terms = self.loss_terms(batch)
        loss = terms["loss"]
        if self.skip_non_finite(loss):
            self.non_finite_in_a_row += 1
            if self.non_finite_in_a_row >= self.max_non_finite:
                raise TrainingDiverged(
                    f"DeFlow's loss was not finite for {self.non_finite_in_a_row} steps in a row (step "
                    f"{self.global_step}): its learned scales over- or under-flowed. Lower the learning rate "
                    f"(model.optimizer.lr, e.g. 10x; the authors' fix) and resume; the checkpoints on disk hold "
                    "the last good weights (skipped steps change nothing).")
            return None
        self.non_finite_in_a_row = 0
        size = next(v for k, v in batch.items() if k in ("clean", "degraded")).shape[0]
        for name, value in terms.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        return loss

    # ---- validation: how close is the synthetic noise to the real one (lit/degradation_scores.py) ------------
    def translate(self, target: torch.Tensor, temperatures: torch.Tensor) -> torch.Tensor:
        """Eq. (8) on ``target`` (T(clean)) with seeds from the validation generator, mapped back to image colours,
        with ``target``'s low frequencies where synthesis keeps them (``default_lowpass_sigma``)."""
        seeds = torch.randint(2**62, (target.shape[0],), generator=self.validation_generator,
                              device=self.device).tolist()
        synthetic = self.normalization.inverse(self.net.synthesize(target, seeds, temperature=temperatures))
        return quantize_8bit(self.keep_low_frequencies(synthetic.float(), target.float()).clamp(0, 1))

    def validation_step(self, batch, batch_idx):
        clean, real = batch["clean"], batch.get("degraded")
        target = self.clean_operator(clean, self.validation_generator)
        synthetic = self.translate(target, torch.full((target.shape[0],), self.val_temperature, device=self.device))
        panels, caption = self.score_synthetic(synthetic, target, real)
        if batch_idx == 0 and self.grid_samples > 0:
            temperatures = torch.tensor(self.grid_temperatures, device=self.device).repeat_interleave(self.grid_samples)
            extra = self.translate(target[:1].expand(len(temperatures), -1, -1, -1), temperatures)
            panels += list(extra.split(1))
            caption += " | " + " | ".join(f"T={t:g}" for t in temperatures.tolist())
        return {"grid": panels, "caption": caption}

    def configure_optimizers(self):
        return self.build_optimizers([p for p in self.net.parameters() if p.requires_grad])
