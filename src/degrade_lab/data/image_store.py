"""Decode each training image once: decoded pixels kept in memory, or in a store of raw arrays on disk.

Training draws small random crops from large photos. Decoding a 12-megapixel PNG takes about 2.5 s on one core
while a batch of 16 crops takes a fraction of a second of network time, so decoding the whole file for every crop
leaves the network idle. An :class:`ImageStore` decodes every training image once and serves crops from the
decoded pixels (``H x W x 3`` in the file's own type, :func:`~degrade_lab.utils.io.read_pixels`):

- ``memory``: all decoded images in this process's memory, decoded up front in threads before the loader's
  workers start (forked workers share the pages);
- ``disk``: each image decoded once into a raw ``.npy`` array under ``cache_dir`` (kept between runs, keyed by the
  file's path, size and modification time, listed in ``manifest.json``) and memory-mapped, so a crop reads only its
  rows and the operating system's page cache keeps what fits;
- ``off``: decode on every visit (the previous image kept for several crops of one image in a batch);
- ``auto`` (the default): ``memory`` when the decoded folder fits ``memory_gb``, else ``disk``.

A crop converted to float equals the same crop of :func:`~degrade_lab.utils.io.read_image` (the conversion is
per pixel), so the mode changes the speed, never a sample. BasicSR's answer is to cut sub-images into an LMDB
once; the store keeps whole images instead, so crops may still start anywhere. Written by hand: no maintained
library keeps decoded images of arbitrary formats in memory or memory-mapped for random crops.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import _png_bit_depth, atomic_write, image_size, read_pixels

log = logging.getLogger(__name__)
MODES = ("auto", "memory", "disk", "off")
#: memory-mapped arrays kept open at once (each holds a file descriptor)
OPEN_ARRAYS = 128


def decoded_bytes(path: Path) -> int:
    """The size of an image's decoded pixels, from its header (16-bit PNGs and TIFFs counted at 2 bytes a sample)."""
    height, width = image_size(path)
    wide = path.suffix.lower() in (".tif", ".tiff") or (path.suffix.lower() == ".png" and _png_bit_depth(path) == 16)
    return height * width * 3 * (2 if wide else 1)


def memory_budget(memory_gb, processes: int = 1) -> int:
    """Bytes of decoded images one process may keep: ``memory_gb``, or for ``auto`` a quarter of this machine's
    memory shared by the ``processes`` training on it (DDP ranks of one node)."""
    if memory_gb in (None, "auto"):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(total / 4 / max(1, processes))
    try:
        value = float(memory_gb)
    except (TypeError, ValueError) as err:
        raise UserInputError(f"data.cache_gb={memory_gb!r}: give a number of gigabytes or auto.") from err
    if value < 0:
        raise UserInputError(f"data.cache_gb={memory_gb}: give a non-negative number of gigabytes or auto.")
    return int(value * 1e9)


def _key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32]


class ImageStore:
    """Decoded pixels by file path (see the module's docstring). ``prepare(files)`` decodes what the mode keeps;
    ``pixels(path)`` returns an ``H x W x 3`` array (a memory map in ``disk`` mode). With ``skip_bad`` an unreadable
    file is recorded in ``bad`` (path -> reason) during ``prepare`` instead of stopping it; ``pixels`` raises its
    :class:`~degrade_lab.errors.UserInputError` either way, and the datasets decide whether to skip it."""

    def __init__(self, mode: str = "auto", memory_gb="auto", cache_dir: str | Path | None = None,
                 threads: int = 0, skip_bad: bool = False, processes: int = 1):
        if mode not in MODES:
            raise UserInputError(f"data.cache={mode!r}: choose one of {', '.join(MODES)}.")
        self.mode, self.requested = mode, mode
        self.budget = memory_budget(memory_gb, processes)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.threads = int(threads) or min(8, os.cpu_count() or 1)
        self.skip_bad = bool(skip_bad)
        self.bad: dict[str, str] = {}
        self._memory: dict[str, np.ndarray] = {}
        self._arrays: dict[str, Path] = {}
        self._open: OrderedDict[str, np.ndarray] = OrderedDict()
        self._last: tuple[str, np.ndarray] | None = None
        self.prepare_seconds = 0.0

    # ---- preparing ------------------------------------------------------------------------------
    def _needed(self, files: list[Path]) -> int:
        total = 0
        for file in files:
            try:
                total += decoded_bytes(file)
            except UserInputError as err:
                if not self.skip_bad:
                    raise
                self.bad[str(file)] = str(err)
        return total

    def resolve(self, files) -> str:
        """The mode ``auto`` takes for ``files``: ``memory`` when their decoded pixels fit the budget, else ``disk``
        (``off`` without a ``cache_dir``)."""
        if self.mode == "auto":
            files = sorted({Path(f) for f in files})
            needed = self._needed(files)
            self.mode = "memory" if needed <= self.budget else ("disk" if self.cache_dir is not None else "off")
            where = {"memory": "kept in memory", "disk": f"stored on disk in {self.cache_dir}",
                     "off": "decoded on every visit (no data.cache_dir)"}[self.mode]
            log.info("decoded training images: %.2f GB for %d images, %s (memory budget %.1f GB, data.cache_gb)",
                     needed / 1e9, len(files), where, self.budget / 1e9)
        return self.mode

    def prepare(self, files, progress: bool = True) -> ImageStore:
        """Decode ``files`` into memory or into the disk store, as the mode says (``auto`` chooses here)."""
        files = sorted({Path(f) for f in files})
        if files and self.resolve(files) == "disk":
            self._prepare_disk([f for f in files if str(f) not in self.bad], progress)
        elif files and self.mode == "memory":
            self._prepare_memory([f for f in files if str(f) not in self.bad], progress)
        return self

    def _each(self, files, work, what: str, progress: bool) -> None:
        """``work(file)`` over ``files`` in threads (decoders release the GIL), with a progress bar for long jobs;
        an unreadable file is recorded (``skip_bad``) or stops the run naming it."""
        from tqdm import tqdm

        began = time.perf_counter()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="decode") as pool, \
                tqdm(total=len(files), desc=what, unit="img", disable=not progress or len(files) < 50) as bar:
            futures = [(file, pool.submit(work, file)) for file in files]
            for file, future in futures:
                try:
                    future.result()
                except UserInputError as err:
                    if not self.skip_bad:
                        for _, other in futures:
                            other.cancel()
                        raise
                    self.bad[str(file)] = str(err)
                    log.warning("skipped (data.skip_bad=true): %s", err)
                bar.update()
        self.prepare_seconds += time.perf_counter() - began

    def _prepare_memory(self, files, progress: bool) -> None:
        def load(file: Path) -> None:
            stored = self._stored(file)
            self._memory[str(file)] = np.load(stored) if stored is not None else read_pixels(file)

        self._each(files, load, "decode training images", progress)
        log.info("decoded %d training images into memory in %.1f s", len(self._memory), self.prepare_seconds)

    def _stored(self, file: Path) -> Path | None:
        """The disk store's array of ``file`` when it was made already (by this run or an earlier one)."""
        if self.cache_dir is None:
            return None
        array = self.cache_dir / f"{_key(file)}.npy"
        return array if array.is_file() else None

    def _prepare_disk(self, files, progress: bool) -> None:
        if self.cache_dir is None:
            raise UserInputError("data.cache=disk needs data.cache_dir=DIR (where decoded images are stored).")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        missing = [f for f in files if self._stored(f) is None]
        new_bytes = self._needed(missing)
        free = shutil.disk_usage(self.cache_dir).free
        if new_bytes > free:
            raise UserInputError(
                f"storing the decoded training images needs {new_bytes / 1e9:.1f} GB in '{self.cache_dir}' but "
                f"{free / 1e9:.1f} GB are free: point data.cache_dir at a larger disk, raise data.cache_gb to keep "
                "them in memory, or decode on every visit with data.cache=off.")
        made: dict[str, dict] = {}

        def store(file: Path) -> None:
            pixels = read_pixels(file)
            key = _key(file)
            atomic_write(self.cache_dir / f"{key}.npy", lambda handle: np.save(handle, pixels))
            made[key] = {"file": str(file.resolve()), "height": pixels.shape[0], "width": pixels.shape[1],
                         "dtype": str(pixels.dtype)}

        if missing:
            self._each(missing, store, f"decode once into {self.cache_dir}", progress)
            self._record(made)
            log.info("stored %d decoded training images (%.2f GB) in %s in %.1f s", len(made), new_bytes / 1e9,
                     self.cache_dir, self.prepare_seconds)
        for file in files:
            if str(file) not in self.bad:
                self._arrays[str(file)] = self.cache_dir / f"{_key(file)}.npy"
        log.info("training crops read from %d decoded images in %s", len(self._arrays), self.cache_dir)

    def _record(self, made: dict[str, dict]) -> None:
        """Add entries to the store's ``manifest.json`` (under a lock: several runs may share one store)."""
        manifest = self.cache_dir / "manifest.json"
        with open(self.cache_dir / ".manifest.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = {}
            if manifest.is_file():
                try:
                    entries = json.loads(manifest.read_text()).get("images", {})
                except (OSError, ValueError):
                    log.warning("the decoded-image store's manifest %s was unreadable; rewriting it", manifest)
            entries.update(made)
            text = json.dumps({"what": "decoded training images (numpy .npy, H x W x 3), by path, size and mtime",
                               "images": entries}, indent=1)
            atomic_write(manifest, lambda handle: handle.write(text.encode()))

    # ---- reading --------------------------------------------------------------------------------
    def pixels(self, path) -> np.ndarray:
        """The decoded ``H x W x 3`` pixels of ``path`` (read-only; crop before converting)."""
        key = str(path)
        if key in self.bad:
            raise UserInputError(self.bad[key])
        if key in self._memory:
            return self._memory[key]
        if key in self._arrays:
            array = self._open.pop(key, None)
            if array is None:
                try:
                    array = np.load(self._arrays[key], mmap_mode="r")
                except (OSError, ValueError) as err:
                    raise UserInputError(
                        f"image '{path}': its decoded copy '{self._arrays[key]}' cannot be read "
                        f"({type(err).__name__}: {err}); delete it and it is decoded again.") from err
            self._open[key] = array
            while len(self._open) > OPEN_ARRAYS:
                self._open.popitem(last=False)
            return array
        if self._last is not None and self._last[0] == key:  # several crops of one image in a row
            return self._last[1]
        pixels = read_pixels(path)
        self._last = (key, pixels)
        return pixels

    def __getstate__(self):  # workers started by spawn reopen the memory maps themselves
        state = dict(self.__dict__)
        state["_open"], state["_last"] = OrderedDict(), None
        return state

    def describe(self) -> dict:
        """What the store did, for the run's summary."""
        return {"mode": self.mode, "requested": self.requested, "images": len(self._memory) or len(self._arrays),
                "prepare_seconds": round(self.prepare_seconds, 2),
                **({"cache_dir": str(self.cache_dir)} if self.mode == "disk" else {})}
