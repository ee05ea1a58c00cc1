"""What every degradation model logs at the end of validation: its synthetic-vs-real scores, and the match of
its synthetic noise with the degraded training folder's (no pair needed)."""

from __future__ import annotations

import pytorch_lightning as pl
from torchmetrics import Metric


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
