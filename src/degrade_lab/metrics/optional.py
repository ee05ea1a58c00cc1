"""Metrics that need installed backbones (LPIPS, FID): build them, or say why they are unavailable.

A missing backbone never silently becomes a random one: the metric is reported as unavailable, with
the command that installs it, in ``metrics.json`` (``unavailable``) and in the printed table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from degrade_lab.weights import MissingWeightsError

log = logging.getLogger(__name__)


def build_or_explain(keys: list[str], factory: Callable, unavailable: dict, labels: dict):
    """``factory()``, recording its ``label`` under every key; on missing weights ``None``, and the
    reason under every key of ``unavailable``."""
    try:
        metric = factory()
    except MissingWeightsError as err:
        for key in keys:
            unavailable[key] = str(err)
        log.warning("%s unavailable: %s", ", ".join(keys), err)
        print(f"note: {', '.join(keys)} unavailable: {err}", flush=True)
        return None
    for key in keys:
        labels[key] = metric.label
    return metric


def tiles(images, size: int, per_image: int = 0):
    """Non-overlapping ``size x size`` tiles of a ``B x C x H x W`` batch (the whole images when ``size``
    is 0 or larger than them), as one ``N x C x size x size`` batch. ``per_image > 0`` keeps that many
    tiles of each image, evenly spread over its tile grid (the same positions for every image of the
    same size), so a large photo does not cost hundreds of Inception passes."""
    if size <= 0 or images.shape[-2] < size or images.shape[-1] < size:
        return images
    rows, cols = images.shape[-2] // size, images.shape[-1] // size
    cropped = images[..., : rows * size, : cols * size]
    batch, channels = images.shape[:2]
    grid = cropped.unfold(2, size, size).unfold(3, size, size)  # B C rows cols size size (a view)
    grid = grid.permute(0, 2, 3, 1, 4, 5).reshape(batch, rows * cols, channels, size, size)
    if 0 < per_image < rows * cols:
        grid = grid[:, torch.linspace(0, rows * cols - 1, per_image).round().long()]
    return grid.reshape(-1, channels, size, size)
