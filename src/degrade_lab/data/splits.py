"""The SeNM-VAE data protocol built from one paired set (SeNM-VAE sec. 4.2; seed-reference 2.3).

``num_pairs`` pairs stay paired; the remaining pairs are halved at random into two disjoint
halves: the first half contributes only its CLEAN image (the source domain), the second only its
DEGRADED image (the target domain), so no scene appears in both unpaired domains.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from degrade_lab.data.datasets import find_pairs
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import atomic_write_json


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def semi_supervised_split(paired: str | Path, output: str | Path, num_pairs: int, seed: int = 0) -> dict:
    """Write ``output/{paired/{clean,degraded}, source, target}`` and ``output/split.json``."""
    pairs = find_pairs(paired)
    if not 0 <= num_pairs <= len(pairs) - 2:
        raise UserInputError(
            f"'{paired}' has {len(pairs)} pairs; keeping {num_pairs} paired must leave at least 2 for the "
            "unpaired source and target domains."
        )
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    kept, rest = order[:num_pairs], order[num_pairs:]
    half = len(rest) // 2
    source, target = rest[:half], rest[half:]
    output = Path(output)
    for i in kept:
        name, clean, degraded = pairs[i]
        _copy(clean, output / "paired" / "clean" / f"{name}{clean.suffix}")
        _copy(degraded, output / "paired" / "degraded" / f"{name}{degraded.suffix}")
    for i in source:
        name, clean, _ = pairs[i]
        _copy(clean, output / "source" / f"{name}{clean.suffix}")
    for i in target:
        name, _, degraded = pairs[i]
        _copy(degraded, output / "target" / f"{name}{degraded.suffix}")
    split = {
        "from": str(Path(paired).resolve()), "seed": seed,
        "paired": sorted(pairs[i][0] for i in kept),
        "source": sorted(pairs[i][0] for i in source),
        "target": sorted(pairs[i][0] for i in target),
    }
    atomic_write_json(output / "split.json", split)
    return split
