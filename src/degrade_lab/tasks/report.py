"""``degrade-lab report [NAME=]RUN_DIR ...``: evaluate runs -> one table (Markdown + CSV) and one figure.

Each argument is an ``evaluate`` run folder, or a folder holding several (found recursively). Runs
given the same ``NAME`` form one row: a degrader's evaluation (KLD, AKLD, FID) next to the evaluation
of the restorer trained on its pairs (PSNR, SSIM, LPIPS), as the papers' tables put them. Unnamed runs
are named after their degrader, or their checkpoint's run folder.

Layouts choose the columns: ``ludvae`` (LUD-VAE Tables 1-3: NoiseFlow's KLD, AKLD, PSNR, SSIM, LPIPS),
``senmvae`` (SeNM-VAE Table 1: FID, its grey-level KL, PSNR), ``all`` (every metric any run has; the default). The weights
behind LPIPS / FID are listed under the table; a metric a run could not compute shows as n/a.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from degrade_lab.errors import UserInputError
from degrade_lab.paths import project_root
from degrade_lab.plots.report_figure import report_figure
from degrade_lab.tasks.common import markdown_table
from degrade_lab.utils.io import atomic_write_text, read_image

# key, column header, lower is better
COLUMNS = {
    "degradation/fid": ("FID", True),
    "degradation/kld": ("KLD", True),
    "degradation/kld_noiseflow": ("KLD (NoiseFlow)", True),
    "degradation/kl_intensity": ("KL grey levels", True),
    "degradation/akld": ("AKLD", True),
    "degradation/noise_std": ("noise std", None),
    "degradation/residual_lowpass_std": ("residual low-pass std", None),
    "degradation/residual_highpass_std": ("residual high-pass std", None),
    "test/psnr": ("PSNR (dB)", False),
    "test/ssim": ("SSIM", False),
    "test/lpips": ("LPIPS", True),
}
LAYOUTS = {
    "all": list(COLUMNS),
    # the papers' own definitions: LUD-VAE Table 2 reports NoiseFlow's KLD, SeNM-VAE Table 1 its grey-level KL
    "ludvae": ["degradation/kld_noiseflow", "degradation/akld", "test/psnr", "test/ssim", "test/lpips"],
    "senmvae": ["degradation/fid", "degradation/kl_intensity", "test/psnr"],
}


def find_runs(path: Path) -> list[Path]:
    """Evaluate run folders at or under ``path`` (folders with metrics.json and config.yaml)."""
    if not path.exists():
        raise UserInputError(f"run folder '{path}' does not exist.")
    if (path / "metrics.json").is_file():
        return [path]
    runs = sorted(p.parent for p in path.rglob("metrics.json") if (p.parent / "config.yaml").is_file())
    if not runs:
        raise UserInputError(f"'{path}' holds no evaluate runs (no metrics.json found under it); "
                             "run `degrade-lab evaluate ...` first and pass its run folder.")
    return runs


def _default_name(run: Path) -> str:
    config = OmegaConf.load(run / "config.yaml") if (run / "config.yaml").is_file() else OmegaConf.create()
    degrader = config.get("degrader")
    if degrader:
        if degrader.get("ckpt"):
            return f"{Path(str(degrader.ckpt)).parents[1].name} (learned)"
        return str(degrader.get("_target_", "degrader")).rsplit(".", 1)[-1]
    ckpt = config.get("ckpt")
    if ckpt is None or str(ckpt) == "identity":
        return "degraded input"
    ckpt = Path(str(ckpt))
    return ckpt.parents[1].name if len(ckpt.parents) > 1 else ckpt.stem


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserInputError(f"cannot read '{path}': {err}") from err


def _examples(run: Path) -> dict:
    folder = run / "examples"
    if not folder.is_dir():
        return {}
    return {p.stem: read_image(p).permute(1, 2, 0).numpy() for p in sorted(folder.glob("*.png"))}


def _histogram(run: Path) -> dict | None:
    path = run / "noise_histogram.csv"
    if not path.is_file():
        return None
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return {key: np.array([float(r[key]) for r in rows]) for key in ("noise", "real", "synthetic")}


def collect(specs: list[str]) -> list[dict]:
    """``[NAME=]PATH`` arguments -> methods (in the order first named) with merged metrics."""
    methods: dict[str, dict] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        for run in find_runs(Path(path).expanduser()):
            metrics = _read_json(run / "metrics.json")
            label = name or _default_name(run)
            method = methods.setdefault(label, {"name": label, "metrics": {}, "labels": {}, "unavailable": {},
                                                "runs": [], "examples": {}, "histogram": None})
            method["runs"].append(str(run))
            method["labels"].update(metrics.pop("labels", {}) or {})
            method["unavailable"].update(metrics.pop("unavailable", {}) or {})
            method["metrics"].update({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
            for key, value in (metrics.get("non_finite") or {}).items():  # strict JSON holds them as null
                method["metrics"][key] = float(str(value).split()[0])
            identity = str(OmegaConf.load(run / "config.yaml").get("ckpt")) == "identity"
            examples = {} if identity else _examples(run)  # restored == degraded: nothing to show
            if "synthetic" in examples or not method["examples"]:
                method["examples"] = examples or method["examples"]
            method["histogram"] = _histogram(run) or method["histogram"]
    return list(methods.values())


def tables(methods: list[dict], layout: str) -> tuple[str, list[dict], list[str]]:
    """The Markdown table, the CSV rows and the keys shown (columns no run has are dropped)."""
    keys = [k for k in LAYOUTS[layout] if any(k in m["metrics"] or k in m["unavailable"] for m in methods)]
    header = ["method"] + [COLUMNS[k][0] + {True: " ↓", False: " ↑", None: ""}[COLUMNS[k][1]] for k in keys]
    best = {}
    for key in keys:
        values = [m["metrics"][key] for m in methods if key in m["metrics"] and m["name"] != "degraded input"]
        if values and COLUMNS[key][1] is not None and len(values) > 1:
            best[key] = (min if COLUMNS[key][1] else max)(values)
    rows, csv_rows = [], []
    for method in methods:
        row = [method["name"]]
        for key in keys:
            value = method["metrics"].get(key)
            if value is None:
                row.append("n/a" if key in method["unavailable"] else "-")
            else:
                text = f"{value:.2f}" if key in ("test/psnr", "degradation/fid", "degradation/noise_std") else f"{value:.4f}"
                row.append(f"**{text}**" if best.get(key) == value else text)
        rows.append(row)
        csv_rows.append({"method": method["name"], **{k: method["metrics"].get(k, "") for k in keys},
                         "runs": " ".join(method["runs"])})
    return markdown_table(header, rows), csv_rows, keys


def write_report(methods: list[dict], out: Path, layout: str = "all", title: str = "degrade_lab report") -> dict:
    if layout not in LAYOUTS:
        raise UserInputError(f"unknown layout '{layout}': choose from {', '.join(LAYOUTS)}.")
    table, csv_rows, keys = tables(methods, layout)
    notes = sorted({f"- {key}: {label}" for m in methods for key, label in m["labels"].items()})
    missing = [f"- {m['name']}: {key} unavailable ({reason})" for m in methods for key, reason in m["unavailable"].items()]
    sources = [f"- {m['name']}: " + ", ".join(f"`{r}`" for r in m["runs"]) for m in methods]
    text = (f"# {title}\n\n{table}\nBest value per column in bold (the degraded input excluded).\n\n"
            + ("Weights:\n\n" + "\n".join(notes) + "\n\n" if notes else "")
            + ("Unavailable:\n\n" + "\n".join(missing) + "\n\n" if missing else "")
            + "Runs:\n\n" + "\n".join(sources) + "\n\n![report](report.png)\n")
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["method", *keys, "runs"])
    writer.writeheader()
    writer.writerows(csv_rows)
    atomic_write_text(out / "report.csv", buffer.getvalue())
    atomic_write_text(out / "report.md", text)
    size = report_figure(out / "report.png", methods, title)
    return {"table": table, "markdown": text, "size": size, "keys": keys}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="degrade-lab report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="[NAME=]RUN_DIR", help="evaluate run folders")
    parser.add_argument("--out", help="output folder (default: logs/report/<time>)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="all")
    parser.add_argument("--title", default="degrade_lab report")
    args = parser.parse_args(argv)
    out = Path(args.out).expanduser() if args.out else (
        project_root() / "logs" / "report" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    try:
        result = write_report(collect(args.runs), out, args.layout, args.title)
    except UserInputError as err:
        print(f"degrade-lab report: error: {err}", file=sys.stderr)
        return 2
    print(result["table"])
    print(out)
    return 0
