"""The SeNM-VAE data protocol built from one paired set (SeNM-VAE sec. 4.2; seed-reference 2.3).

``num_pairs`` pairs stay paired; the remaining pairs are halved at random into two disjoint
halves: the first half contributes only its CLEAN image (the source domain), the second only its
DEGRADED image (the target domain), so no image appears in two domains. The paper keeps 10, 96 or
960 of SIDD's pairs; ``num_unpaired`` keeps that many images in each unpaired domain (Table 7: 0, 96, 960). :func:`split_pairs` does it in memory (``data.split_from=DIR data.num_paired=N``);
:func:`semi_supervised_split` writes the same split as folders (for synthesis from the source images).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from degrade_lab.data.datasets import find_pairs
from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import atomic_write_json

Pair = tuple[str, Path, Path]


def split_pairs(paired: str | Path, num_pairs: int, seed: int = 0, scale: int = 1,
                unpaired: bool = True, num_unpaired: int | None = None) -> dict[str, list[Pair]]:
    """``{"paired", "source", "target"}`` lists of pairs of folder ``paired`` (source keeps the clean
    side of its pairs, target the degraded side). ``unpaired=False``: the caller wants the pairs only
    (a restorer trained on the N pairs), and the rest may be empty. ``num_unpaired``: keep only that many
    (the first of each shuffled half) in source and in target."""
    return split_pair_list(find_pairs(paired, scale), num_pairs, seed, unpaired, f"paired folder '{paired}'",
                           num_unpaired)


def split_pair_list(pairs: list[Pair], num_pairs: int, seed: int = 0, unpaired: bool = True,
                    where: str = "the paired set", num_unpaired: int | None = None) -> dict[str, list[Pair]]:
    """:func:`split_pairs` of a list of pairs (a data set's training pairs, e.g. SIDD's)."""
    spare = 2 if unpaired else 0
    if not 0 <= int(num_pairs) <= len(pairs) - spare:
        need = f"{num_pairs} + at least 2 for the unpaired source and target domains" if unpaired else str(num_pairs)
        raise UserInputError(
            f"{where} has {len(pairs)} pairs, fewer than asked for: data.num_paired={num_pairs} needs {need}."
        )
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(int(seed))).tolist()
    kept, rest = order[: int(num_pairs)], order[int(num_pairs):]
    half = len(rest) // 2
    source, target = rest[:half], rest[half:]
    if num_unpaired is not None and unpaired:
        if not 0 < int(num_unpaired) <= min(len(source), len(target)):
            raise UserInputError(
                f"data.num_unpaired={num_unpaired}: {where} leaves {len(source)} clean-only and {len(target)} "
                f"degraded-only images after {num_pairs} pairs; give 1 to {min(len(source), len(target))}, or null for "
                "all (no unpaired domain at all: data.weights.source=0 data.weights.target=0).")
        source, target = source[: int(num_unpaired)], target[: int(num_unpaired)]
    return {"paired": [pairs[i] for i in kept], "source": [pairs[i] for i in source],
            "target": [pairs[i] for i in target]}


def unpaired_files(split: dict[str, list[Pair]]) -> tuple[list[Path], list[Path]]:
    """The split as two unpaired domains, as an unpaired model sees it: the clean images of the pairs and of the
    clean-only side, and the degraded images of the pairs and of the degraded-only side."""
    return ([clean for _, clean, _ in split["paired"] + split["source"]],
            [degraded for _, _, degraded in split["paired"] + split["target"]])


def describe(split: dict[str, list[Pair]], paired: str | Path, seed: int) -> dict:
    """What a run records about its split (``split.json``): the names in each domain."""
    return {"from": str(Path(paired).expanduser().resolve()), "seed": int(seed),
            **{domain: sorted(name for name, _, _ in pairs) for domain, pairs in split.items()}}


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def semi_supervised_split(paired: str | Path, output: str | Path, num_pairs: int, seed: int = 0) -> dict:
    """Write ``output/{paired/{clean,degraded}, source, target}`` and ``output/split.json``."""
    split = split_pairs(paired, num_pairs, seed)
    output = Path(output)
    for name, clean, degraded in split["paired"]:
        _copy(clean, output / "paired" / "clean" / f"{name}{clean.suffix}")
        _copy(degraded, output / "paired" / "degraded" / f"{name}{degraded.suffix}")
    for name, clean, _ in split["source"]:
        _copy(clean, output / "source" / f"{name}{clean.suffix}")
    for name, _, degraded in split["target"]:
        _copy(degraded, output / "target" / f"{name}{degraded.suffix}")
    record = describe(split, paired, seed)
    atomic_write_json(output / "split.json", record)
    return record
