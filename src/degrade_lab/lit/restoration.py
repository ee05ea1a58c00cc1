"""One LightningModule for every feed-forward restorer (DnCNN now; DRUNet, RRDBNet later)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric

from degrade_lab.errors import UserInputError
from degrade_lab.lit.base import DegradeLabModule
from degrade_lab.metrics import PSNR, SSIM
from degrade_lab.metrics.pooled_noise import noise_std_per_image

_LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}
log = logging.getLogger(__name__)


class RestorationModule(DegradeLabModule):
    """Trains ``net`` to map ``batch["degraded"]`` to ``batch["clean"]`` with a pixel loss.

    Args:
        net: the restoration network (``degraded -> restored``, up-sampling by ``scale``).
        loss: ``l1`` or ``l2``.
        optimizer: a partial optimizer (``_partial_: true`` in the config), called with the parameters.
        scheduler: an optional partial LR scheduler, stepped every training step.
        scale: up-sampling factor of ``net`` (1 for denoising).
        crop_border / y_channel: validation PSNR/SSIM conventions (crop ``scale`` pixels for SR).
        channels_last: run the network in channels-last memory format (faster convolutions on CPU
            and tensor cores).
        val_lpips: LPIPS backbone for ``val/lpips`` (``alex``, ``vgg`` or ``None``); skipped with a
            warning naming the install command when its weights are not installed.
        noise_level: for non-blind networks that take a noise level (DRUNet with its noise map): the
            sigma (0-255) used when a batch does not carry its own (``batch["parameters"]["sigma"]``,
            recorded by on-the-fly degraders), e.g. real test pairs or ``evaluate noise_level=25``; ``auto``:
            each image's own level, read by the blind estimator (``degrade-lab estimate-noise``, the largest of
            its 1x / 2x / 4x readings), for photos whose noise nobody measured.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: str = "l1",
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        scale: int = 1,
        crop_border: int = 0,
        y_channel: bool = False,
        channels_last: bool = False,
        val_lpips: str | None = None,
        noise_level: float | str | None = None,
    ):
        super().__init__()
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {sorted(_LOSSES)}, got {loss!r}")
        self.net, self.loss_name, self.loss_fn = net, loss, _LOSSES[loss]
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scale, self.channels_last = int(scale), channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.val_psnr = PSNR(crop_border, y_channel)
        self.val_ssim = SSIM(crop_border, y_channel)
        self.val_psnr_best = MaxMetric()
        self.skipped_steps = 0
        if noise_level is not None and noise_level != "auto" and not isinstance(noise_level, (int, float)):
            raise UserInputError(f"noise_level must be a number (sigma, 0-255), auto or null; got {noise_level!r}.")
        self.noise_level = noise_level
        # kept out of the module tree, so checkpoints do not carry (or need) the LPIPS backbone
        self.keep_out_of_checkpoints("val_lpips", _optional_lpips(val_lpips))

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        return self.restore(degraded)

    def check_data(self, known: dict[str, set[str] | None]) -> None:
        """Stop before training when the data lack what the network needs. ``known[stage]``: the per-image
        parameters that the ``train`` / ``val`` batches carry (``None``: no such data)."""
        if not getattr(self.net, "noise_map", False) or self.noise_level is not None:
            return
        for stage, what in (("train", "training"), ("val", "validation")):
            if known.get(stage) is not None and "sigma" not in known[stage]:
                raise UserInputError(
                    f"this network takes the noise level (sigma, 0-255) as input, but the {what} pairs do not "
                    "carry one (real pairs): give it with model.noise_level=SIGMA, train on pairs made on the fly "
                    "by a noise degrader (data.source=DIR data.degrader=awgn), or make the network blind "
                    "(model.net.noise_map=false)."
                )

    def restore(self, degraded: torch.Tensor, batch: dict | None = None) -> torch.Tensor:
        """The network's output; non-blind networks get the batch's sigma, else ``noise_level``."""
        if self.channels_last:
            degraded = degraded.contiguous(memory_format=torch.channels_last)
        if not getattr(self.net, "noise_map", False):
            return self.net(degraded)
        level = ((batch or {}).get("parameters") or {}).get("sigma")
        if level is None:
            if self.noise_level is None:
                raise ValueError("this network takes the noise level (sigma, 0-255) as input: train on pairs "
                                 "made on the fly by a noise degrader (data.degrader=awgn), or give it with "
                                 "model.noise_level=SIGMA (train) / noise_level=SIGMA (evaluate)")
            level = noise_std_per_image(degraded) if self.noise_level == "auto" else float(self.noise_level)
        return self.net(degraded, level)

    def training_step(self, batch, batch_idx):
        restored = self.restore(batch["degraded"], batch)
        loss = self.loss_fn(restored.float(), batch["clean"])
        if self.skip_non_finite(loss):
            return None
        self.log(f"train/{self.loss_name}", loss, prog_bar=True, batch_size=batch["degraded"].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        restored = self.restore(batch["degraded"], batch).float().clamp(0, 1)
        self.val_psnr.update(restored, batch["clean"])
        self.val_ssim.update(restored, batch["clean"])
        if self.val_lpips is not None:
            self.val_lpips.to(self.device).update(restored, batch["clean"])
        return {"restored": restored}

    def on_validation_epoch_end(self):
        psnr = self.val_psnr.compute()
        self.val_psnr_best.update(psnr)
        self.log("val/psnr", psnr, prog_bar=True, sync_dist=False)
        self.log("val/ssim", self.val_ssim.compute())
        self.log("val/psnr_best", self.val_psnr_best.compute())
        self.val_psnr.reset()
        self.val_ssim.reset()
        if self.val_lpips is not None:
            self.log("val/lpips", self.val_lpips.compute())
            self.val_lpips.reset()

    def configure_optimizers(self):
        return self.build_optimizers(self.net.parameters())


def _optional_lpips(net: str | None):
    if not net:
        return None
    from degrade_lab.metrics.lpips import LPIPS
    from degrade_lab.weights import MissingWeightsError

    try:
        return LPIPS(net)
    except MissingWeightsError as err:
        log.warning("val/lpips is not logged: %s", err)
        return None
