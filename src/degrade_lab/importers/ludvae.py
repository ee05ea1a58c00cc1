"""The authors' LUD-VAE networks (github.com/zhengdihan/LUD-VAE, ``LUD_VAE_*/models/network_ludvae.py``, the five
released ``trained_models/LUDVAE_models/ludvae.pth``) as :class:`~degrade_lab.archs.ludvae.LUDVAE`.

Their names -> ours (level k = 1 is the lowest, full-detail level; the released networks have 3):
``inconv`` / ``inconv_n`` -> ``content_in`` / ``noise_in``; ``enc_k`` / ``enc_n_k`` (ConvBlock ``net.0/2/4/6``) ->
``content_blocks.k-1`` / ``noise_blocks.k-1``; ``Gauconv_q_k`` / ``Gauconv_p_k`` (``m``, ``v``: mean and log-std) ->
``posteriors.k-1`` / ``priors.k-1`` (``mean``, ``logstd``); ``dec_k`` -> ``decoder_blocks.k-1`` (``dec_3`` runs after
the top level, ``dec_1`` before the output); ``proj_k`` / ``proj_c_k`` / ``proj_n_k`` (ProjBlock ``proj``) ->
``merge_latent.k-1`` / ``merge_content.k-1`` / ``merge_noise.k-1`` (``mix``, inputs concatenated in the same
order); ``outconv`` -> ``out``. Every key has a counterpart; the data-set settings (pre-noise levels, AIM19's colour
normalisation) are not in the weights and come from the preset (``experiment=ludvae_aim19`` ...).
"""

from __future__ import annotations

import re

import torch

from degrade_lab.errors import UserInputError
from degrade_lab.importers.plan import Plan

_SINGLE = {"inconv": "content_in", "inconv_n": "noise_in", "outconv": "out"}
_INDEXED = [(r"enc_n_(\d)\.net", "noise_blocks"), (r"enc_(\d)\.net", "content_blocks"),
            (r"dec_(\d)\.net", "decoder_blocks"), (r"Gauconv_q_(\d)", "posteriors"), (r"Gauconv_p_(\d)", "priors"),
            (r"proj_c_(\d)\.proj", "merge_content"), (r"proj_n_(\d)\.proj", "merge_noise"),
            (r"proj_(\d)\.proj", "merge_latent")]
_HEAD = {"m": "mean", "v": "logstd"}


def rename(key: str) -> str | None:
    """The authors' key -> ours (None: not a key of their LUDVAE)."""
    module, _, rest = key.partition(".")
    if module in _SINGLE:
        return f"{_SINGLE[module]}.{rest}"
    for pattern, ours in _INDEXED:
        match = re.match(pattern + r"\.(.+)$", key)
        if match:
            level, tail = int(match[1]), match[2]
            if ours in ("posteriors", "priors"):
                head, _, kind = tail.partition(".")
                if head not in _HEAD:
                    return None
                tail = f"{_HEAD[head]}.{kind}"
            elif ours.startswith("merge"):
                tail = f"mix.{tail}"
            return f"{ours}.{level - 1}.{tail}"
    return None


def plan(state: dict[str, torch.Tensor]) -> Plan:
    if "inconv.weight" not in state or "outconv.weight" not in state:
        raise UserInputError(f"not a LUD-VAE file: expected inconv.weight ... outconv.weight (network_ludvae.py "
                             f"LUDVAE); found {', '.join(list(state)[:6])}.")
    levels = len({k.split(".")[0] for k in state if re.match(r"enc_\d\.", k)})
    channels, in_channels = (int(s) for s in state["inconv.weight"].shape[:2])
    latent = int(state["Gauconv_q_1.m.weight"].shape[0]) if "Gauconv_q_1.m.weight" in state else channels
    net = {"_target_": "degrade_lab.archs.ludvae.LUDVAE", "in_channels": in_channels, "channels": channels,
           "latent_channels": latent, "levels": levels}
    unknown = [k for k in state if rename(k) is None]

    def convert(_net) -> dict[str, torch.Tensor]:
        if unknown:
            raise UserInputError(f"keys of no LUDVAE layer: {', '.join(unknown[:6])}.")
        return {rename(k): v for k, v in state.items()}

    return Plan("ludvae", 1, net, convert, "the authors' LUDVAE (models/network_ludvae.py)")
