"""The authors' DeFlow weights (their SRFlow fork, ``RRDBGlowNet``) as a :class:`~degrade_lab.archs.deflow.DeFlow`
state dict.

Their layout (read from ``codes/models/modules`` of github.com/volflow/DeFlow): ``RRDB.*`` is the conditioning
encoder (ESRGAN's key names: ``RRDB_trunk.b.RDBr.convk``, ``trunk_conv``, ``upconvN``, ``HRconv``,
``conv_last``); ``flowUpsamplerNet.layers.i`` is one flat list per level of a squeeze (no weights), the flow
steps (``actnorm``, ``invconv`` with ``l``/``u``/``p``/``sign_s``/``log_s``, and for conditional steps
``affine.fAffine`` = the coupling's network and ``affine.fFeatures`` = the injector's) and, where the level
splits, a ``Split2d`` (``conv`` = the split prior, ``mean_shift`` / ``cov_shift`` = that latent group's
shift); the top-level ``mean_shift`` / ``cov_shift`` shift the final latent. Not carried over: the frozen
identity matrices ``I`` and ``flowUpsamplerNet.f`` (a convolution their DeFlow configurations never run).
Their zero-convolutions store the log-scale as ``C x 1 x 1``, ours as ``1 x C x 1 x 1``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from degrade_lab.archs.deflow import DeFlow
from degrade_lab.errors import UserInputError
from degrade_lab.importers.plan import Plan

#: the authors' keys that have no counterpart here (see the module docstring)
UNUSED = re.compile(r"(^|\.)I$|^flowUpsamplerNet\.f\.")

_STEP = {"actnorm.bias": "layers.0.bias", "actnorm.logs": "layers.0.log_scale",
         "invconv.l": "layers.1.lower", "invconv.u": "layers.1.upper", "invconv.log_s": "layers.1.log_s",
         "invconv.p": "layers.1.permutation", "invconv.sign_s": "layers.1.sign"}
_NETWORK = {"0.weight": "net.0.conv.weight", "0.actnorm.bias": "net.0.norm.bias",
            "0.actnorm.logs": "net.0.norm.log_scale", "2.weight": "net.2.conv.weight",
            "2.actnorm.bias": "net.2.norm.bias", "2.actnorm.logs": "net.2.norm.log_scale",
            "4.weight": "net.4.conv.weight", "4.bias": "net.4.conv.bias", "4.logs": "net.4.log_scale"}
for _part, _layer in (("fAffine", 2), ("fFeatures", 3)):
    _STEP.update({f"affine.{_part}.{key}": f"layers.{_layer}.{value}" for key, value in _NETWORK.items()})
_SPLIT = {"conv.weight": "prior.conv.weight", "conv.bias": "prior.conv.bias", "conv.logs": "prior.log_scale"}


def _encoder_key(key: str) -> str | None:
    match = re.fullmatch(r"RRDB\.RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)", key)
    if match:
        block, dense, conv, kind = match.groups()
        return f"encoder.body.{block}.body.{int(dense) - 1}.convs.{int(conv) - 1}.{kind}"
    match = re.fullmatch(r"RRDB\.upconv(\d)\.(weight|bias)", key)
    if match:
        return f"encoder.upsamplers.{int(match[1]) - 1}.{match[2]}"
    renamed = {"conv_first": "conv_first", "trunk_conv": "conv_body", "HRconv": "conv_hr", "conv_last": "conv_last"}
    match = re.fullmatch(r"RRDB\.(\w+)\.(weight|bias)", key)
    if match and match[1] in renamed:
        return f"encoder.{renamed[match[1]]}.{match[2]}"
    return None


def key_map(net: DeFlow) -> dict[str, str]:
    """The authors' key -> ours, for a network of ``net``'s structure: their flat layer list is walked level by
    level (a squeeze, the level's flow steps, its split if any)."""
    mapping: dict[str, str] = {}
    index = 0
    for level, (steps, split) in enumerate(zip(net.flow_levels, net.splits, strict=True)):
        index += 1  # the squeeze
        for step_index, step in enumerate(steps):
            ours = f"flow_levels.{level}.{step_index}."
            for theirs, mine in _STEP.items():
                if int(mine.split(".")[1]) < len(step.layers):
                    mapping[f"flowUpsamplerNet.layers.{index}.{theirs}"] = ours + mine
            index += 1
        if split is not None:
            group = sum(s is not None for s in net.splits[:level])
            for theirs, mine in _SPLIT.items():
                mapping[f"flowUpsamplerNet.layers.{index}.{theirs}"] = f"splits.{level}.{mine}"
            mapping[f"flowUpsamplerNet.layers.{index}.mean_shift"] = f"shifts.{group}.mean"
            mapping[f"flowUpsamplerNet.layers.{index}.cov_shift"] = f"shifts.{group}.matrix_weight"
            index += 1
    mapping["mean_shift"] = f"shifts.{len(net.shifts) - 1}.mean"
    mapping["cov_shift"] = f"shifts.{len(net.shifts) - 1}.matrix_weight"
    return mapping


def convert_state_dict(authors: Mapping[str, torch.Tensor], net: DeFlow) -> dict[str, torch.Tensor]:
    """The authors' state dict as ``net``'s (a network built with the same settings). Stops with the keys that
    are missing, unexpected or of the wrong shape, naming both layouts."""
    mapping = key_map(net)
    ours = net.state_dict()
    converted: dict[str, torch.Tensor] = {}
    unexpected, wrong_shape = [], []
    for key, value in authors.items():
        key = key.removeprefix("module.")
        if UNUSED.search(key):
            continue
        target = mapping.get(key) or _encoder_key(key)
        if target is None or target not in ours:
            unexpected.append(key)
            continue
        value = value.reshape(1, -1, 1, 1) if key.endswith(".logs") and value.dim() == 3 else value
        if value.shape != ours[target].shape:
            wrong_shape.append(f"{key} {tuple(value.shape)} -> {target} {tuple(ours[target].shape)}")
            continue
        converted[target] = value.to(ours[target].dtype)
    missing = [k for k in ours if k not in converted and not k.endswith((".initialized", ".lower_mask"))]
    if unexpected or wrong_shape or missing:
        raise UserInputError(
            "these DeFlow weights do not match the network configured (the authors' RRDBGlowNet layout expected): "
            + "; ".join(f"{name}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}"
                        for name, items in (("unexpected", unexpected), ("wrong shape", wrong_shape),
                                            ("missing", missing)) if items))
    for key, value in ours.items():  # our buffers: masks as built, ActNorms marked initialised
        if key.endswith(".lower_mask"):
            converted[key] = value
        elif key.endswith(".initialized"):
            converted[key] = torch.tensor(True)
    return converted


def plan(state: Mapping[str, torch.Tensor]) -> Plan:
    """``degrade-lab import deflow``: the network comes from the preset (``experiment=``), the weights from
    :func:`convert_state_dict`."""
    if not any(k.startswith("flowUpsamplerNet.") for k in state):
        raise UserInputError(f"not a DeFlow file: expected flowUpsamplerNet.* and RRDB.* keys; found "
                             f"{', '.join(list(state)[:6])}.")
    return Plan("deflow", 1, None, lambda net: convert_state_dict(state, net), "DeFlow's RRDBGlowNet")
