"""LightningDataModules for the three data settings: paired, unpaired, semi-supervised.

All three share one mechanism (:class:`DomainDataModule`): training batches are drawn one domain
at a time (see :class:`~degrade_lab.data.samplers.DomainBatchSampler`) and tagged with
``batch["domain"]`` (:mod:`degrade_lab.data.domains`); validation and test use whole image pairs.
A degrader set on the module turns clean-only batches into pairs on the batch's device after
transfer (``on_after_batch_transfer``), with its own seeded generator saved in checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, default_collate

from degrade_lab.data import domains as D
from degrade_lab.data.datasets import ImageFolderDataset, PairedCropDataset, PairedImageDataset
from degrade_lab.data.samplers import DomainBatchSampler
from degrade_lab.degradations.build import build_degrader
from degrade_lab.errors import UserInputError


class _Tagged(Dataset):
    """Adds the domain tag to every sample of a dataset."""

    def __init__(self, dataset: Dataset, domain: int):
        self.dataset, self.domain = dataset, domain

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return {**self.dataset[index], "domain": self.domain}


class DomainDataModule(pl.LightningDataModule):
    """Training domains drawn batch by batch with the given weights, plus val/test pairs."""

    def __init__(
        self,
        train_domains: dict[int, Dataset],
        weights: dict[int, float] | None = None,
        val: Dataset | None = None,
        test: Dataset | None = None,
        degrader: Any = None,
        batch_size: int = 16,
        num_workers: int = 0,
        batches_per_epoch: int = 1000,
        seed: int = 0,
    ):
        super().__init__()
        if not train_domains:
            raise UserInputError("no training data was given.")
        self.domain_ids = sorted(train_domains)
        self.train_set = ConcatDataset([_Tagged(train_domains[d], d) for d in self.domain_ids])
        self.train_sizes = [len(train_domains[d]) for d in self.domain_ids]
        weights = weights or {}
        self.weights = [float(weights.get(d, 1.0)) for d in self.domain_ids]
        self.val_set, self.test_set = val, test
        self.degrader = build_degrader(degrader)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.batches_per_epoch, self.seed = batches_per_epoch, seed
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None

    # ---- loaders -------------------------------------------------------------------------
    def _loader_kwargs(self) -> dict:
        return {
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": torch.cuda.is_available(),
        }

    def train_dataloader(self):
        sampler = DomainBatchSampler(
            self.train_sizes, self.batch_size, self.weights, self.batches_per_epoch, self.seed
        )
        return DataLoader(self.train_set, batch_sampler=sampler, collate_fn=default_collate, **self._loader_kwargs())

    def _pairs_loader(self, dataset):
        return DataLoader(dataset, batch_size=1, shuffle=False, **self._loader_kwargs())

    def val_dataloader(self):
        return self._pairs_loader(self.val_set) if self.val_set is not None else []

    def test_dataloader(self):
        test = self.test_set if self.test_set is not None else self.val_set
        if test is None:
            raise UserInputError("no test pairs: set data.test=DIR (a folder with clean/ and degraded/).")
        return self._pairs_loader(test)

    # ---- on-the-fly pairs ----------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The degrader's random stream on ``device``, seeded by (seed, rank); restored on resume."""
        if self._generator is None or self._generator.device != device:
            rank = self.trainer.global_rank if self.trainer is not None else 0
            self._generator = torch.Generator(device=device).manual_seed(self.seed * 7919 + 104729 * rank + 1)
            if self._generator_state is not None:
                self._generator.set_state(self._generator_state)
                self._generator_state = None
        return self._generator

    def on_after_batch_transfer(self, batch, dataloader_idx):
        if self.degrader is not None and "clean" in batch and "degraded" not in batch:
            with torch.no_grad():
                batch["degraded"] = self.degrader(batch["clean"], self.generator(batch["clean"].device))
            batch["domain"] = torch.full_like(batch["domain"], D.PAIRED)
        return batch

    def state_dict(self):
        return {"generator": self._generator.get_state()} if self._generator is not None else {}

    def load_state_dict(self, state):
        self._generator_state = state.get("generator")


def _test_set(test, scale, crop):
    return PairedImageDataset(test, scale=scale, crop=crop) if test else None


def folders(
    kind: str = "paired",
    source: str | None = None,
    target: str | None = None,
    paired: str | None = None,
    test: str | None = None,
    val: str | None = None,
    scale: int = 1,
    degrader: Any = None,
    crop_size: int = 64,
    batch_size: int = 16,
    num_workers: int = 0,
    batches_per_epoch: int = 1000,
    val_crop: int | None = None,
    weights: dict[str, float] | None = None,
    augment: bool = True,
    seed: int = 0,
) -> DomainDataModule:
    """Build the data module a model needs (``kind``) from the user's folders.

    * ``paired`` (restorers): ``paired`` pairs, or ``source`` clean images degraded on the fly by
      ``degrader`` (a degrader config name such as ``camera``, or a config dict).
    * ``unpaired`` (LUD-VAE, DeFlow): ``source`` (clean) and ``target`` (degraded) folders.
    * ``semi`` (SeNM-VAE): ``paired`` + ``source`` + ``target``.

    ``val`` defaults to ``test``; ``weights`` maps domain names (paired/source/target) to how
    often their batches are drawn (equal by default).
    """
    scale = int(scale)

    def need(value, name, why):
        if not value:
            raise UserInputError(f"{why} needs data.{name}=DIR.")
        return Path(value).expanduser()

    domains: dict[int, Dataset] = {}
    if kind == "paired":
        if paired:
            domains[D.PAIRED] = PairedCropDataset(paired, crop_size, scale, augment)
        elif source and degrader is not None:
            domains[D.SOURCE] = ImageFolderDataset(source, crop_size, "clean", augment, "source")
        else:
            raise UserInputError(
                "training a restorer needs pairs: data.paired=DIR (with clean/ and degraded/), or clean "
                "images data.source=DIR plus data.degrader=NAME to degrade them on the fly."
            )
        if degrader is not None and not paired:
            built = build_degrader(degrader)
            if getattr(built, "scale", 1) != scale:
                raise UserInputError(
                    f"data.degrader has scale {getattr(built, 'scale', 1)} but data.scale is {scale}; make them agree."
                )
            degrader = built
        else:
            degrader = None
    elif kind == "unpaired":
        why = "an unpaired degradation model"
        domains[D.SOURCE] = ImageFolderDataset(need(source, "source", why), crop_size, "clean", augment, "source")
        domains[D.TARGET] = ImageFolderDataset(need(target, "target", why), crop_size // scale, "degraded", augment, "target")
        degrader = None
    elif kind == "semi":
        why = "a semi-supervised degradation model"
        domains[D.PAIRED] = PairedCropDataset(need(paired, "paired", why), crop_size, scale, augment)
        domains[D.SOURCE] = ImageFolderDataset(need(source, "source", why), crop_size, "clean", augment, "source")
        domains[D.TARGET] = ImageFolderDataset(need(target, "target", why), crop_size // scale, "degraded", augment, "target")
        degrader = None
    else:
        raise UserInputError(f"unknown data kind '{kind}' (paired, unpaired or semi).")
    name_to_id = {name: code for code, name in D.NAMES.items()}
    weight_ids = {name_to_id[k]: float(v) for k, v in (weights or {}).items() if k in name_to_id}
    return DomainDataModule(
        domains,
        weights=weight_ids,
        val=_test_set(val or test, scale, val_crop),
        test=_test_set(test, scale, None),
        degrader=degrader,
        batch_size=batch_size,
        num_workers=num_workers,
        batches_per_epoch=batches_per_epoch,
        seed=seed,
    )
