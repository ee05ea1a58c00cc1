"""LightningDataModules for the three data settings: paired, unpaired, semi-supervised.

:class:`PairedDataModule`, :class:`UnpairedDataModule` and :class:`SemiSupervisedDataModule` share
one mechanism (:class:`DomainDataModule`): training batches are drawn one domain
at a time (see :class:`~degrade_lab.data.samplers.DomainBatchSampler`) and tagged with
``batch["domain"]`` (:mod:`degrade_lab.data.domains`); validation and test use whole image pairs.
A degrader set on the module turns clean-only batches into pairs on the batch's device after
transfer (``on_after_batch_transfer``), with its own seeded generator saved in checkpoints.

Resuming is exact: every training sample carries its position in the sampler's stream (epoch, batch)
and a seed for its crop and augmentation; the module's ``state_dict`` (saved in every checkpoint) holds
the position after the last batch that reached the model and the degrader's generator, and a resumed
run's sampler starts right there.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from degrade_lab.data import domains as D
from degrade_lab.data.datasets import (
    CleanImageDataset,
    ConcatCrops,
    DegradedImageDataset,
    ImageFolderDataset,
    PairedCropDataset,
    PairedImageDataset,
    crop_datasets,
    files_of,
    spread,
)
from degrade_lab.data.image_store import ImageStore
from degrade_lab.data.pairing import PairFolder
from degrade_lab.data.samplers import DomainBatchSampler
from degrade_lab.degradations.build import build_degrader
from degrade_lab.errors import UserInputError

log = logging.getLogger(__name__)


class _Tagged(Dataset):
    """Adds the domain tag to every sample of a dataset, and the sample's stream position when it was
    asked for by a :class:`~degrade_lab.data.samplers.SampleKey`."""

    def __init__(self, dataset: Dataset, domain: int):
        self.dataset, self.domain = dataset, domain

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        item = {**self.dataset[key], "domain": self.domain}
        if isinstance(key, tuple) and len(key) == 4:
            item["position"] = torch.tensor([key[2], key[3]])
        return item


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
        num_workers: int | str = 0,
        batches_per_epoch: int = 1000,
        seed: int = 0,
        cache: str = "auto",
        cache_gb: float | str = "auto",
        cache_dir: str | None = None,
        crops_per_image: int = 1,
        skip_bad: bool = False,
    ):
        super().__init__()
        if not train_domains:
            raise UserInputError("no training data was given.")
        self.domain_ids = sorted(train_domains)
        self.train_domains = dict(train_domains)
        self.train_set = ConcatCrops([_Tagged(train_domains[d], d) for d in self.domain_ids])
        self.train_sizes = [len(train_domains[d]) for d in self.domain_ids]
        weights = weights or {}
        self.weights = [float(weights.get(d, 1.0)) for d in self.domain_ids]
        self.val_set, self.test_set = val, test
        self.degrader = build_degrader(degrader)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.batches_per_epoch, self.seed = batches_per_epoch, seed
        if num_workers != "auto" and (not str(num_workers).isdigit()):
            raise UserInputError(f"data.num_workers={num_workers!r}: give a number of loader processes or auto.")
        if int(crops_per_image) < 1:
            raise UserInputError(f"data.crops_per_image={crops_per_image}: give at least 1.")
        self.cache = {"mode": cache, "memory_gb": cache_gb, "cache_dir": cache_dir}
        ImageStore(**self.cache)  # an unknown mode or budget stops here, before any decoding
        self.crops_per_image, self.skip_bad = int(crops_per_image), bool(skip_bad)
        self.store: ImageStore | None = None
        #: unreadable images left out (data.skip_bad=true): file -> reason, counted in the run's summary
        self.skipped: dict[str, str] = {}
        for part in crop_datasets(self.train_set):
            self.skipped.update(getattr(part, "skipped", {}))
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None
        self.position = (0, 0)  # (epoch, batch) of the next training batch in the sampler's stream
        self.degrade_seconds = 0.0  # spent making pairs on the fly
        #: degraded images whose pooled noise reading validation compares the synthetic noise with
        target = train_domains.get(D.TARGET)
        self.noise_reference_files = spread(files_of(target), NOISE_REFERENCE_IMAGES) if target is not None else []
        self._noise_reference: dict | None = None
        #: True when validation has no pairs: clean images only, judged by their synthetic noise alone
        self.unpaired_validation = False

    def noise_reference(self) -> dict | None:
        """The pooled noise reading of (up to 64 of) the degraded training images, computed once; ``None``
        without a degraded domain."""
        if self._noise_reference is None and self.noise_reference_files:
            from degrade_lab.metrics.pooled_noise import pooled_noise
            from degrade_lab.utils.io import read_image

            files = self.noise_reference_files
            self._noise_reference = pooled_noise(((str(f), read_image(f)) for f in files), len(files))
        return self._noise_reference

    def domain_files(self) -> tuple[list[Path], list[Path]]:
        """The image files of the clean (source) and degraded (target) training domains, ``[]`` for one it lacks:
        what calibration and the automatic pre-noise read, whatever data set the module was built from."""
        return tuple(files_of(self.train_domains[d]) if d in self.train_domains else [] for d in (D.SOURCE, D.TARGET))

    # ---- decoding once ----------------------------------------------------------------------
    def _processes(self) -> int:
        """Training processes on this machine (DDP ranks of one node), which share its memory."""
        return int(getattr(self.trainer, "num_devices", 1) or 1) if self.trainer is not None else 1

    def _new_store(self) -> ImageStore:
        return ImageStore(**self.cache, skip_bad=self.skip_bad, processes=self._processes())

    def _training_images(self) -> list[Path]:
        return [file for part in crop_datasets(self.train_set) for file in part.image_files()]

    def prepare_data(self):
        """Fill the disk store once per machine (Lightning calls this on one process per node before ``setup``)."""
        store = self._new_store()
        if store.resolve(self._training_images()) == "disk":
            store.prepare(self._training_images())
            self._disk_prepare_seconds = store.prepare_seconds  # (this process's setup finds them stored)

    def setup(self, stage: str | None = None):
        """Decode the training images once (``data.cache``) before the loader's workers start: they share them."""
        if stage not in (None, "fit") or self.store is not None:
            return
        store = self._new_store()
        rank = self.trainer.global_rank if self.trainer is not None else 0
        store.prepare(self._training_images(), progress=rank == 0)
        store.prepare_seconds += getattr(self, "_disk_prepare_seconds", 0.0)
        for part in crop_datasets(self.train_set):
            part.store = store
        self.skipped.update(store.bad)
        self.store = store

    def describe_loading(self) -> dict:
        """How training data was read, for the run's summary: the store, the workers, the skipped images."""
        return {"cache": self.store.describe() if self.store is not None else {"mode": "none"},
                "num_workers": self._workers(), "crops_per_image": self.crops_per_image,
                "skipped_images": len(self.skipped), **({"skipped": dict(self.skipped)} if self.skipped else {})}

    # ---- loaders -------------------------------------------------------------------------
    def _on_accelerator(self) -> bool:
        from pytorch_lightning.accelerators import CPUAccelerator

        return self.trainer is not None and not isinstance(self.trainer.accelerator, CPUAccelerator)

    def _workers(self) -> int:
        """``data.num_workers``; ``auto``: on a GPU, a few loader processes per device (the network runs
        elsewhere); on the CPU, none when crops come from decoded images (workers would take the cores the network
        uses, and a crop costs microseconds), else one per four cores to decode ahead."""
        if self.num_workers != "auto":
            return int(self.num_workers)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if self._on_accelerator():
            return max(1, min(8, cores // max(1, self._processes()) - 1))
        if self.store is not None and self.store.mode in ("memory", "disk"):
            return 0
        return cores // 4

    def _loader_kwargs(self) -> dict:
        workers = self._workers()
        return {
            "num_workers": workers,
            "persistent_workers": workers > 0,
            "pin_memory": self._on_accelerator() and torch.cuda.is_available(),
            # each new iterator draws a worker base seed from this, not from the global stream (that draw
            # at every epoch start would shift a model's random draws between a run and its resumption)
            "generator": torch.Generator().manual_seed(self.seed),
        }

    def train_dataloader(self):
        if self.store is None:  # a loader asked for without Lightning's setup (tests, notebooks)
            self.setup("fit")
        sampler = DomainBatchSampler(self.train_sizes, self.batch_size, self.weights, self.batches_per_epoch,
                                     self.seed, epoch=self.position[0], start_batch=self.position[1],
                                     crops_per_image=self.crops_per_image)
        return DataLoader(self.train_set, batch_sampler=sampler, collate_fn=default_collate, **self._loader_kwargs())

    def _pairs_loader(self, dataset):
        return DataLoader(dataset, batch_size=1, shuffle=False, **self._loader_kwargs())

    def val_dataloader(self):
        return self._pairs_loader(self.val_set) if self.val_set is not None else []

    def test_dataloader(self):
        test = self.test_set if self.test_set is not None or self.unpaired_validation else self.val_set
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
        for reasons in (batch.pop("bad", None) or []) if isinstance(batch, dict) else []:
            for reason in filter(None, reasons.split("\n")):
                file = reason.split("'")[1] if reason.count("'") >= 2 else reason
                if file not in self.skipped:
                    log.warning("skipped during training (data.skip_bad=true): %s", reason)
                self.skipped[file] = reason
        position = batch.pop("position", None) if isinstance(batch, dict) else None
        if position is not None:  # a training batch reached the model: the stream continues after it
            epoch, index = (int(v) for v in position[0].tolist())
            self.position = (epoch, index + 1)
        if self.degrader is not None and "clean" in batch and "degraded" not in batch:
            began = time.perf_counter()
            device = batch["clean"].device
            self.degrader.to(device)  # learned degraders carry weights; a no-op for hand-made ones
            with torch.inference_mode():
                degraded = self.degrader(batch["clean"], self.generator(device))
            batch["degraded"] = degraded.clone()  # an ordinary tensor again, usable by autograd
            batch["domain"] = torch.full_like(batch["domain"], D.PAIRED)
            parameters = getattr(self.degrader, "last_parameters", {})
            if parameters:  # the known degradation of each image (sigma, quality, blur width)
                batch["parameters"] = {name: values.clone() for name, values in parameters.items()}
            self.degrade_seconds += time.perf_counter() - began  # (callbacks/step_timer.py reports it)
        return batch

    def state_dict(self):
        state = {"position": list(self.position)}
        if self._generator is not None:
            state["generator"] = self._generator.get_state()
        return state

    def load_state_dict(self, state):
        self._generator_state = state.get("generator")
        self.position = tuple(state.get("position", (0, 0)))  # checkpoints written before it: from the start

    def known_parameters(self) -> dict[str, set[str] | None]:
        """The per-image degradation parameters (``sigma``, ``quality``, ...) that training and validation
        batches carry; ``None`` for a stage without data. Real pairs carry none."""
        val = self.val_set
        return {
            "train": self.degrader.parameter_names() if self.degrader is not None else set(),
            "val": None if val is None else (val.degrader.parameter_names() if isinstance(val, DegradedImageDataset)
                                             else set()),
        }


#: degraded images read for the validation's noise reference, and clean images validated without pairs
NOISE_REFERENCE_IMAGES, UNPAIRED_VALIDATION_IMAGES = 64, 16


def _pairs(folder, scale, crop, degrader=None, seed: int = 0):
    """Pairs from a paired folder (clean/ + degraded/), or, for a folder of clean images only and an
    on-the-fly degrader, pairs that degrader makes with fixed per-image seeds; a data set's own pairs
    (a :class:`~torch.utils.data.Dataset`, e.g. SIDD's validation blocks) as they are."""
    if isinstance(folder, Dataset):
        return folder
    if not folder:
        return None
    spec = PairFolder.of(folder)
    root = spec.root
    if degrader is not None and spec.plain and root.is_dir() and not (root / "clean").is_dir():
        # its own copy: training moves the on-the-fly degrader to the accelerator, validation stays on CPU
        return DegradedImageDataset(root, copy.deepcopy(degrader), seed=seed, crop=crop)
    return PairedImageDataset(folder, scale=scale, crop=crop)


def _folders(value) -> list:
    """A folder setting: one folder or a list of them (``data.paired=[DIR1,DIR2]``)."""
    if value is None or value == "":
        return []
    return [value] if isinstance(value, (str, Path, Mapping)) else list(value)


def _concat(datasets: list[Dataset]) -> Dataset:
    return datasets[0] if len(datasets) == 1 else ConcatCrops(datasets)


def paired_crops(paired, crop_size: int, scale: int, augment: bool, why: str, pairs=None,
                 skip_bad: bool = False) -> Dataset:
    """Aligned crops from one or more paired folders and / or a list of ``pairs`` (a split's pairs: a restorer
    trained on synthetic pairs plus the split's real ones, SeNM-VAE Table 2)."""
    parts = [PairedCropDataset(None, crop_size, scale, augment, pairs=pairs, skip_bad=skip_bad)] \
        if pairs is not None else []
    parts += [PairedCropDataset(folder, crop_size, scale, augment, skip_bad=skip_bad) for folder in _folders(paired)]
    if not parts:
        raise UserInputError(f"{why} needs data.paired=DIR (with clean/ and degraded/).")
    return _concat(parts)


def image_crops(folder, crop_size: int, key: str, augment: bool, what: str, why: str, files=None,
                skip_bad: bool = False) -> Dataset:
    """Crops from one or more folders of unpaired images, or from a list of ``files`` (a split)."""
    if files is not None:
        if not files:
            raise UserInputError(f"the split leaves no {what} images for {why}.")
        return ImageFolderDataset(None, crop_size, key, augment, what, files=files, skip_bad=skip_bad)
    folders = _folders(folder)
    if not folders:
        raise UserInputError(f"{why} needs data.{what}=DIR.")
    return _concat([ImageFolderDataset(Path(f).expanduser(), crop_size, key, augment, what, skip_bad=skip_bad)
                    for f in folders])


def _weights(weights: dict[str, float] | None) -> dict[int, float]:
    ids = {name: code for code, name in D.NAMES.items()}
    return {ids[k]: float(v) for k, v in (weights or {}).items() if k in ids}


class PairedDataModule(DomainDataModule):
    """Restorer training: real pairs (``paired``: a folder or a list of folders, or ``pairs`` of a
    split), or clean images (``source``) that ``degrader`` turns into pairs on the fly (a degrader
    config name such as ``camera``, a config dict, or a trained degradation model's ``.ckpt``;
    ``degrader_ckpt`` completes a learned degrader's config)."""

    def __init__(self, paired=None, source=None, degrader=None, test=None, val=None, scale: int = 1,
                 crop_size: int = 64, val_crop: int | None = None, augment: bool = True,
                 degrader_ckpt: str | None = None, pairs=None, source_files=None, **loader):
        scale, bad = int(scale), bool(loader.get("skip_bad", False))
        if paired or pairs is not None:
            domains = {D.PAIRED: paired_crops(paired, crop_size, scale, augment, "a restorer", pairs, bad)}
            degrader = None
        elif (source or source_files is not None) and degrader is not None:
            domains = {D.SOURCE: image_crops(source, crop_size, "clean", augment, "source", "a restorer", source_files,
                                             bad)}
            degrader = build_degrader(degrader, degrader_ckpt)
            if getattr(degrader, "scale", 1) != scale:
                raise UserInputError(
                    f"data.degrader has scale {getattr(degrader, 'scale', 1)} but data.scale is {scale}; "
                    "make them agree."
                )
        else:
            raise UserInputError(
                "training a restorer needs pairs: data.paired=DIR (with clean/ and degraded/), or clean "
                "images data.source=DIR plus data.degrader=NAME to degrade them on the fly."
            )
        seed = loader.get("seed", 0)
        super().__init__(domains, val=_pairs(val or test, scale, val_crop, degrader, seed),
                         test=_pairs(test, scale, None, degrader, seed), degrader=degrader, **loader)


class UnpairedDataModule(DomainDataModule):
    """Unpaired degradation models (LUD-VAE, DeFlow): clean ``source`` and degraded ``target``
    folders (or lists of folders, or ``source_files`` / ``target_files`` of a split) that share no
    scene; each batch comes from one of them."""

    def __init__(self, source=None, target=None, test=None, val=None, scale: int = 1, crop_size: int = 64,
                 val_crop: int | None = None, augment: bool = True, weights=None, source_files=None,
                 target_files=None, **loader):
        scale, why, bad = int(scale), "an unpaired degradation model", bool(loader.get("skip_bad", False))
        domains = {
            D.SOURCE: image_crops(source, crop_size, "clean", augment, "source", why, source_files, bad),
            D.TARGET: image_crops(target, crop_size // scale, "degraded", augment, "target", why, target_files, bad),
        }
        pairs = _pairs(val or test, scale, val_crop)
        clean = None if pairs is not None else CleanImageDataset(
            spread(files_of(domains[D.SOURCE]), UNPAIRED_VALIDATION_IMAGES), val_crop or 128)
        super().__init__(domains, weights=_weights(weights), val=pairs if pairs is not None else clean,
                         test=_pairs(test, scale, None), **loader)
        self.unpaired_validation = pairs is None


class SemiSupervisedDataModule(DomainDataModule):
    """Semi-supervised degradation models (SeNM-VAE): a few ``paired`` images plus unpaired
    ``source`` (clean) and ``target`` (degraded) images, drawn batch by batch with ``weights`` (equal by
    default). A domain whose weight is 0 is switched off and its folder may be empty or unset (the
    paired-only setting and the ablations of SeNM-VAE Table 7). ``split`` gives the three domains as
    lists of pairs instead of folders (:func:`~degrade_lab.data.splits.split_pairs`). Without validation pairs,
    ``clean_validation=True`` validates on clean source images alone, as :class:`UnpairedDataModule` does (for
    models that can score their synthesis without pairs: semi-supervised DeFlow); otherwise nothing is validated."""

    def __init__(self, paired=None, source=None, target=None, test=None, val=None, scale: int = 1,
                 crop_size: int = 64, val_crop: int | None = None, augment: bool = True, weights=None,
                 split: dict | None = None, clean_validation: bool = False, **loader):
        scale, why, bad = int(scale), "a semi-supervised degradation model", bool(loader.get("skip_bad", False))
        weights = {D.PAIRED: 1.0, D.SOURCE: 1.0, D.TARGET: 1.0, **_weights(weights)}
        if weights[D.PAIRED] <= 0:
            raise UserInputError("a semi-supervised model needs its paired domain: data.weights.paired must be > 0.")
        split = split or {}
        domains = {D.PAIRED: paired_crops(paired, crop_size, scale, augment, why, split.get("paired"), bad)}
        if weights[D.SOURCE] > 0:
            files = [clean for _, clean, _ in split["source"]] if split else None
            domains[D.SOURCE] = image_crops(source, crop_size, "clean", augment, "source",
                                            f"{why} (or switch the source domain off: data.weights.source=0)", files,
                                            bad)
        if weights[D.TARGET] > 0:
            files = [degraded for _, _, degraded in split["target"]] if split else None
            domains[D.TARGET] = image_crops(target, crop_size // scale, "degraded", augment, "target",
                                            f"{why} (or switch the target domain off: data.weights.target=0)", files,
                                            bad)
        pairs = _pairs(val or test, scale, val_crop)
        clean = None
        if pairs is None and clean_validation and D.SOURCE in domains:
            clean = CleanImageDataset(spread(files_of(domains[D.SOURCE]), UNPAIRED_VALIDATION_IMAGES), val_crop or 128)
        super().__init__(domains, weights={d: weights[d] for d in domains}, val=pairs if pairs is not None else clean,
                         test=_pairs(test, scale, None), **loader)
        self.unpaired_validation = clean is not None


KINDS = {"paired": PairedDataModule, "unpaired": UnpairedDataModule, "semi": SemiSupervisedDataModule}


def folders(
    kind: str = "paired",
    source=None,
    target=None,
    paired=None,
    test: str | None = None,
    val: str | None = None,
    scale: int = 1,
    degrader: Any = None,
    degrader_ckpt: str | None = None,
    crop_size: int = 64,
    batch_size: int = 16,
    num_workers: int | str = "auto",
    batches_per_epoch: int = 1000,
    val_crop: int | None = None,
    weights: dict[str, float] | None = None,
    augment: bool = True,
    seed: int = 0,
    split_from: str | None = None,
    num_paired: int = 10,
    split_seed: int = 0,
    clean_validation: bool = False,
    num_unpaired: int | None = None,
    cache: str = "auto",
    cache_gb: float | str = "auto",
    cache_dir: str | None = None,
    crops_per_image: int = 1,
    skip_bad: bool = False,
) -> DomainDataModule:
    """The data module a model needs (``kind``, from its LightningModule's ``data_kind``), built from
    the user's folders (``conf/data/folders.yaml``). Folders a kind does not use are ignored.

    ``split_from=PAIRED_DIR`` builds SeNM-VAE's semi-supervised split of one paired set instead
    (:func:`~degrade_lab.data.splits.split_pairs`, seeded by ``split_seed``): ``num_paired`` pairs, the
    rest halved into source (clean) and target (degraded) images (``num_unpaired`` of each, when given). Each
    kind takes what it may use:
    ``semi`` the three domains; ``unpaired`` (LUD-VAE) every clean and every degraded image of the split
    without its pairing; ``paired`` (a restorer) the ``num_paired`` pairs alone. The data module's
    ``split_record`` lists the names per domain (the train task saves it as ``split.json``).
    ``clean_validation``: a ``semi`` model that scores its synthesis without pairs (the train task sets it from
    the model's ``unpaired_monitor``) validates on clean images when no validation pairs are given.
    ``kind="test"`` returns the test pairs alone (a dataset, what ``evaluate`` scores), as every data set's
    factory does."""
    if kind == "test":  # what evaluate scores: the test pairs alone
        if not test:
            raise UserInputError("no test pairs: set data.test=DIR (a folder with clean/ and degraded/).")
        return PairedImageDataset(test, scale=int(scale))
    if kind not in KINDS:
        raise UserInputError(f"unknown data kind '{kind}' (paired, unpaired or semi).")
    common = {"test": test, "val": val, "scale": scale, "crop_size": crop_size, "val_crop": val_crop,
              "augment": augment, "batch_size": batch_size, "num_workers": num_workers,
              "batches_per_epoch": batches_per_epoch, "seed": seed, "cache": cache, "cache_gb": cache_gb,
              "cache_dir": cache_dir, "crops_per_image": crops_per_image, "skip_bad": skip_bad}
    split = record = None
    if split_from:
        from degrade_lab.data.splits import describe, split_pairs, unpaired_files

        split = split_pairs(split_from, int(num_paired), int(split_seed), int(scale), unpaired=kind != "paired",
                            num_unpaired=num_unpaired)
        record = describe(split, split_from, split_seed)
    if kind == "paired":
        module = PairedDataModule(paired=paired, source=source, degrader=degrader, degrader_ckpt=degrader_ckpt,
                                  pairs=split["paired"] if split else None, **common)
    elif kind == "unpaired":
        files = {}
        if split:
            source_files, target_files = unpaired_files(split)
            files = {"source_files": source_files, "target_files": target_files}
        module = UnpairedDataModule(source=source, target=target, weights=weights, **files, **common)
    else:
        module = SemiSupervisedDataModule(paired=paired, source=source, target=target, weights=weights,
                                          split=split, clean_validation=clean_validation, **common)
    module.split_record = record
    return module
