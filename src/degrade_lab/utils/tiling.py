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


def receptive_radius(fn: Callable[[torch.Tensor], torch.Tensor], channels: int = 3, size: int = 97,
                     scale: int = 1, device: torch.device | str = "cpu") -> tuple[int, bool]:
    """How far (pixels, the Chebyshev radius) the input that one output pixel depends on reaches: the non-zero
    gradient of the centre output pixel with respect to a random ``size x size`` input, so it holds for any network
    without a formula (DnCNN with ``d`` 3x3 layers: ``d``). Returns ``(radius, reached)``; ``reached``: the
    dependence reached the probe's edge, so the true radius is at least that."""
    probe = torch.rand(1, channels, size, size, device=device, generator=torch.Generator().manual_seed(0)
                       if torch.device(device).type == "cpu" else None).requires_grad_(True)
    with torch.enable_grad():
        out = fn(probe)
        centre = size // 2
        out[..., centre * scale, centre * scale].sum().backward()
    reach = probe.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(reach, as_tuple=True)
    if rows.numel() == 0:
        return 0, False
    radius = int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
    return radius, radius >= centre
