"""DeFlow's loop for real-world x4 super-resolution on ``builtin_sr`` (DeFlow Tables 1-2 layout), run through the CLI.

``builtin_sr``: the builtin photos, shrunk x4 with MATLAB bicubic before the camera noise (data/builtin.py); clean
HR ``source`` images and degraded LR ``target`` images of other scenes, never paired; test pairs held out.

1. train DeFlow on the unpaired folders, the flow modelling the LR images given their conditioning: the clean
   side shrunk x4 by T (``degrader@model.clean_operator=bicubic``), the degraded side as it is
   (experiment=deflow_cpu, 128-px HR crops, ``data.test=null``: best.ckpt by the blind noise match, T calibrated on
   the target folder when training ended; no pair used);
2. judge it as a degrader on the held-out test pairs (KLD, AKLD, noise std; HR clean -> LR degraded), next to
   bicubic alone (the "no degradation model" baseline of the paper's tables);
3. synthesize LR/HR training pairs from the clean HR source images with each (``--samples`` per image);
4. train the CPU-sized RRDBNet x4 (experiment=rrdbnet_cpu) on each and on the true pairs (the oracle), once per
   seed of ``--seeds``;
5. evaluate every RRDBNet's last checkpoint on the test pairs and print one table (mean ± std over the seeds; each
   row against bicubic-only pairs: ``win`` / ``loss`` only when the means differ by more than the two stds).

Writes results.md / results.json in logs/pipeline_deflow/<time>/ and prints that folder last.
Usage: python experiments/deflow_pipeline.py [--seeds 0,1,2] [--deflow-steps N] [--steps N] [--samples K]
       [--deflow-run RUN]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _cli import (
    best_checkpoint,
    judge_and_synthesize,
    noise_std_cell,
    parse_seeds,
    plus_minus,
    report,
    report_figure,
    run,
    train_and_evaluate_seeds,
    verdict,
)

from degrade_lab.data.builtin import ensure_builtin
from degrade_lab.paths import home_dir, project_root
from degrade_lab.tasks.common import markdown_table

BICUBIC = "bicubic x4 only (no degradation model)"
DEFLOW = "DeFlow (unpaired), calibrated T"
ORACLE = "real pairs (oracle)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deflow-steps", type=int, default=None, help="DeFlow steps (default: the preset's)")
    parser.add_argument("--steps", type=int, default=800, help="training steps per RRDBNet")
    parser.add_argument("--samples", type=int, default=4, help="synthetic versions per clean image")
    parser.add_argument("--seed", type=int, default=0, help="seed of DeFlow's training and of the synthesis")
    parser.add_argument("--seeds", default="0,1,2", help="RRDBNet training seeds (comma-separated)")
    parser.add_argument("--deflow-run", default=None, help="reuse this DeFlow training run instead of training")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    start = time.time()
    out = project_root() / "logs" / "pipeline_deflow" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    data = ensure_builtin("builtin_sr", home_dir() / "data")
    test = data / "test"

    # 1. the degradation model, from unpaired folders only
    steps = [f"trainer.max_steps={args.deflow_steps}"] if args.deflow_steps else []
    deflow_run = (Path(args.deflow_run).resolve() if args.deflow_run
                  else run(["train", "experiment=deflow_cpu", "data=builtin_sr", "data.crop_size=128", "data.test=null",
                            "degrader@model.clean_operator=bicubic", f"seed={args.seed}",
                            "callbacks.progress.refresh_rate=0", *steps]))
    degraders = {
        BICUBIC: ["degrader=bicubic"],
        DEFLOW: ["degrader=deflow", f"degrader.ckpt={best_checkpoint(deflow_run)}"],
    }
    # 2. + 3. judge each degrader against the real test pairs, then synthesize LR/HR pairs with it
    judged, judged_runs, pairs = judge_and_synthesize(degraders, test, data / "source", out, args.samples, args.seed,
                                                      evaluate_extra=["data.scale=4"])
    pairs[ORACLE] = data / "paired"

    # 4. + 5. the downstream SR network, once per seed
    rows, results, named_runs = [], {"deflow_run": str(deflow_run), "seeds": seeds}, []
    for name, folder in pairs.items():
        degradation = judged.get(name, {})
        scores = train_and_evaluate_seeds("rrdbnet_cpu", folder, test, args.steps, seeds, ["data.scale=4"])
        results[name] = {**scores, "degradation": degradation, "pairs": str(folder)}
        kld, akld = degradation.get("degradation/kld"), degradation.get("degradation/akld")
        rows.append([name, "-" if kld is None else f"{kld:.3f}", "-" if akld is None else f"{akld:.3f}",
                     noise_std_cell(degradation), plus_minus(scores["psnr"]), plus_minus(scores["ssim"], 3),
                     "-" if name == BICUBIC else verdict(scores["psnr"], results[BICUBIC]["psnr"])])
        named_runs += [(name, Path(e)) for e in scores["eval_runs"]]
        named_runs += [(name, judged_runs[name])] if name in judged_runs else []
    figure = report_figure(out, named_runs, "DeFlow pipeline: builtin_sr")
    results["report"] = str(figure)
    table = markdown_table(["training data for RRDBNet x4", "KLD", "AKLD", "noise std synthetic / real", "PSNR (dB)",
                            "SSIM", "vs bicubic only"], rows)
    header = (f"# DeFlow pipeline on builtin_sr (test pairs: {test})\n\n"
              f"DeFlow: experiment=deflow_cpu ({deflow_run}); RRDBNet x4: experiment=rrdbnet_cpu, {args.steps} steps, "
              f"seeds {', '.join(map(str, seeds))} (mean ± std; win / loss only when the means differ by more than the "
              f"two stds together); {args.samples} synthetic samples per clean image (seed {args.seed}); "
              f"{time.time() - start:.0f} s in all. KLD/AKLD: the degrader's LR samples vs the real LR test images. "
              f"FID, LPIPS and the figure: {figure}/report.md\n\n")
    report(out, header + table, results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
