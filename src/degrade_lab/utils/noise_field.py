"""Position-addressable Gaussian noise: the same pixel gets the same random number in any crop.

A learned degrader draws per-pixel noise (pre-noise, latent samples). Processing a large image in
tiles must give exactly what processing it whole gives, so the noise of a pixel may depend only on
(image seed, field, position), never on which tile asked for it. The plane is cut into fixed
``block x block`` squares, each filled from its own generator seeded by (seed, field, row, column);
a window reads the squares it overlaps. Written by hand: no maintained library offers
counter-based, window-addressable normal noise for torch.
"""

from __future__ import annotations

import torch

BLOCK = 64
_MASK = (1 << 63) - 1


def _block_seed(seed: int, field: int, row: int, col: int) -> int:
    # a cheap integer hash (splitmix-style constants); distinct inputs give unrelated streams
    value = (seed * 0x9E3779B97F4A7C15 + field * 0xBF58476D1CE4E5B9 + row * 0x94D049BB133111EB
             + col * 0x2545F4914F6CDD1D) & _MASK
    value ^= value >> 31
    return (value * 0x5851F42D4C957F2D) & _MASK


def normal_field(
    seeds: list[int], field: int, channels: int, top: int, left: int, height: int, width: int,
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, block: int = BLOCK,
) -> torch.Tensor:
    """Standard-normal noise ``len(seeds) x channels x height x width`` for the window whose top-left
    pixel is (``top``, ``left``) of an unbounded plane; one plane per (seed, ``field``)."""
    if top < 0 or left < 0:
        raise ValueError("the window must start at a non-negative position")
    out = torch.empty((len(seeds), channels, height, width), device=device, dtype=torch.float32)
    rows = range(top // block, (top + height - 1) // block + 1)
    cols = range(left // block, (left + width - 1) // block + 1)
    generator = torch.Generator(device=device)
    for b, seed in enumerate(seeds):
        for row in rows:
            y0, y1 = max(top, row * block), min(top + height, (row + 1) * block)
            for col in cols:
                x0, x1 = max(left, col * block), min(left + width, (col + 1) * block)
                generator.manual_seed(_block_seed(int(seed), field, row, col))
                square = torch.randn((channels, block, block), generator=generator, device=device)
                out[b, :, y0 - top : y1 - top, x0 - left : x1 - left] = square[
                    :, y0 - row * block : y1 - row * block, x0 - col * block : x1 - col * block
                ]
    return out.to(dtype)
