"""How closely synthetic images' noise matches a degraded folder's, with no clean / degraded pair: the
validation score of a degradation model trained on unpaired folders only.

:class:`NoiseMatch` collects the synthetic images of a validation pass and, at ``compute``, reads their pooled
noise (:func:`~degrade_lab.metrics.pooled_noise.pooled_noise`) and compares it with ``reference``, the reading of
the real degraded folder: ``noise_distance`` (mean squared log ratio of the multi-scale stds and the noise level
function; lower is better) and ``noise_ratio`` (synthetic / real std; 1 is right). The same comparison
calibrates degraders (:mod:`degrade_lab.degradations.calibration`), with the same statistics: ``reading``
(the blind estimator on the synthetic images), ``residual`` (the per-pixel std of ``synthetic - clean``,
:func:`~degrade_lab.metrics.pooled_noise.residual_sums` accumulated over batches, against the folder's reading;
``noise_distance`` is then its squared log ratio) or ``residual_reading`` (the blind estimator on the residual
laid over the blurred clean image, :func:`~degrade_lab.metrics.pooled_noise.residual_fields`), so that
``best.ckpt`` is chosen by what calibration will match.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

from degrade_lab.metrics.pooled_noise import (
    noise_distance,
    noise_ratio,
    per_pixel_std,
    pooled_noise,
    residual_fields,
    residual_sums,
)

STATISTICS = ("reading", "residual", "residual_reading")


class NoiseMatch(Metric):
    """``update(synthetic, clean)`` with ``B x C x H x W`` batches in [0, 1] (``clean``: the images the synthetic
    ones were made from, needed by the ``residual`` statistics only); ``compute()`` -> ``{"noise_distance",
    "noise_ratio"}`` against :attr:`reference` (a pooled reading; set it before computing)."""

    full_state_update = False

    def __init__(self, reference: dict | None = None, statistic: str = "reading", **kwargs):
        super().__init__(**kwargs)
        if statistic not in STATISTICS:
            raise ValueError(f"NoiseMatch statistic must be one of {STATISTICS}, got {statistic!r}")
        self.reference = reference
        self.statistic = statistic
        # images of any size, gathered across DDP ranks: their pixels flattened and their shapes, both
        # concatenated by the sync (a "cat" of C x H x W images would merge their channels, or fail on sizes)
        self.add_state("pixels", default=[], dist_reduce_fx="cat")
        self.add_state("shapes", default=[], dist_reduce_fx="cat")
        # residual statistic: the sums behind residual_std, reduced across ranks
        self.add_state("squares", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, synthetic: torch.Tensor, clean: torch.Tensor | None = None) -> None:
        if self.statistic != "reading" and clean is None:
            raise ValueError(f"NoiseMatch(statistic={self.statistic!r}) needs the clean images: "
                             "update(synthetic, clean)")
        if self.statistic == "residual":
            total, count = residual_sums(list(synthetic.detach()), list(clean.detach()))
            self.squares += total
            self.count += count
            return
        if self.statistic == "residual_reading":
            synthetic = residual_fields(list(synthetic.detach()), list(clean.detach()))
        for image in synthetic:
            self.pixels.append(image.detach().float().cpu().flatten())
            self.shapes.append(torch.tensor(image.shape, dtype=torch.long))

    @property
    def images(self) -> list[torch.Tensor]:
        """The collected images (C x H x W each), from every rank once synced."""
        if isinstance(self.shapes, list):
            return [pixels.view(*shape.tolist()) for pixels, shape in zip(self.pixels, self.shapes, strict=True)]
        shapes = self.shapes.view(-1, 3)
        sizes = shapes.prod(dim=1).tolist()
        return [part.view(*shape.tolist()) for part, shape in zip(self.pixels.split(sizes), shapes, strict=True)]

    @property
    def ready(self) -> bool:
        """Whether there is a reference and something to compare with it."""
        return self.reference is not None and (int(self.count) > 0 if self.statistic == "residual" else
                                               len(self.shapes) > 0)

    def compute(self) -> dict[str, torch.Tensor]:
        if self.reference is None:
            raise ValueError("NoiseMatch needs the reference reading of the degraded folder (metric.reference = ...)")
        if self.statistic == "residual":
            ratio = 255.0 * math.sqrt(float(self.squares) / int(self.count)) / per_pixel_std(self.reference)
            distance = math.log(ratio) ** 2 if ratio > 0 else math.inf
            return {"noise_distance": torch.tensor(distance), "noise_ratio": torch.tensor(ratio)}
        images = self.images
        reading = pooled_noise(((f"synthetic {i}", image) for i, image in enumerate(images)), len(images),
                               max_patches=1 << 18)
        return {"noise_distance": torch.tensor(noise_distance(reading, self.reference)),
                "noise_ratio": torch.tensor(noise_ratio(reading, self.reference))}
