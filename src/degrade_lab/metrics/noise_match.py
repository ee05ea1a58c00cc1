"""How closely synthetic images' noise matches a degraded folder's, with no clean / degraded pair: the
validation score of a degradation model trained on unpaired folders only.

:class:`NoiseMatch` collects the synthetic images of a validation pass and, at ``compute``, reads their pooled
noise (:func:`~degrade_lab.metrics.pooled_noise.pooled_noise`) and compares it with ``reference``, the reading of
the real degraded folder: ``noise_distance`` (mean squared log ratio of the multi-scale stds and the noise level
function; lower is better) and ``noise_ratio`` (synthetic / real std; 1 is right). The same comparison
calibrates degraders (:mod:`degrade_lab.degradations.calibration`).
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from degrade_lab.metrics.pooled_noise import noise_distance, noise_ratio, pooled_noise


class NoiseMatch(Metric):
    """``update(synthetic)`` with ``B x C x H x W`` batches in [0, 1]; ``compute()`` -> ``{"noise_distance",
    "noise_ratio"}`` against :attr:`reference` (a pooled reading; set it before computing)."""

    full_state_update = False

    def __init__(self, reference: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.reference = reference
        self.add_state("images", default=[], dist_reduce_fx="cat")

    def update(self, synthetic: torch.Tensor) -> None:
        self.images.extend(image.detach().float().cpu() for image in synthetic)

    @property
    def ready(self) -> bool:
        """Whether there is a reference and something to compare with it."""
        return self.reference is not None and len(self.images) > 0

    def compute(self) -> dict[str, torch.Tensor]:
        if self.reference is None:
            raise ValueError("NoiseMatch needs the reference reading of the degraded folder (metric.reference = ...)")
        images = self.images if isinstance(self.images, list) else list(self.images)
        reading = pooled_noise(((f"synthetic {i}", image) for i, image in enumerate(images)), len(images),
                               max_patches=1 << 18)
        return {"noise_distance": torch.tensor(noise_distance(reading, self.reference)),
                "noise_ratio": torch.tensor(noise_ratio(reading, self.reference))}
