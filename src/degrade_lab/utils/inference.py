"""Inference wrappers for any restorer: x8 self-ensemble and tiled inference.

Written by hand: neither is in torch, kornia or Lightning (BasicSR/KAIR carry their own versions).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from degrade_lab.utils.tiling import tiled as tile_windows

Restore = Callable[[torch.Tensor], torch.Tensor]


def self_ensemble(restore: Restore, degraded: torch.Tensor) -> torch.Tensor:
    """The mean of ``restore`` over the 8 flips / 90-degree rotations of the input, each mapped back
    (Lim et al. 2017; the '+' rows of VDIR / EDSR). Works for SR: the transforms commute with it."""
    outputs = []
    for rotations in range(4):
        for flip in (False, True):
            x = torch.rot90(degraded, rotations, dims=(-2, -1))
            x = torch.flip(x, dims=(-1,)) if flip else x
            y = restore(x)
            y = torch.flip(y, dims=(-1,)) if flip else y
            outputs.append(torch.rot90(y, -rotations, dims=(-2, -1)).float())
    return torch.stack(outputs).mean(dim=0)


def tiled(restore: Restore, degraded: torch.Tensor, tile: int, margin: int = 32, scale: int = 1,
          multiple: int = 8) -> torch.Tensor:
    """``restore`` applied tile by tile (:func:`degrade_lab.utils.tiling.tiled`), for images larger than
    memory allows, without seams when the network's receptive field is within ``margin``; context windows
    start on multiples of ``multiple`` (U-Nets, VDIR's 1/4 latent)."""
    return tile_windows(lambda window, top, left: restore(window), degraded, tile, margin, scale, multiple)
