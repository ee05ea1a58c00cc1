"""A pipeline's table: its rows' metrics over seeds (mean ± std), each row against the baseline row
(win / tie / loss), and the paper's own numbers beside ours.

The ``table`` section of a pipeline config::

    table:
      title: LUD-VAE Table 3 (SIDD), DnCNN trained on synthetic pairs
      columns: [degradation/kld_noiseflow, degradation/akld, test/psnr, test/ssim]
      baseline: awgn                # the row key every other row is compared with (on the first test/ column)
      rows:
        - {key: input, name: noisy input, restorer: test_input, input: true}
        - {key: awgn, name: DnCNN on AWGN pairs, degrader: judge_awgn, restorer: test_awgn,
           paper: {test/psnr: 33.42}}

``restorer`` and ``degrader`` name evaluate stages (seeded or not); ``input: true`` reads their ``input/*``
metrics (the degraded input itself) instead of ``test/*``; ``against: KEY`` compares a row with row KEY instead of
the baseline (SeNM-VAE Table 2: each count of pairs against the same count alone). ``headers`` may name columns
(``{"test/psnr@degraders.1.scale=2": "PSNR (dB) x2"}``) whose default header would be unclear.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from degrade_lab.errors import UserInputError

#: column headers of the metrics a table may show
HEADERS = {
    "test/psnr": "PSNR (dB)", "test/ssim": "SSIM", "test/lpips": "LPIPS", "degradation/kld": "KLD",
    "degradation/kld_noiseflow": "KLD (NoiseFlow)", "degradation/kl_intensity": "KL grey", "degradation/akld": "AKLD",
    "degradation/fid": "FID", "degradation/noise_std": "noise std", "degradation/psnr": "synthetic PSNR",
    "degradation/mmd": "MMD",
}


def header(key: str) -> str:
    """A column's header: ``test/psnr@sigma=10`` (a level sweep's row) -> ``PSNR (dB) sigma=10``."""
    base, _, level = key.partition("@")
    return f"{HEADERS.get(base, base)} {level}".strip()


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (divisor n - 1; 0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def plus_minus(values: list[float], digits: int = 2) -> str:
    """``"25.12 ± 0.34"`` over seeds (just the value for one seed)."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def verdict(values: list[float], baseline: list[float], higher_is_better: bool = True) -> str:
    """``win`` when the mean is better than the baseline's by more than the two standard deviations together,
    ``loss`` when worse by as much, else ``tie``: a difference inside the seeds' spread is not evidence."""
    (mean, std), (base_mean, base_std) = mean_std(values), mean_std(baseline)
    better = mean - base_mean if higher_is_better else base_mean - mean
    if better > std + base_std:
        return "win"
    if -better > std + base_std:
        return "loss"
    return "tie"


def _metrics(folder: Path) -> dict:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _values(folders: list[Path], key: str, input_side: bool) -> list[float]:
    if input_side and key.startswith("test/"):
        key = "input/" + key[5:]
    values = [_metrics(folder).get(key) for folder in folders]
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]


def _digits(key: str) -> int:
    return 2 if key.split("@")[0].endswith(("psnr", "fid", "noise_std")) else 3


def build_table(table: dict, folders_of) -> tuple[str, dict]:
    """The Markdown table and the JSON-ready results of ``table`` (see the module docstring); ``folders_of(stage)``
    gives the run folders of a stage (one per seed)."""
    from degrade_lab.tasks.common import markdown_table

    columns = list(table.get("columns") or ["test/psnr", "test/ssim", "test/lpips"])
    main = next((c for c in columns if c.startswith("test/")), columns[0])
    lower_better = {"test/lpips", "degradation/kld", "degradation/kld_noiseflow", "degradation/kl_intensity",
                    "degradation/akld", "degradation/fid", "degradation/mmd"}
    rows_in = list(table.get("rows") or [])
    values: dict[str, dict[str, list[float]]] = {}
    for row in rows_in:
        values[row["key"]] = {}
        for key in columns:
            stage = row.get("degrader") if key.startswith("degradation/") else row.get("restorer")
            values[row["key"]][key] = _values(folders_of(stage), key, bool(row.get("input"))) if stage else []
    baseline = table.get("baseline")
    has_paper = any(row.get("paper") for row in rows_in)
    names = dict(table.get("headers") or {})
    head = ["method", *(names.get(c) or header(c) for c in columns)]
    per_row = any(row.get("against") for row in rows_in)
    if baseline:
        head.append("vs its baseline row" if per_row else f"vs {next(r['name'] for r in rows_in if r['key'] == baseline)}")
    head += ["paper"] if has_paper else []
    lines, results = [], {}
    for row in rows_in:
        cells = [row["name"]]
        for key in columns:
            found = values[row["key"]][key]
            cells.append(plus_minus(found, _digits(key)) if found else "-")
        if baseline:
            against = row.get("against") or baseline
            if against not in values:
                raise UserInputError(f"table row '{row['key']}': against '{against}' is not a row of the table.")
            base = values[against][main]
            mine = values[row["key"]][main]
            if row["key"] == against or not base or not mine or row.get("input"):
                cells.append("-")
            elif min(len(base), len(mine)) < 2:  # no spread to judge a difference against
                cells.append("one seed")
            else:
                cells.append(verdict(mine, base, main not in lower_better)
                             + (f" vs {against}" if per_row else ""))
        if has_paper:
            paper = row.get("paper") or {}
            cells.append(", ".join(f"{header(k)} {v}" for k, v in paper.items()) or "-")
        lines.append(cells)
        results[row["key"]] = {"name": row["name"], **{k: v for k, v in values[row["key"]].items()},
                               "paper": dict(row.get("paper") or {})}
    return markdown_table(head, lines), results
