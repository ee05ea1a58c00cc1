"""One PNG that shows how a degrader compares with real degradation.

Per test image a row: clean | real degraded | synthetic samples (the same centre crop, nearest
up-scaled so single pixels stay visible), then the histogram of real vs synthetic noise
(``degraded - clean`` on the 0-255 scale) with the image's KLD and AKLD in the title.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from degrade_lab.data.transforms import center_crop
from degrade_lab.utils.io import atomic_write_bytes  # noqa: E402


def _crop(image: torch.Tensor, size: int) -> np.ndarray:
    crop = center_crop(image, size).clamp(0, 1)
    return crop.permute(1, 2, 0).cpu().numpy()


def degradation_sheet(
    path: str | Path, rows: list[dict], title: str, crop: int = 96, bin_width: int = 2, span: int = 60
) -> None:
    """Write the sheet. Each row: ``name``, ``clean`` (at the degraded side's resolution), ``real``,
    ``synthetic`` (K x C x H x W) and optional ``kld`` / ``akld`` values."""
    samples = max(len(r["synthetic"]) for r in rows)
    ncols = 2 + samples + 1
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.2 * ncols + 1.0, 2.3 * len(rows) + 0.6), squeeze=False)
    # bins aligned to whole grey levels: 8-bit noise takes integer values, finer bins would alias
    edges = np.arange(-span - 0.5, span + 0.5 + bin_width, bin_width)
    for r, row in enumerate(rows):
        panels = [("clean", row["clean"]), ("real degraded", row["real"])]
        panels += [(f"synthetic {k + 1}", s) for k, s in enumerate(row["synthetic"])]
        for c, (label, image) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(_crop(image, crop), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=10)
            if c == 0:
                ax.set_ylabel(row["name"], fontsize=9)
        ax = axes[r, ncols - 1]
        real_noise = ((row["real"] - row["clean"]) * 255).flatten().cpu().numpy()
        fake_noise = ((row["synthetic"] - row["clean"][None]) * 255).flatten().cpu().numpy()
        ax.hist(real_noise, bins=edges, density=True, color="0.6", label="real")
        ax.hist(fake_noise, bins=edges, density=True, histtype="step", color="tab:red", linewidth=1.5,
                label="synthetic")
        stats = []
        if "kld" in row:
            stats.append(f"KLD {row['kld']:.3f}")
        if "akld" in row:
            stats.append(f"AKLD {row['akld']:.3f}")
        ax.set_title(f"noise (0-255)  {'  '.join(stats)}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
        if r == 0:
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
