"""Independent numpy port of MATLAB ``imresize(..., 'bicubic')`` (antialiased), for tests only.

Follows MATLAB's ``contributions``/``cubic`` functions line by line (as BasicSR's
``matlab_functions.py`` does): kernel support 4 widened by 1/scale when shrinking, indices
mirrored symmetrically at the borders, weights normalised per output pixel.
"""

import numpy as np


def _cubic(x):
    absx = np.abs(x)
    absx2, absx3 = absx**2, absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((absx > 1) & (absx <= 2))


def _contributions(in_length, out_length, scale, kernel_width=4.0, antialiasing=True):
    if scale < 1 and antialiasing:
        kernel_width = kernel_width / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(np.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p)[None, :]
    distance = u[:, None] - indices
    if scale < 1 and antialiasing:
        weights = scale * _cubic(distance * scale)
    else:
        weights = _cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = aux[np.mod(indices.astype(int) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """``image``: H x W x C float64; returns the MATLAB-bicubic resized image (no clipping)."""
    h, w = image.shape[:2]
    out_h, out_w = int(np.ceil(h * scale)), int(np.ceil(w * scale))
    wh, ih = _contributions(h, out_h, scale)
    ww, iw = _contributions(w, out_w, scale)
    tmp = np.einsum("ok,okwc->owc", wh, image[ih])
    return np.einsum("ok,hokc->hoc", ww, tmp[:, iw])
