"""KLD: how far the histogram of synthetic noise is from that of real noise (NoiseFlow's metric).

Noise is ``degraded - clean`` in [0, 1] units. Its histogram uses NoiseFlow's bins: 64 of width
0.2/64 on [-0.1, 0.1] plus two overflow bins (edges -1000 and 1000) (seed-reference sec. 5). NoiseFlow
then sums only over bins where both histograms are non-zero, which can give negative values (a
noiseless image scores below zero); we use the additive smoothing of the Noise2NoiseFlow / NAFlow
variant instead, ``p = (count + 1) / (N + bins)``, so the value is never negative or infinite
(for N = 3 x 256 x 256 the smoothing moves the value by about 1e-4).
We fix the order explicitly: **KLD = KL(P_real || P_synthetic)**, per image, averaged over images.
Feed 8-bit-quantised images on both sides (as saved files are): the bins are finer than one grey
level, so a continuous synthetic image would fill bins that 8-bit real noise leaves empty.
Written by hand: torchmetrics' ``KLDivergence`` compares probability vectors, not image noise.
"""

from __future__ import annotations

import torch

from degrade_lab.metrics.per_image import MeanOverImages

EDGES = torch.cat([torch.tensor([-1000.0]), torch.linspace(-0.1, 0.1, 65), torch.tensor([1000.0])])


def noise_histograms(noise: torch.Tensor) -> torch.Tensor:
    """Per-image smoothed histograms ``B x 66`` of a noise batch ``B x C x H x W`` (vectorised)."""
    batch = noise.shape[0]
    edges = EDGES.to(noise.device, torch.float64)
    nbins = edges.numel() - 1
    index = torch.bucketize(noise.reshape(batch, -1).double(), edges[1:-1], right=True)
    index = index + torch.arange(batch, device=noise.device).view(-1, 1) * nbins
    counts = torch.bincount(index.flatten(), minlength=batch * nbins).view(batch, nbins).double()
    return (counts + 1) / (counts.sum(dim=1, keepdim=True) + nbins)


def histogram_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row of two strictly positive histograms."""
    return (p * torch.log(p / q)).sum(dim=1)


def noise_kld(synthetic: torch.Tensor, real: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image KL(P_real noise || P_synthetic noise), shape ``B``."""
    return histogram_kl(noise_histograms(real - clean), noise_histograms(synthetic - clean)).float()


class NoiseKLD(MeanOverImages):
    """Mean per-image :func:`noise_kld` (lower is better; 0 for identical noise). ``update(synthetic, real, clean)``."""

    higher_is_better = False

    def __init__(self, **kwargs):
        super().__init__(noise_kld, **kwargs)
