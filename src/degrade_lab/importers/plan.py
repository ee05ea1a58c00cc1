"""What an importer found in an authors' file: the model it becomes and how its weights map onto ours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Plan:
    """``model``: the ``conf/model`` name whose training module holds the network; ``scale``: its ``data.scale``;
    ``net``: the network's config (``_target_`` and its settings, read from the file's shapes); ``convert(net)``:
    the file's weights under our key names for the network built from ``net``; ``layout``: the authors' layout,
    named in errors."""

    model: str
    scale: int
    net: dict | None
    convert: Callable[[nn.Module], dict[str, torch.Tensor]]
    layout: str
