"""Decode ahead and write behind a network: a folder task's three stages in flight at once.

``read`` runs in reader threads a few items ahead, ``compute`` (the network) in the calling thread, ``write``
(encoding and writing files) in writer threads behind it, and ``done`` back in the calling thread in the items'
order, so manifests are updated by one thread only. Image decoders and encoders (Pillow, imagecodecs, zlib)
release the GIL, so with a network slower than the I/O the wall time is the network's. Written by hand: no
maintained library pipelines CPU stages around a torch model this way (a DataLoader would decode ahead but not
write behind, and would pickle each tensor across processes).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor


def overlapped(items: Iterable, read: Callable, compute: Callable, write: Callable, done: Callable,
               threads: int = 2, progress=None) -> dict[str, float]:
    """Run ``read(item)`` -> ``compute(item, data)`` -> ``write(item, result)`` -> ``done(item, result, written)``
    over ``items``; ``compute`` returning ``None`` skips the item's write and ``done``. Returns the seconds spent in
    each stage (summed over items; read and write overlap the rest), the seconds ``compute`` waited for a read
    item (``waited``) and the wall time. ``progress`` (a tqdm bar) advances once per item."""
    items = list(items)
    threads = max(1, int(threads))
    times = {"read": 0.0, "compute": 0.0, "write": 0.0, "waited": 0.0, "wall": 0.0}
    began = time.perf_counter()

    def timed(function, *args):
        tic = time.perf_counter()
        result = function(*args)
        return result, time.perf_counter() - tic

    def finish(entry) -> None:
        item, result, future = entry
        written, seconds = future.result()
        times["write"] += seconds
        done(item, result, written)

    ahead = threads + 1
    with ThreadPoolExecutor(threads, thread_name_prefix="read") as readers, \
            ThreadPoolExecutor(threads, thread_name_prefix="write") as writers:
        reading = deque(readers.submit(timed, read, item) for item in items[:ahead])
        writing: deque = deque()
        for index, item in enumerate(items):
            tic = time.perf_counter()
            data, seconds = reading.popleft().result()
            times["waited"] += time.perf_counter() - tic
            times["read"] += seconds
            if index + ahead < len(items):
                reading.append(readers.submit(timed, read, items[index + ahead]))
            tic = time.perf_counter()
            result = compute(item, data)
            times["compute"] += time.perf_counter() - tic
            if result is not None:
                writing.append((item, result, writers.submit(timed, write, item, result)))
            while len(writing) > ahead or (writing and writing[0][2].done()):
                finish(writing.popleft())
            if progress is not None:
                progress.update(1)
        while writing:
            finish(writing.popleft())
    times["wall"] = time.perf_counter() - began
    return times
