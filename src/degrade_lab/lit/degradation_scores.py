"""What every degradation model logs at the end of validation: its synthetic-vs-real scores."""

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
