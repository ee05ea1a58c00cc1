"""LPIPS (Zhang et al. 2018) on installed backbones, as a DDP-reduced torchmetrics Metric.

torchmetrics' ``LearnedPerceptualImagePatchSimilarity`` downloads its torchvision backbone, so the
network here is ``lpips.LPIPS`` built with nothing pretrained; its v0.1 linear layers are then read from
the file inside the lpips wheel, and its backbone from :mod:`degrade_lab.weights`. Missing weights raise :class:`~degrade_lab.weights.MissingWeightsError`;
there is never a silent fallback to random backbone weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn
from torchmetrics import Metric

from degrade_lab.weights import MissingWeightsError, require

BACKBONES = {"alex": "alexnet", "vgg": "vgg16"}


def lpips_network(net: str = "alex", source: str = "pypi") -> nn.Module:
    """``lpips.LPIPS(net=net)`` with the installed ImageNet backbone, frozen and in eval mode.

    Call it as ``network(a, b, normalize=True)`` with [0, 1] images; returns ``B x 1 x 1 x 1`` distances.
    """
    import lpips

    if net not in BACKBONES:
        raise ValueError(f"LPIPS net must be one of {sorted(BACKBONES)}, got {net!r}")
    weights = require(BACKBONES[net], source)
    # the random init that the loaded weights replace must not move the global RNG: building a metric
    # inside a seeded run would otherwise change that run's data order and results
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision's `pretrained` deprecation inside lpips
        network = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
    linear_layers = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"  # shipped in the wheel
    if not linear_layers.is_file():
        raise MissingWeightsError(f"the lpips package has no '{linear_layers}': reinstall it (`pip install lpips`).")
    network.load_state_dict(torch.load(linear_layers, map_location="cpu", weights_only=True), strict=False)
    network.net.load_state_dict(torch.load(weights.path, map_location="cpu", weights_only=True))
    network.weights_label = weights.label
    return network.eval().requires_grad_(False)


class LPIPS(Metric):
    """Mean per-image LPIPS distance between ``pred`` and ``target`` (``B x 3 x H x W`` in [0, 1]);
    lower is better. ``label`` names the weights that produced the number."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = True

    def __init__(self, net: str = "alex", source: str = "pypi", **kwargs):
        super().__init__(**kwargs)
        self.network = lpips_network(net, source)
        self.label = f"LPIPS-{net} [{self.network.weights_label}]"
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"LPIPS of mismatched shapes {tuple(pred.shape)} and {tuple(target.shape)}")
        return self.network(pred.float(), target.float(), normalize=True).flatten()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        values = self.per_image(pred, target).double()
        self.total += values.sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()
