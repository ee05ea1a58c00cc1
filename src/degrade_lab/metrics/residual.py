"""Does a degradation keep the content? The residual ``degraded - clean`` split into its colour cast and its
low- and high-frequency parts.

A degradation model trained on unpaired folders of different scenes can learn the target folder's colours and
tones as part of the "degradation": its residual then has a non-zero mean per channel and a large low-frequency
part, where real sensor noise is zero-mean and mostly high-frequency. Per image, on the 0-255 scale:

* ``mean``: the residual's mean per channel (R, G, B): a colour cast;
* ``lowpass_std``: the std of the residual blurred by a Gaussian of std ``sigma`` (3 px): content, tone and
  colour changes, and the low-frequency part of correlated noise;
* ``highpass_std``: the std of what the blur removes: the noise itself.

Both stds are taken about each channel's mean (the cast is reported apart) and averaged over the channels as a
root mean square.

:class:`ResidualStatistics` averages them over images for a synthetic and a real degraded image of the same
clean one (validation and ``evaluate degrader=...`` show both).
"""

from __future__ import annotations

import torch
from kornia.filters import gaussian_blur2d
from torchmetrics import Metric

LOWPASS_SIGMA = 3.0
CHANNELS = ("r", "g", "b")
#: the names of the statistics, in the order :func:`named_statistics` and :class:`ResidualStatistics` use
NAMES = (*(f"mean_{c}" for c in CHANNELS), "lowpass_std", "highpass_std")


def residual_statistics(degraded: torch.Tensor, reference: torch.Tensor, sigma: float = LOWPASS_SIGMA) -> dict:
    """Per image of ``B x 3 x H x W`` batches in [0, 1]: ``mean`` (``B x 3``), ``lowpass_std`` and ``highpass_std``
    (``B``), grey levels."""
    residual = (degraded.float() - reference.float()) * 255
    size = 2 * int(3 * sigma + 0.5) + 1
    low = gaussian_blur2d(residual, (size, size), (sigma, sigma), border_type="replicate")
    high = residual - low

    def std(part):  # about each channel's own mean (the cast is reported apart), root-mean-square over channels
        return part.flatten(2).var(dim=2).mean(dim=1).sqrt()

    return {"mean": residual.mean(dim=(2, 3)), "lowpass_std": std(low), "highpass_std": std(high)}


def named_statistics(statistics: dict, prefix: str) -> dict[str, torch.Tensor]:
    """``{prefix}mean_r`` ... ``{prefix}highpass_std`` (:data:`NAMES`): the per-image statistics as ``B`` vectors."""
    columns = [*statistics["mean"].unbind(1), statistics["lowpass_std"], statistics["highpass_std"]]
    return {f"{prefix}{name}": column for name, column in zip(NAMES, columns, strict=True)}


class ResidualStatistics(Metric):
    """The residual statistics of synthetic and real degraded images, averaged over images (DDP-reduced).
    ``compute()`` returns ``residual_*`` (synthetic) and ``real_residual_*`` entries."""

    full_state_update = False

    def __init__(self, sigma: float = LOWPASS_SIGMA, **kwargs):
        super().__init__(**kwargs)
        self.sigma = sigma
        self.add_state("sums", default=torch.zeros(2, len(NAMES), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, synthetic: torch.Tensor, real: torch.Tensor, reference: torch.Tensor) -> None:
        for row, degraded in enumerate((synthetic, real)):
            values = torch.stack(list(named_statistics(residual_statistics(degraded, reference, self.sigma), "").values()), 1)
            self.sums[row] += values.double().sum(0)
        self.count += synthetic.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        means = self.sums / self.count.clamp(min=1)
        return {**{f"residual_{n}": means[0, i].float() for i, n in enumerate(NAMES)},
                **{f"real_residual_{n}": means[1, i].float() for i, n in enumerate(NAMES)}}
