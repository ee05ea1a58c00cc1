"""Which calibration statistic lands a trained degradation model's noise closest to the real noise?

For each checkpoint and each statistic (``reading``, ``residual``, ``residual_reading``; see
``degradations/calibration.py``), a copy of the checkpoint is calibrated with ``degrade-lab calibrate
statistic=...`` on the run's own clean and degraded images (no pair used), then judged with ``degrade-lab evaluate
degrader=...`` on real test pairs, which synthesis scores at the stored value: the synthetic noise std against
the real one (the truth the calibration never saw), KLD and AKLD. Prints a Markdown table and writes
results.md / results.json in logs/bench_calibration_statistics/<time>/.

Usage: python benchmarks/bench_calibration_statistics.py DEGRADER=CKPT [DEGRADER=CKPT ...] --test DIR
       [--statistics reading,residual,residual_reading] [--option DEGRADER:KEY=VALUE ...]
DEGRADER is the degrader's config name (ludvae, senmvae, deflow); DIR holds clean/ and degraded/ test pairs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_cli.py

from _cli import metrics_of, report, run  # noqa: E402

from degrade_lab.paths import project_root  # noqa: E402
from degrade_lab.tasks.common import markdown_table  # noqa: E402

STATISTICS = "reading,residual,residual_reading"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="DEGRADER=CKPT")
    parser.add_argument("--test", required=True, help="folder of clean/ and degraded/ test pairs")
    parser.add_argument("--statistics", default=STATISTICS)
    parser.add_argument("--option", action="append", default=[],
                        help="DEGRADER:KEY=VALUE, an extra degrader override for evaluate (e.g. senmvae:level=paired)")
    args = parser.parse_args()
    out = project_root() / "logs" / "bench_calibration_statistics" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, list[str]] = {}
    for option in args.option:
        name, _, override = option.partition(":")
        extra.setdefault(name, []).append(f"degrader.{override}")
    rows, results = [], []
    for entry in args.checkpoints:
        name, _, ckpt = entry.partition("=")
        if not ckpt or not Path(ckpt).is_file():
            raise SystemExit(f"{entry!r}: expected DEGRADER=CKPT with an existing checkpoint file")
        for statistic in args.statistics.split(","):
            copy = out / f"{name}_{statistic}.ckpt"
            shutil.copyfile(ckpt, copy)
            started = time.time()
            calibrated = run(["calibrate", f"ckpt={copy}", f"statistic={statistic}", "progress=false"])
            record = json.loads((calibrated / "calibration.json").read_text())
            seconds = time.time() - started
            judged = metrics_of(run(["evaluate", f"degrader={name}", f"degrader.ckpt={copy}", *extra.get(name, []),
                                     "data=folders", f"data.test={args.test}", "metrics.fid=false",
                                     "progress=false"]))
            synthetic, real = judged["degradation/noise_std"], judged["input/noise_std"]
            results.append({"degrader": name, "ckpt": ckpt, "statistic": statistic, "calibration": record,
                            "metrics": judged, "calibration_seconds": round(seconds, 1)})
            rows.append([name, statistic, f"{record['value']:g}" + (" (edge)" if record["at_edge"] else ""),
                         f"{record['noise_std_synthetic']:.1f} / {record['noise_std_target']:.1f}",
                         f"{synthetic:.1f} / {real:.1f}", f"{100 * (synthetic / real - 1):+.0f} %",
                         f"{judged['degradation/kld']:.3f}", f"{judged['degradation/akld']:.3f}", f"{seconds:.0f}"])
    text = ("# Calibration statistics on trained models\n\n"
            + markdown_table(["degrader", "statistic", "calibrated value", "matched: synthetic / target",
                              "noise std on the test pairs: synthetic / real", "error", "KLD", "AKLD",
                              "calibration (s)"], rows)
            + f"\nTest pairs: `{args.test}`.\n")
    report(out, text, {"rows": results, "test": args.test})


if __name__ == "__main__":
    main()
