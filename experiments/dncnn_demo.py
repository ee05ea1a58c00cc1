"""The demo pipeline on a builtin dataset, run through the CLI exactly as a user would.

1. build the builtin dataset (``--data builtin``: camera-degraded photos; ``builtin_phone``: blur, read noise
   and JPEG q60; disjoint source / target / test photos);
2. synthesize training pairs from the clean source images with two hand-made degraders:
   AWGN (sigma ~ U[5, 50], the usual blind-denoising baseline) and the camera pipeline with its
   parameters drawn from ranges that bracket the truth within 2x (what a user who roughly knows their camera
   would set): shot gain and read variance in [truth / 2, 2 truth], JPEG quality within 5 of the truth
   (``phone``'s blur is not modelled: the user does not know it);
3. train the CPU-sized DnCNN (experiment=dncnn_cpu) on each, and on the true pairs (oracle), once per seed
   of ``--seeds``;
4. evaluate each last checkpoint on the held-out test pairs and print one table: PSNR / SSIM / LPIPS as mean
   ± std over the seeds, and each row against the AWGN row (``win`` / ``loss`` only when the means differ by
   more than the two stds together, else ``tie``).

Writes results.md / results.json in logs/demo/<time>/ and prints that folder last.
``--precision fp32`` trains in fp32 even where the CPU has fast bf16 (``auto``, the default, uses bf16 autocast
there): how to check on one machine that the table's ordering does not depend on the precision.

Usage: python experiments/dncnn_demo.py [--data builtin|builtin_phone] [--seeds 0,1,2] [--steps N] [--samples K]
       [--precision auto|fp32]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _cli import (
    metrics_of,
    parse_seeds,
    plus_minus,
    report,
    report_figure,
    run,
    train_and_evaluate_seeds,
    verdict,
)

from degrade_lab.data.builtin import CAMERA, PHONE, ensure_builtin
from degrade_lab.paths import home_dir, project_root
from degrade_lab.resolvers import cpu_bf16_precision
from degrade_lab.tasks.common import markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800, help="training steps per DnCNN")
    parser.add_argument("--samples", type=int, default=4, help="degraded versions per clean image")
    parser.add_argument("--data", default="builtin", choices=["builtin", "builtin_phone"], help="builtin dataset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthesis")
    parser.add_argument("--seeds", default="0,1,2", help="DnCNN training seeds (comma-separated)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32"],
                        help="auto: bf16 autocast where the CPU has fast bf16, else fp32; fp32: always fp32")
    args = parser.parse_args()
    precision = cpu_bf16_precision() if args.precision == "auto" else "32-true"
    seeds = parse_seeds(args.seeds)
    start = time.time()
    out = project_root() / "logs" / "demo" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)

    builtin = ensure_builtin(args.data, home_dir() / "data")
    truth = CAMERA if args.data == "builtin" else PHONE
    print(f"builtin dataset: {builtin}", flush=True)
    training_sets = {}
    described = {
        "awgn": "synthesized: AWGN sigma ~ U[5, 50]",
        "camera": "synthesized: camera pipeline, parameters within ~2x of the truth",
        "oracle (true pairs)": "the real degradation (upper bound)",
    }
    degraders = {
        "awgn": ["degrader=awgn", "degrader.sigma=[5,50]"],
        "camera": ["degrader=camera", f"degrader.shot=[{truth['shot'] / 2:g},{truth['shot'] * 2:g}]",
                   f"degrader.read=[{truth['read'] / 2:g},{truth['read'] * 2:g}]",
                   f"degrader.quality=[{truth['quality'] - 5},{min(truth['quality'] + 5, 100)}]"],
    }
    judged = {}
    for name, settings in degraders.items():
        judged[name] = run(["evaluate", *settings, "data=folders", f"data.test={builtin / 'test'}",
                            f"seed={args.seed}", "progress=false"])
        pairs = out / f"pairs_{name}"
        run(["synthesize", *settings, f"input={builtin / 'source'}", f"output={pairs}",
             f"samples={args.samples}", f"seed={args.seed}", "progress=false"])
        training_sets[name] = pairs
    training_sets["oracle (true pairs)"] = builtin / "paired"

    test = builtin / "test"
    rows, results = [], {}
    identity = run(["evaluate", "ckpt=identity", "data=folders", f"data.test={test}", "progress=false"])
    metrics = metrics_of(identity)
    rows.append(["noisy input", "-", f"{metrics['input/psnr']:.2f}", f"{metrics['input/ssim']:.3f}",
                 f"{metrics['input/lpips']:.3f}" if "input/lpips" in metrics else "n/a", "-", "-"])
    results["input"] = {"psnr": metrics["input/psnr"], "ssim": metrics["input/ssim"], "lpips": metrics.get("input/lpips")}
    results.update(seeds=seeds, data=args.data, precision=precision)
    named_runs = [("noisy input", identity)]
    for name, pairs in training_sets.items():
        scores = train_and_evaluate_seeds("dncnn_cpu", pairs, test, args.steps, seeds, [f"trainer.precision={precision}"])
        lpips = [v for v in scores["lpips"] if v is not None]
        gain = [value - results["input"]["psnr"] for value in scores["psnr"]]
        rows.append([f"DnCNN trained on {name}", described[name], plus_minus(scores["psnr"]),
                     plus_minus(scores["ssim"], 3), plus_minus(lpips, 3) if lpips else "n/a", plus_minus(gain),
                     "-" if name == "awgn" else verdict(scores["psnr"], results["awgn"]["psnr"])])
        results[name] = {**scores, "pairs": str(pairs)}
        named_runs += [(name, Path(e)) for e in scores["eval_runs"]] + ([(name, judged[name])] if name in judged else [])
    figure = report_figure(out, named_runs, f"DnCNN demo: {args.data} test pairs")
    results["report"] = str(figure)

    table = markdown_table(["method", "training pairs", "PSNR (dB)", "SSIM", "LPIPS", "gain (dB)", "vs AWGN"], rows)
    precision_label = {"bf16-mixed": "bf16 autocast", "32-true": "fp32" + (
        ": this CPU has no fast bf16" if cpu_bf16_precision() == "32-true" else ", chosen (--precision fp32)")}[precision]
    header = (f"# DnCNN demo on the {args.data} test pairs ({test})\n\n"
              f"{args.steps} steps per DnCNN (experiment=dncnn_cpu, {precision_label}), seeds {', '.join(map(str, seeds))} "
              "(mean ± std over them; vs AWGN: win / loss only when the means differ by more than the two stds "
              f"together), {args.samples} samples per clean image (seed {args.seed}), {time.time() - start:.0f} s "
              f"in all on {os.cpu_count()} CPU cores. Figure and degrader scores (KLD, AKLD, FID): {figure}/report.md\n\n")
    report(out, header + table, results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
