"""What every degradation model logs at the end of validation: its synthetic-vs-real scores, and the match of
its synthetic noise with the degraded training folder's (no pair needed); :class:`SyntheticValidation`, the
whole validation of the unpaired models."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch import nn
from torchmetrics import MeanMetric, Metric, MinMetric

from degrade_lab.data.normalization import ColorNormalization, NoNormalization
from degrade_lab.degradations.base import Identity
from degrade_lab.degradations.build import build_degrader
from degrade_lab.metrics import AKLD, NoiseKLD, psnr
from degrade_lab.metrics.noise_match import NoiseMatch
from degrade_lab.metrics.residual import ResidualStatistics


def build_clean_operator(clean_operator: Any = None) -> nn.Module:
    """The task's known operator T on the clean side (a Degrader config or object, e.g. bicubic x4 for real-world
    SR; none: the identity): what a degradation model puts its clean images through before it learns the rest."""
    return build_degrader(clean_operator) or Identity()


def log_validation_scores(module: pl.LightningModule, akld: Metric, akld_best: Metric, others: dict[str, Metric]) -> None:
    """Log ``val/akld`` (the model-selection score), ``val/akld_best`` and ``others`` by name (a metric that
    computes a dict logs each entry as ``val/<key>``), then reset."""
    value = akld.compute()
    akld_best.update(value)
    module.log("val/akld", value, prog_bar=True)
    for name, metric in others.items():
        value = metric.compute()
        if isinstance(value, dict):  # several scores of one metric (ResidualStatistics): val/<key>
            for key, part in value.items():
                module.log(f"val/{key}", part)
        else:
            module.log(name, value)
    module.log("val/akld_best", akld_best.compute())
    for metric in (akld, *others.values()):
        metric.reset()


def noise_reference(module: pl.LightningModule) -> dict | None:
    """The pooled noise reading of the degraded training images, from the data module (None without one)."""
    datamodule = getattr(module.trainer, "datamodule", None) if module._trainer is not None else None
    return datamodule.noise_reference() if hasattr(datamodule, "noise_reference") else None


def log_noise_match(module: pl.LightningModule, metric: Metric, best: Metric, prog_bar: bool = False) -> None:
    """Log ``val/noise_distance``, ``val/noise_ratio`` and ``val/noise_distance_best`` of a
    :class:`~degrade_lab.metrics.noise_match.NoiseMatch` (when it has a reference and images), then reset it."""
    if metric.ready:
        scores = metric.compute()
        for key, value in scores.items():
            module.log(f"val/{key}", value, prog_bar=prog_bar and key == "noise_distance")
        best.update(scores["noise_distance"])
        module.log("val/noise_distance_best", best.compute())
    metric.reset()


class SyntheticValidation:
    """Validation shared by the unpaired degradation models (LUD-VAE, DeFlow), mixed into their LightningModule:
    the synthetic images of the validation clean images are scored against the real degraded ones when the
    validation set has pairs (``val/kld``, ``val/akld``, residual statistics) and, always, against the blind
    noise reading of the degraded training folder (``val/noise_distance``); ``val/psnr_synthetic`` tracks how far
    the synthetic images are from the clean ones. Call :meth:`set_domain_maps` and :meth:`init_validation_metrics`
    in ``__init__`` and :meth:`score_synthetic` from ``validation_step``."""

    def set_domain_maps(self, clean_operator: Any = None, color_normalization: dict | None = None) -> None:
        """The two maps an unpaired model puts its domains through, which validation and synthesis undo or
        repeat: ``clean_operator`` (the task's known operator T on the clean side, a Degrader config or object;
        none: the identity) and ``color_normalization`` (``{mean_from, std_from, mean_to, std_to}``, 0-255, of
        the degraded side, AIM19's; none: no change). Sets ``clean_operator``, ``scale`` and ``normalization``."""
        self.clean_operator = build_clean_operator(clean_operator)
        self.scale = int(getattr(self.clean_operator, "scale", 1))
        self.normalization: nn.Module = (
            ColorNormalization(**color_normalization) if color_normalization else NoNormalization()
        )

    def init_validation_metrics(self) -> None:
        self.val_kld, self.val_akld, self.val_psnr = NoiseKLD(), AKLD(), MeanMetric()
        self.val_residual = ResidualStatistics()
        self.val_akld_best = MinMetric()
        # scored by what calibration will match (DeFlow: its residual; the others: the blind reading)
        self.val_noise = NoiseMatch(statistic=getattr(self, "calibration_statistic", "reading"))
        self.val_noise_best = MinMetric()
        self.paired_validation = False

    def on_validation_epoch_start(self):
        super().on_validation_epoch_start()
        self.val_noise.reference = noise_reference(self)
        self.paired_validation = False

    def score_synthetic(self, synthetic, target, real) -> tuple[list, str]:
        """Update the scores with one batch of 8-bit-quantised ``synthetic`` images made from ``target`` (the
        clean images after the task's operator), ``real`` the true degraded images or None; returns the image
        grid's panels and caption."""
        self.val_noise.update(synthetic, target)
        self.val_psnr.update(psnr(synthetic, target))
        if real is None:
            return [target, synthetic], "T(clean) | synthetic"
        self.paired_validation = True
        self.val_kld.update(synthetic, real, target)
        self.val_akld.update(synthetic, real, target)
        self.val_residual.update(synthetic, real, target)
        return [target, real, synthetic], "T(clean) | real degraded | synthetic"

    def on_validation_epoch_end(self):
        log_noise_match(self, self.val_noise, self.val_noise_best, prog_bar=not self.paired_validation)
        if self.paired_validation:
            log_validation_scores(self, self.val_akld, self.val_akld_best,
                                  {"val/kld": self.val_kld, "val/psnr_synthetic": self.val_psnr,
                                   "val/residual": self.val_residual})
        else:
            self.log("val/psnr_synthetic", self.val_psnr.compute())
            self.val_psnr.reset()
