"""Loading converted weights into a network, stopping with what did not match (written for every importer)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from degrade_lab.errors import UserInputError


def load_converted(net: nn.Module, converted: Mapping[str, torch.Tensor], expected: str,
                   unexpected: list[str] | None = None) -> None:
    """Load ``converted`` (our key names) into ``net`` strictly. Missing, unexpected and wrongly shaped keys stop
    with a message naming them and the layout ``expected`` (the authors' file the importer reads);
    ``unexpected`` adds the authors' keys the importer found no place for."""
    ours = net.state_dict()
    unexpected = list(unexpected or []) + [k for k in converted if k not in ours]
    wrong = [f"{k} {tuple(v.shape)} (ours {tuple(ours[k].shape)})" for k, v in converted.items()
             if k in ours and tuple(v.shape) != tuple(ours[k].shape)]
    missing = [k for k in ours if k not in converted]
    if unexpected or wrong or missing:
        parts = [f"{name}: {', '.join(items[:6])}{f' ... ({len(items)} in all)' if len(items) > 6 else ''}"
                 for name, items in (("unexpected", unexpected), ("wrong shape", wrong), ("missing", missing))
                 if items]
        raise UserInputError(f"these weights do not match {expected}; " + "; ".join(parts) + ".")
    net.load_state_dict({k: v.to(ours[k].dtype) for k, v in converted.items()})


def unwrap(state: Mapping) -> dict[str, torch.Tensor]:
    """The tensors of an authors' weight file: BasicSR / Real-ESRGAN keep them under ``params_ema`` (preferred) or
    ``params``, Lightning and others under ``state_dict``; ``module.`` prefixes (DataParallel) are dropped."""
    for key in ("params_ema", "params", "state_dict", "model"):
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    tensors = {str(k).removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserInputError("the file holds no weights (no tensors at its top level, nor under params_ema, "
                             "params or state_dict).")
    return tensors
