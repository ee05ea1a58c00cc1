"""KAIR's released denoisers (github.com/cszn/KAIR, ``model_zoo``) as degrade_lab networks: DnCNN
(``dncnn_color_blind.pth``, ``dncnn_15/25/50.pth``, ``dncnn_gray_blind.pth``), FFDNet (``ffdnet_color.pth``,
``ffdnet_gray.pth``) and DRUNet (``drunet_color.pth``, ``drunet_gray.pth``).

Their layouts (read from ``models/network_dncnn.py``, ``network_ffdnet.py``, ``network_unet.py``): DnCNN and FFDNet
are one ``model`` Sequential whose convolutions sit at the even indices (conv, ReLU pairs; BN-merged releases) or
every third (conv, BN, ReLU: checkpoints saved before merging), exactly the order of our ``body``; DRUNet's
``m_head``, ``m_down1..3`` (residual blocks ``res.0`` / ``res.2``, then a 2x2 strided conv), ``m_body``,
``m_up3..1`` (a 2x2 transposed conv, then residual blocks) and ``m_tail`` are our ``head``, ``down1..3``, ``body``,
``up3..1`` and ``tail``. Grey models (one channel) run on each colour channel
(:class:`~degrade_lab.archs.per_channel.PerChannel`).
"""

from __future__ import annotations

import re

import torch

from degrade_lab.errors import UserInputError
from degrade_lab.importers.plan import Plan


def _sequential(state: dict[str, torch.Tensor], what: str) -> tuple[list[int], bool]:
    """The conv indices of KAIR's ``model`` Sequential and whether it has batch normalisation."""
    convs = sorted(int(m[1]) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k))
                   and state[k].dim() == 4)
    if not convs or any(not re.fullmatch(r"model\.\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)", k)
                        for k in state):
        found = ", ".join(list(state)[:6])
        raise UserInputError(f"not a KAIR {what} file: expected keys model.N.weight / model.N.bias; found {found}.")
    return convs, any(k.endswith("running_mean") for k in state)


def _grey(net: dict, in_channels: int, out_channels: int, what: str) -> tuple[dict, str]:
    if in_channels == out_channels == 3:
        return net, ""
    if in_channels == out_channels == 1:
        return {"_target_": "degrade_lab.archs.per_channel.PerChannel", "net": net}, "net."
    raise UserInputError(f"this {what} maps {in_channels} to {out_channels} channels; degrade_lab restores RGB "
                         "images with colour (3) or grey (1, run per channel) networks.")


def dncnn(state: dict[str, torch.Tensor]) -> Plan:
    convs, batch_norm = _sequential(state, "DnCNN")
    first, last = state[f"model.{convs[0]}.weight"], state[f"model.{convs[-1]}.weight"]
    core = {"_target_": "degrade_lab.archs.dncnn.DnCNN", "in_channels": int(first.shape[1]),
            "out_channels": int(last.shape[0]), "channels": int(first.shape[0]), "depth": len(convs),
            "batch_norm": batch_norm}
    net, prefix = _grey(core, core["in_channels"], core["out_channels"], "DnCNN")
    converted = {prefix + k.replace("model.", "body.", 1): v for k, v in state.items()}
    return Plan("dncnn", 1, net, lambda _: converted, "KAIR's DnCNN (models/network_dncnn.py)")


def ffdnet(state: dict[str, torch.Tensor]) -> Plan:
    convs, batch_norm = _sequential(state, "FFDNet")
    first, last = state[f"model.{convs[0]}.weight"], state[f"model.{convs[-1]}.weight"]
    if (int(first.shape[1]) - 1) % 4 or int(last.shape[0]) % 4:
        raise UserInputError(f"not a KAIR FFDNet file: its first conv takes {first.shape[1]} channels (expected "
                             "4 per image channel + 1 noise map) and its last gives {last.shape[0]} (4 per channel).")
    core = {"_target_": "degrade_lab.archs.ffdnet.FFDNet", "in_channels": (int(first.shape[1]) - 1) // 4,
            "out_channels": int(last.shape[0]) // 4, "channels": int(first.shape[0]), "depth": len(convs),
            "condition_channels": 1, "batch_norm": batch_norm}
    net, prefix = _grey(core, core["in_channels"], core["out_channels"], "FFDNet")
    converted = {prefix + k.replace("model.", "body.", 1): v for k, v in state.items()}
    return Plan("ffdnet", 1, net, lambda _: converted, "KAIR's FFDNet (models/network_ffdnet.py)")


_DRUNET = {"m_head": "head", "m_down1": "down1", "m_down2": "down2", "m_down3": "down3", "m_body": "body",
           "m_up3": "up3", "m_up2": "up2", "m_up1": "up1", "m_tail": "tail"}


def drunet(state: dict[str, torch.Tensor]) -> Plan:
    if "m_head.weight" not in state or "m_tail.weight" not in state:
        raise UserInputError(f"not a KAIR DRUNet file: expected m_head.weight ... m_tail.weight; found "
                             f"{', '.join(list(state)[:6])}.")
    blocks = len({k.split(".")[1] for k in state if k.startswith("m_body.")})
    head = state["m_head.weight"]
    channels = [int(head.shape[0])] + [int(state[f"m_down{i}.{blocks}.weight"].shape[0]) for i in (1, 2, 3)
                                       if f"m_down{i}.{blocks}.weight" in state]
    if len(channels) != 4:
        raise UserInputError(f"a KAIR DRUNet with {blocks} blocks per scale has m_down1..3.{blocks}.weight (the "
                             "strided convolutions); this file does not.")
    in_channels, out_channels = int(head.shape[1]) - 1, int(state["m_tail.weight"].shape[0])
    core = {"_target_": "degrade_lab.archs.drunet.DRUNet", "in_channels": in_channels, "out_channels": out_channels,
            "channels": channels, "blocks": blocks, "noise_map": True}
    net, prefix = _grey(core, in_channels, out_channels, "DRUNet")

    def rename(key: str) -> str:
        top, _, rest = key.partition(".")
        return prefix + _DRUNET.get(top, top) + "." + rest.replace(".res.", ".body.")

    converted = {rename(k): v for k, v in state.items()}
    return Plan("drunet", 1, net, lambda _: converted, "KAIR's DRUNet (models/network_unet.py UNetRes)")
