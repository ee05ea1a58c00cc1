"""Batch sampling for step-based training over one or more image domains."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class DomainBatchSampler(Sampler[list[int]]):
    """Yields batches of indices into a concatenation of domains; each batch comes from ONE domain.

    The domain of each batch is drawn with probability proportional to ``weights`` (equal by
    default, as in LUD-VAE and SeNM-VAE), then ``batch_size`` images of that domain are drawn
    (without replacement where the domain is large enough). Sampling is seeded by
    ``(seed, epoch, rank)``, so runs repeat exactly and DDP ranks see different batches; one
    "epoch" is ``batches_per_epoch`` batches (training is counted in steps, not epochs).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        weights: Sequence[float] | None = None,
        batches_per_epoch: int = 1000,
        seed: int = 0,
    ):
        if not sizes or min(sizes) <= 0:
            raise ValueError(f"every domain needs at least one image, got sizes {list(sizes)}")
        self.sizes = list(sizes)
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        weights = list(weights) if weights is not None else [1.0] * len(sizes)
        if len(weights) != len(sizes) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"domain weights {weights} must be non-negative, one per domain, not all zero")
        self.weights = torch.tensor(weights, dtype=torch.float64)
        self.batch_size, self.batches_per_epoch, self.seed = batch_size, batches_per_epoch, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        rank, _ = _rank_and_world()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + rank)
        self.epoch += 1  # a new stream next epoch even when nobody calls set_epoch
        domains = torch.multinomial(self.weights, self.batches_per_epoch, replacement=True, generator=generator)
        for domain in domains.tolist():
            size = self.sizes[domain]
            if size >= self.batch_size:
                picks = torch.randperm(size, generator=generator)[: self.batch_size]
            else:
                picks = torch.randint(size, (self.batch_size,), generator=generator)
            yield (picks + self.offsets[domain]).tolist()
