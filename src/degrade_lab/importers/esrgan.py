"""ESRGAN / Real-ESRGAN generators (RRDBNet) as :class:`~degrade_lab.archs.rrdbnet.RRDBNet`, from the three key
layouts in circulation:

* the original ESRGAN release (``RRDB_ESRGAN_x4.pth``, ``RRDB_PSNR_x4.pth`` before 2019): one ``model`` Sequential,
  ``model.0`` the first conv, ``model.1.sub.I.RDBj.convk.0`` the blocks and ``model.1.sub.N`` the trunk conv,
  ``model.3`` / ``model.6`` the up-sampling convs, ``model.8`` / ``model.10`` the last two (x4 only);
* xinntao/ESRGAN's later files: ``conv_first``, ``RRDB_trunk.I.RDBj.convk``, ``trunk_conv``, ``upconv1``,
  ``upconv2``, ``HRconv``, ``conv_last``;
* BasicSR / Real-ESRGAN (``RealESRGAN_x4plus.pth``, ``RealESRGAN_x2plus.pth`` under ``params_ema``): ``conv_first``,
  ``body.I.rdbj.convk``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``; x2 / x1 models fold
  the input with a pixel unshuffle first (a first conv of 12 / 48 input channels), as ours does.
"""

from __future__ import annotations

import re

import torch

from degrade_lab.errors import UserInputError
from degrade_lab.importers.plan import Plan

_BLOCK = (r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)",
          r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)",
          r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)")
_OLD = {"model.0": "conv_first", "model.3": "conv_up1", "model.6": "conv_up2", "model.8": "conv_hr",
        "model.10": "conv_last"}
_XINNTAO = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}
_SCALE_OF_INPUT = {3: 4, 12: 2, 48: 1}  # the first conv's input channels (RGB after a pixel unshuffle) -> scale


def _block(key: str) -> tuple[str, str, str, str] | None:
    """(block, dense block 1-3, conv 1-5, weight | bias) of a key inside the residual-in-residual blocks."""
    for pattern in _BLOCK:
        match = re.fullmatch(pattern, key)
        if match:
            return match.groups()
    return None


def _rename(key: str, blocks: int) -> str | None:
    parts = _block(key)
    if parts:
        block, dense, conv, kind = parts
        return f"body.{block}.body.{int(dense) - 1}.convs.{int(conv) - 1}.{kind}"
    top, _, kind = key.rpartition(".")
    if top == f"model.1.sub.{blocks}":
        return f"conv_body.{kind}"
    if top in _OLD:
        return f"{_OLD[top]}.{kind}"
    if top in _XINNTAO:
        return f"{_XINNTAO[top]}.{kind}"
    if top in ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        return key
    return None


def rrdbnet(state: dict[str, torch.Tensor]) -> Plan:
    first = state.get("conv_first.weight", state.get("model.0.weight"))
    if first is None:
        raise UserInputError(f"not an RRDBNet (ESRGAN) file: expected conv_first.weight or model.0.weight; found "
                             f"{', '.join(list(state)[:6])}.")
    found = {k: parts for k in state if (parts := _block(k))}
    blocks = len({parts[0] for parts in found.values()})
    growth_key = next((k for k, parts in found.items() if parts[1:] == ("1", "1", "weight")), None)
    if not blocks or growth_key is None:
        raise UserInputError("not an RRDBNet (ESRGAN) file: no residual-in-residual dense blocks "
                             "(model.1.sub.I.RDBj, RRDB_trunk.I.RDBj or body.I.rdbj) found.")
    in_channels = int(first.shape[1])
    if "model.0.weight" in state and "model.10.weight" not in state:
        raise UserInputError("this original-layout ESRGAN file has one up-sampling stage (x2 of the old code); "
                             "degrade_lab's x2 RRDBNet is Real-ESRGAN's (pixel unshuffle, two stages).")
    if in_channels not in _SCALE_OF_INPUT or int(state[[k for k in state if k.endswith("conv_last.weight")
                                                        or k == "model.10.weight"][0]].shape[0]) != 3:
        raise UserInputError(f"this RRDBNet's first conv takes {in_channels} channels: degrade_lab's RRDBNet is "
                             "RGB (3 channels at x4, 12 at x2, 48 at x1).")
    net = {"_target_": "degrade_lab.archs.rrdbnet.RRDBNet", "scale": _SCALE_OF_INPUT[in_channels],
           "features": int(first.shape[0]), "blocks": blocks, "growth": int(state[growth_key].shape[0])}
    unknown = [k for k in state if _rename(k, blocks) is None]

    def convert(_net) -> dict[str, torch.Tensor]:
        if unknown:
            raise UserInputError(f"these ESRGAN weights have keys of no known RRDBNet layout: {', '.join(unknown[:6])}.")
        return {_rename(k, blocks): v for k, v in state.items()}

    return Plan("rrdbnet", net["scale"], net, convert,
                "an RRDBNet of ESRGAN's original, xinntao/ESRGAN's or BasicSR's layout")
