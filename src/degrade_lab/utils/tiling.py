"""Seamless tiling: run a function over an image in windows of context around each tile.

One tiler serves restorers (``evaluate tile=``) and learned degraders (large-image synthesis). Each
``tile x tile`` block is computed from a window with ``margin`` pixels of context on every side (clipped
at the image border) and only the block is kept, so a function whose receptive field lies within the
margin gives exactly its whole-image result. Windows start on multiples of ``multiple``, so
down-sampling networks see the same pixel grid in every window. Written by hand: neither torch, kornia
nor Lightning offers it (BasicSR / KAIR carry their own).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: ``fn(window, top, left)``: the result for ``window``, whose top-left pixel is (top, left) of the image
WindowFunction = Callable[[torch.Tensor, int, int], torch.Tensor]


def tiled(fn: WindowFunction, image: torch.Tensor, tile: int, margin: int, scale: int = 1,
          multiple: int = 1) -> torch.Tensor:
    """``fn`` applied tile by tile (``tile <= 0``: one window, the whole image); the output is ``scale``
    times larger than ``image`` and has the dtype ``fn`` returns."""
    height, width = image.shape[-2:]
    if tile <= 0 or (height <= tile and width <= tile):
        return fn(image, 0, 0)
    out = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0 = max(top - margin, 0) // multiple * multiple
            x0 = max(left - margin, 0) // multiple * multiple
            y1, x1 = min(bottom + margin, height), min(right + margin, width)
            block = fn(image[..., y0:y1, x0:x1], y0, x0)
            if out is None:
                out = block.new_empty(*block.shape[:-2], height * scale, width * scale)
            out[..., top * scale : bottom * scale, left * scale : right * scale] = block[
                ..., (top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale
            ]
    return out
