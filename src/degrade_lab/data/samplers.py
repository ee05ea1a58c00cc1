"""Batch sampling for step-based training over one or more image domains, resumable to the exact batch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch.utils.data import Sampler


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class SampleKey(NamedTuple):
    """What a training dataset is asked for: image ``index``, the ``seed`` of its crop and augmentation,
    and where in the stream it was drawn (``epoch``, ``batch``: the data module's resume position)."""

    index: int
    seed: int
    epoch: int
    batch: int


def _seed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


class DomainBatchSampler(Sampler[list[SampleKey]]):
    """Yields batches of :class:`SampleKey` into a concatenation of domains; each batch comes from ONE domain.

    The domain of each batch is drawn with probability proportional to ``weights`` (equal by
    default, as in LUD-VAE and SeNM-VAE), then ``batch_size`` images of that domain are drawn
    (without replacement where the domain is large enough), each with its own crop seed. Batch ``b`` of
    epoch ``e`` is a function of ``(seed, e, b, rank)`` alone, so runs repeat exactly, DDP ranks see
    different images but the same domain at every step (rank 0's draw: a step then uses the same parameters
    on every replica, as DDP needs), the number of loader workers changes nothing, and a resumed run continues at
    batch ``start_batch`` of epoch ``epoch`` with the very batches an uninterrupted run would draw.
    ``crops_per_image`` > 1 takes that many crops (each with its own seed) of every drawn image, next to each other
    in the batch, so a batch decodes ``batch_size / crops_per_image`` images when nothing is cached.
    One "epoch" is ``batches_per_epoch`` batches (training is counted in steps, not epochs).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        weights: Sequence[float] | None = None,
        batches_per_epoch: int = 1000,
        seed: int = 0,
        epoch: int = 0,
        start_batch: int = 0,
        crops_per_image: int = 1,
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
        if int(crops_per_image) < 1:
            raise ValueError(f"crops_per_image must be at least 1, got {crops_per_image}")
        self.crops_per_image = int(crops_per_image)
        if start_batch >= batches_per_epoch:  # resumed exactly at an epoch's end
            epoch, start_batch = epoch + 1, 0
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def batch(self, epoch: int, index: int) -> list[SampleKey]:
        """Batch ``index`` of ``epoch`` (on this process's rank)."""
        rank, _ = _rank_and_world()
        generator = torch.Generator().manual_seed(_seed(self.seed, epoch, index, rank))
        chooser = generator if rank == 0 else torch.Generator().manual_seed(_seed(self.seed, epoch, index, 0))
        domain = int(torch.multinomial(self.weights, 1, generator=chooser))
        size = self.sizes[domain]
        images = -(-self.batch_size // self.crops_per_image)
        if size >= images:
            picks = torch.randperm(size, generator=generator)[:images]
        else:
            picks = torch.randint(size, (images,), generator=generator)
        picks = picks.repeat_interleave(self.crops_per_image)[: self.batch_size]
        seeds = torch.randint(2**62, (self.batch_size,), generator=generator)
        return [SampleKey(int(p) + self.offsets[domain], int(s), epoch, index)
                for p, s in zip(picks.tolist(), seeds.tolist(), strict=True)]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        # Lightning's set_epoch is deliberately not implemented: it arrives after the loader's first batch
        # is prefetched; each pass over the sampler is the next epoch, and a resumed run sets its position
        epoch, start = self.epoch, self.start_batch
        self.epoch, self.start_batch = epoch + 1, 0
        for index in range(start, self.batches_per_epoch):
            yield self.batch(epoch, index)
