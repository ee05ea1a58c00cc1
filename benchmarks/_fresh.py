"""Benchmark figures measured one per fresh process, so that each peak resident memory is the figure's own."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable


def in_fresh_process(target: Callable, *args):
    """``target(*args, queue)`` in a spawned process; returns what it put on the queue."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def seconds_per_call(run: Callable[[int], None], repeats: int) -> float:
    """Mean seconds of ``run(1) .. run(repeats)`` after a warm-up ``run(0)``."""
    run(0)
    start = time.perf_counter()
    for index in range(repeats):
        run(index + 1)
    return (time.perf_counter() - start) / repeats


def peak_gib() -> float:
    """This process's resident-memory high-water mark (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
