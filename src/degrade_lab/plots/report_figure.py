"""The figure of ``degrade-lab report``: what a person looks at before the table.

One row per method: clean | real degraded | synthetic (centre crops of the same test image, nearest
up-scaled) and the noise histogram of real vs synthetic over the whole test set; for methods that were
only scored as restorers, degraded | restored | clean instead. Below, bar charts of the downstream PSNR
and LPIPS of every method that has them. The size is fixed by the content (:func:`figure_size`).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from degrade_lab.utils.io import atomic_write_bytes  # noqa: E402

PANEL_INCHES, TITLE_INCHES, DPI = 2.4, 0.5, 100
BAR_INCHES_PER_METHOD, BAR_INCHES_EXTRA = 0.4, 1.1
DEGRADER_PANELS = (("clean", "clean"), ("real", "real degraded"), ("synthetic", "synthetic"))
RESTORER_PANELS = (("degraded", "degraded"), ("restored", "restored"), ("clean", "clean"))


def bar_inches(methods: int) -> float:
    return BAR_INCHES_EXTRA + BAR_INCHES_PER_METHOD * methods if methods else 0.0


def figure_size(image_rows: int, bar_methods: int) -> tuple[int, int]:
    """(width, height) in pixels of a report figure with ``image_rows`` rows of example crops and
    bar charts of ``bar_methods`` methods."""
    height = TITLE_INCHES + image_rows * PANEL_INCHES + bar_inches(bar_methods)
    return int(round(4 * PANEL_INCHES * DPI)), int(round(max(height, TITLE_INCHES + 1.0) * DPI))


def _show(ax, image: np.ndarray | None, title: str | None, ylabel: str | None) -> None:
    if image is not None:
        ax.imshow(image, interpolation="nearest")
    else:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", fontsize=8, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=10, fontweight="bold")


def _histogram(ax, histogram: dict | None, first: bool) -> None:
    if histogram is None:
        ax.axis("off")
        return
    noise = histogram["noise"]
    ax.fill_between(noise, histogram["real"], step="mid", color="0.65", label="real")
    ax.step(noise, histogram["synthetic"], where="mid", color="tab:red", linewidth=1.4, label="synthetic")
    both = np.maximum(histogram["real"], histogram["synthetic"])
    support = noise[both > both.max() * 1e-3]
    span = max(int(np.abs(support).max()) + 2, 5) if len(support) else 40
    ax.set_xlim(-span, span)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.set_xlabel("noise (grey levels)", fontsize=8)
    if first:
        ax.set_title("noise histogram", fontsize=10)
        ax.legend(fontsize=7, loc="upper right", frameon=False)


def _bars(ax, names: list[str], values: list[float | None], title: str, fmt: str, lower_better: bool) -> None:
    # a non-finite value (the infinite PSNR of identical images) has no bar; the table shows it
    present = [(n, v) for n, v in zip(names, values, strict=True) if v is not None and np.isfinite(v)]
    if not present:
        ax.axis("off")
        return
    labels, lengths = zip(*present, strict=True)
    best = (min if lower_better else max)(lengths)
    colours = ["tab:green" if v == best else "tab:blue" for v in lengths]
    positions = np.arange(len(labels))[::-1]  # first method on top
    ax.barh(positions, lengths, color=colours, height=0.7)
    low, high = min(lengths), max(lengths)
    margin = (high - low) * 0.3 or abs(high) * 0.05 or 1.0
    ax.set_xlim(0.0 if lower_better else max(0.0, low - margin), high + margin)
    for y, v in zip(positions, lengths, strict=True):
        ax.text(v, y, " " + format(v, fmt), ha="left", va="center", fontsize=8)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_title(f"{title} ({'lower' if lower_better else 'higher'} is better)", fontsize=10)
    ax.tick_params(axis="x", labelsize=7)


def report_figure(path: str | Path, methods: list[dict], title: str) -> tuple[int, int]:
    """Write the PNG; ``methods`` are dicts with ``name``, optional ``examples`` ({panel: H x W x 3
    array}), ``histogram`` ({noise, real, synthetic} arrays) and ``metrics``. Returns its size."""
    image_rows = [m for m in methods if m.get("examples")]
    downstream = [m for m in methods if "test/psnr" in m["metrics"]]
    width, height = figure_size(len(image_rows), len(downstream))
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ratios = [PANEL_INCHES] * len(image_rows) + ([bar_inches(len(downstream))] if downstream else [])
    grid = fig.add_gridspec(max(len(ratios), 1), 1, height_ratios=ratios or [1.0],
                            top=1 - TITLE_INCHES / (height / DPI), bottom=0.3 / (height / DPI), left=0.12,
                            right=0.97, hspace=0.35)
    for r, method in enumerate(image_rows):
        cells = grid[r].subgridspec(1, 4, wspace=0.08)
        examples = method["examples"]
        panels = DEGRADER_PANELS if "synthetic" in examples else RESTORER_PANELS
        for c, (key, label) in enumerate(panels):
            _show(fig.add_subplot(cells[c]), examples.get(key), label if r == 0 or panels is RESTORER_PANELS else None,
                  method["name"] if c == 0 else None)
        _histogram(fig.add_subplot(cells[3]), method.get("histogram"), r == 0)
    if downstream:
        cells = grid[len(image_rows)].subgridspec(1, 2, wspace=0.6)
        names = [m["name"] for m in downstream]
        _bars(fig.add_subplot(cells[0]), names, [m["metrics"].get("test/psnr") for m in downstream],
              "downstream PSNR (dB)", ".2f", lower_better=False)
        _bars(fig.add_subplot(cells[1]), names, [m["metrics"].get("test/lpips") for m in downstream],
              "downstream LPIPS", ".3f", lower_better=True)
    if not image_rows and not downstream:
        fig.text(0.5, 0.5, "no examples or downstream scores in these runs", ha="center", va="center")
    fig.suptitle(title, fontsize=12, y=1 - 0.15 * TITLE_INCHES / (height / DPI), va="top")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return width, height
