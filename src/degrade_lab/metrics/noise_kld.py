"""KLD: how far the histogram of synthetic noise is from that of real noise (NoiseFlow's metric, two definitions).

Noise is ``degraded - clean`` in [0, 1] units. Its histogram uses NoiseFlow's bins: 64 of width 0.2/64 on
[-0.1, 0.1] plus two overflow bins (edges -1000 and 1000) (seed-reference sec. 5). Both definitions fix the
order as NoiseFlow's evaluation calls it (``kl_div_3_data(real, sample)``): **KL(P_real || P_synthetic)**, per
image, averaged over images. Feed 8-bit-quantised images on both sides (as saved files are): the bins are finer
than one grey level, so a continuous synthetic image would fill bins that 8-bit real noise leaves empty.

* :func:`noiseflow_kld` (``degradation/kld_noiseflow``): NoiseFlow's own definition (Abdelhamed et al. 2019;
  LUD-VAE Table 2): ``p = counts / N``, summed only over the bins where *both* histograms are non-zero. Where
  the synthetic noise is much weaker than the real one, the real noise's tails fall in bins the synthetic noise
  never reaches and are left out, so a poor model can score well (real std 0.03 against synthetic 0.005:
  1.14) and a noiseless image can score below zero.
* :func:`noise_kld` (``degradation/kld``, the default and what calibration and reports use): the additive
  smoothing of the Noise2NoiseFlow / NAFlow variant, ``p = (count + 1) / (N + bins)``, so every bin counts, the
  value is never negative or infinite, and a model missing the real tails pays for them (the same pair: 4.30).
  For models close to the real noise the two agree (for N = 3 x 256 x 256 the smoothing moves the value by about
  1e-4); this is why it is the default.

Written by hand: torchmetrics' ``KLDivergence`` compares probability vectors, not image noise. SeNM-VAE's metric of
the same name is a different quantity (grey-level histograms of the noisy images): :mod:`degrade_lab.metrics.intensity_kl`.
"""

from __future__ import annotations

import torch

from degrade_lab.metrics.per_image import MeanOverImages

EDGES = torch.cat([torch.tensor([-1000.0]), torch.linspace(-0.1, 0.1, 65), torch.tensor([1000.0])])


def noise_counts(noise: torch.Tensor) -> torch.Tensor:
    """Per-image bin counts ``B x 66`` (float64) of a noise batch ``B x C x H x W`` on NoiseFlow's bins (vectorised;
    a value on an inner edge goes to the bin above it, as ``numpy.histogram`` puts it)."""
    batch = noise.shape[0]
    edges = EDGES.to(noise.device, torch.float64)
    nbins = edges.numel() - 1
    index = torch.bucketize(noise.reshape(batch, -1).double(), edges[1:-1], right=True)
    index = index + torch.arange(batch, device=noise.device).view(-1, 1) * nbins
    return torch.bincount(index.flatten(), minlength=batch * nbins).view(batch, nbins).double()


def noise_histograms(noise: torch.Tensor) -> torch.Tensor:
    """Per-image smoothed histograms ``(count + 1) / (N + bins)``, ``B x 66``."""
    counts = noise_counts(noise)
    return (counts + 1) / (counts.sum(dim=1, keepdim=True) + counts.shape[1])


def histogram_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row of two strictly positive histograms."""
    return (p * torch.log(p / q)).sum(dim=1)


def noise_kld(synthetic: torch.Tensor, real: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image smoothed KL(P_real noise || P_synthetic noise), shape ``B``."""
    return histogram_kl(noise_histograms(real - clean), noise_histograms(synthetic - clean)).float()


def noiseflow_kld(synthetic: torch.Tensor, real: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image KL(P_real noise || P_synthetic noise) as NoiseFlow defines it (unsmoothed, over the bins both
    histograms fill), shape ``B``."""
    real_counts, synthetic_counts = noise_counts(real - clean), noise_counts(synthetic - clean)
    p = real_counts / real_counts.sum(dim=1, keepdim=True)
    q = synthetic_counts / synthetic_counts.sum(dim=1, keepdim=True)
    both = (p > 0) & (q > 0)
    terms = torch.where(both, p * (torch.log(p.where(both, 1.0)) - torch.log(q.where(both, 1.0))), 0.0)
    return terms.sum(dim=1).float()


class NoiseKLD(MeanOverImages):
    """Mean per-image :func:`noise_kld` (lower is better; 0 for identical noise). ``update(synthetic, real, clean)``."""

    higher_is_better = False

    def __init__(self, **kwargs):
        super().__init__(noise_kld, **kwargs)
