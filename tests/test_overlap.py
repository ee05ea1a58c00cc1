"""utils/overlap.py: reads run ahead and writes behind the compute stage in their own threads, and results come
back in order, in the calling thread."""

from __future__ import annotations

import threading
import time

import pytest

from degrade_lab.utils.overlap import overlapped


def test_every_item_in_order_with_skips_and_the_stages_overlapped():
    main = threading.get_ident()
    seen, threads = [], {"read": set(), "compute": set(), "write": set(), "done": set()}
    spans: dict = {}

    def span(stage, item, seconds):
        began = time.perf_counter()
        time.sleep(seconds)
        spans[stage, item] = (began, time.perf_counter())

    def read(item):
        threads["read"].add(threading.get_ident())
        span("read", item, 0.02)
        return item * 10

    def compute(item, data):
        threads["compute"].add(threading.get_ident())
        span("compute", item, 0.05)
        return None if item == 3 else data + 1  # item 3 is skipped

    def write(item, result):
        threads["write"].add(threading.get_ident())
        span("write", item, 0.02)
        return f"w{result}"

    def done(item, result, written):
        threads["done"].add(threading.get_ident())
        seen.append((item, result, written))

    times = overlapped(range(8), read, compute, write, done, threads=2)
    assert seen == [(i, 10 * i + 1, f"w{10 * i + 1}") for i in range(8) if i != 3]
    assert threads["compute"] == threads["done"] == {main} and main not in threads["read"] | threads["write"]
    # the next items were read before the compute of the current one ended, and item 0 written before item 2's
    # compute ended (submitted ahead / behind, whatever the load)
    assert spans["read", 1][0] < spans["compute", 0][1] and spans["write", 0][0] < spans["compute", 2][1]
    assert ("write", 3) not in spans and set(times) == {"read", "compute", "write", "waited", "wall"}
    assert times["compute"] >= 8 * 0.05 and times["wall"] >= times["compute"]


def test_an_error_in_a_stage_reaches_the_caller():
    def read(item):
        if item == 2:
            raise ValueError("unreadable 2")
        return item

    with pytest.raises(ValueError, match="unreadable 2"):
        overlapped(range(5), read, lambda item, data: data, lambda item, result: None, lambda *a: None)
