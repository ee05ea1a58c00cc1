"""Inference wrappers for any restorer: x8 self-ensemble and tiled inference.

Written by hand: neither is in torch, kornia or Lightning (BasicSR/KAIR carry their own versions).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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
    """``restore`` applied tile by tile, for images larger than memory allows, without seams.

    Each ``tile x tile`` block is restored with ``margin`` pixels of context on every side (clipped at
    the image border) and only its own block is kept, so a network whose receptive field is within
    the margin gives exactly the whole-image result. Context windows start on multiples of
    ``multiple`` so down-sampling networks (U-Nets, VDIR's 1/4 latent) see the same pixel grid.
    """
    height, width = degraded.shape[-2:]
    if tile <= 0 or (height <= tile and width <= tile):
        return restore(degraded)
    out = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            ctx_top = max(top - margin, 0) // multiple * multiple
            ctx_left = max(left - margin, 0) // multiple * multiple
            ctx_bottom, ctx_right = min(bottom + margin, height), min(right + margin, width)
            block = restore(degraded[..., ctx_top:ctx_bottom, ctx_left:ctx_right])
            if out is None:
                out = block.new_zeros(*block.shape[:-2], height * scale, width * scale)
            out[..., top * scale : bottom * scale, left * scale : right * scale] = block[
                ..., (top - ctx_top) * scale : (bottom - ctx_top) * scale,
                (left - ctx_left) * scale : (right - ctx_left) * scale,
            ]
    return out
