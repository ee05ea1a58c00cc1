"""The SeNM-VAE paper's loop on a builtin semi-supervised dataset (Tables 1 and 2), run through the CLI.

Data (``--data``): ``builtin_semi`` (camera noise) or ``builtin_phone_semi`` (blur, read noise, JPEG q60), the
builtin photos cut into 76 degraded 128x128 pairs and split as the paper splits SIDD: 10 true pairs, 33
clean-only (source) and 33 degraded-only (target) tiles.

1. train SeNM-VAE on the three domains (experiment=senmvae_cpu), semi-supervised DeFlow on the same three
   (experiment=deflow_cpu model.pairs=true: the pairs through eq. 5; ``--rows`` chooses the rows) and LUD-VAE
   on the same images without their pairing (experiment=ludvae_cpu, pre-noise from the target folder's blind
   noise reading), each about 15 CPU minutes; none sees the test pairs (``data.test=null``: no test pair
   chooses a checkpoint);
2. judge each as a degrader on the held-out real test pairs (KLD, AKLD, FID), next to AWGN;
   SeNM-VAE draws its level from the range of the training pairs (``degrader.level=paired``; a second row keeps
   the clean low frequencies, ``degrader.lowpass_sigma=3``, against its colour shift), LUD-VAE and
   DeFlow the value ``train`` calibrated when it ended, on the split's clean and degraded images as two unpaired
   domains (no pair used);
3. synthesize pairs from the clean source tiles with each (``--samples`` per tile);
4. train the CPU-sized DRUNet (experiment=drunet_cpu) on the synthetic pairs plus the 10 real pairs, on
   the 10 real pairs alone (Table 2's "DRUNet with N pairs" row), and on all 76 true pairs (oracle), once per
   seed of ``--seeds``;
5. evaluate every DRUNet's last checkpoint on the test pairs and print one table (mean ± std over the seeds;
   each row against "10 real pairs alone": ``win`` / ``loss`` only when the means differ by more than the two
   stds together) and ``report/`` with the figure.

Writes results.md / results.json in logs/pipeline_senmvae/<time>/ and prints that folder last.
Usage: python experiments/senmvae_pipeline.py [--data builtin_semi|builtin_phone_semi] [--seeds 0,1,2]
       [--model-steps N] [--steps N] [--samples K] [--senmvae-run RUN] [--ludvae-run RUN] [--deflow-run RUN]
       [--rows awgn,ludvae,senmvae,senmvae-lowpass,deflow]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _cli import (
    best_checkpoint,
    judge_and_synthesize,
    metrics_of,
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

ALONE = "10 real pairs alone"
AWGN = "AWGN sigma ~ U(5, 50)"
ROWS = ("awgn", "ludvae", "senmvae", "senmvae-lowpass", "deflow")


def parse_rows(text: str) -> list[str]:
    """``"awgn,deflow"`` -> ``["awgn", "deflow"]``, each one of :data:`ROWS`."""
    rows = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [row for row in rows if row not in ROWS]
    if unknown or not rows:
        raise SystemExit(f"--rows takes a comma-separated subset of {', '.join(ROWS)}, got {text!r}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-steps", type=int, default=None, help="SeNM-VAE / LUD-VAE steps (default: presets')")
    parser.add_argument("--steps", type=int, default=800, help="training steps per DRUNet")
    parser.add_argument("--samples", type=int, default=4, help="synthetic versions per clean tile")
    parser.add_argument("--data", default="builtin_semi", choices=["builtin_semi", "builtin_phone_semi"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradation models and of the synthesis")
    parser.add_argument("--seeds", default="0,1,2", help="DRUNet training seeds (comma-separated)")
    parser.add_argument("--senmvae-run", default=None, help="reuse this SeNM-VAE training run")
    parser.add_argument("--ludvae-run", default=None, help="reuse this LUD-VAE training run (trained on builtin_semi)")
    parser.add_argument("--deflow-run", default=None, help="reuse this semi-supervised DeFlow training run")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"the degrader rows to run, comma-separated (default: all of {', '.join(ROWS)}); "
                             "the 10-pairs-alone and oracle rows always run")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    start = time.time()
    out = project_root() / "logs" / "pipeline_senmvae" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    data = ensure_builtin(args.data, home_dir() / "data")
    test, real_pairs = data / "test", data / "paired"
    steps = [f"trainer.max_steps={args.model_steps}"] if args.model_steps else []

    # 1. the degradation models: semi-supervised, and unpaired on the same images
    rows = set(parse_rows(args.rows))
    common = [f"data={args.data}", "data.test=null", f"seed={args.seed}", "callbacks.progress.refresh_rate=0", *steps]
    senmvae_run = ludvae_run = deflow_run = None
    if rows & {"senmvae", "senmvae-lowpass"}:
        senmvae_run = (Path(args.senmvae_run).resolve() if args.senmvae_run
                       else run(["train", "experiment=senmvae_cpu", *common]))
    if "ludvae" in rows:
        ludvae_run = (Path(args.ludvae_run).resolve() if args.ludvae_run
                      else run(["train", "experiment=ludvae_cpu", "model.noise_level_clean=auto",
                                "model.noise_level_degraded=auto", *common]))
    if "deflow" in rows:  # the other semi-supervised model, on the same three domains
        deflow_run = (Path(args.deflow_run).resolve() if args.deflow_run
                      else run(["train", "experiment=deflow_cpu", "model.pairs=true", *common]))
    degraders = {}  # AWGN first: the later rows are compared with it
    if "awgn" in rows:
        degraders[AWGN] = ["degrader=awgn", "degrader.sigma=[5,50]"]
    if ludvae_run:
        degraders["LUD-VAE (unpaired)"] = ["degrader=ludvae", f"degrader.ckpt={best_checkpoint(ludvae_run)}"]
    senmvae = (["degrader=senmvae", f"degrader.ckpt={best_checkpoint(senmvae_run)}", "degrader.level=paired"]
               if senmvae_run else [])
    if "senmvae" in rows:
        degraders["SeNM-VAE (10 pairs)"] = senmvae
    if "senmvae-lowpass" in rows:  # its decoder's rendering shifts colours (docs/results.md): keep the clean lows
        degraders["SeNM-VAE (10 pairs), lowpass 3"] = [*senmvae, "degrader.lowpass_sigma=3"]
    if deflow_run:
        degraders["DeFlow (10 pairs, eq. 5)"] = ["degrader=deflow", f"degrader.ckpt={best_checkpoint(deflow_run)}"]

    # 2. + 3. judge each degrader against the real test pairs, then synthesize pairs from the source tiles
    judged, judged_runs, pairs = judge_and_synthesize(degraders, test, data / "source", out, args.samples, args.seed)
    training_sets = {f"{name} + 10 real pairs": [folder, real_pairs] for name, folder in pairs.items()}
    training_sets = {ALONE: [real_pairs], **training_sets,
                     "all 76 true pairs (oracle)": [data / "all"]}

    # 4. + 5. the downstream denoiser, once per seed
    identity_run = run(["evaluate", "ckpt=identity", "data=folders", f"data.test={test}", "progress=false"])
    identity = metrics_of(identity_run)
    named_runs = [("noisy input", identity_run)]
    rows = [["noisy input", "-", "-", "-", "-", f"{identity['input/psnr']:.2f}", f"{identity['input/ssim']:.3f}",
             f"{identity['input/lpips']:.3f}" if "input/lpips" in identity else "n/a", "-", "-"]]
    results = {"input": {"psnr": identity["input/psnr"], "ssim": identity["input/ssim"]}, "data": args.data,
               "seeds": seeds, **{f"{model}_run": str(path) if path else None for model, path in
                                  (("senmvae", senmvae_run), ("ludvae", ludvae_run), ("deflow", deflow_run))}}

    def number(value, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    with_awgn = f"{AWGN} + 10 real pairs"
    for name, folders in training_sets.items():
        scores = train_and_evaluate_seeds("drunet_cpu", folders, test, args.steps, seeds, ["data.val_crop=128"])
        degrader = name.removesuffix(" + 10 real pairs")  # the name it was judged under, if it is a degrader's row
        degradation = judged.get(degrader, {})
        lpips = [v for v in scores["lpips"] if v is not None]
        rows.append([name, number(degradation.get("degradation/kld"), 3), number(degradation.get("degradation/akld"), 3),
                     number(degradation.get("degradation/fid"), 1),
                     noise_std_cell(degradation), plus_minus(scores["psnr"]), plus_minus(scores["ssim"], 3),
                     plus_minus(lpips, 3) if lpips else "n/a",
                     "-" if name == ALONE else verdict(scores["psnr"], results[ALONE]["psnr"]),
                     "-" if name.startswith((ALONE, AWGN)) or with_awgn not in results
                     else verdict(scores["psnr"], results[with_awgn]["psnr"])])
        results[name] = {**scores, "degradation": degradation, "pairs": [str(f) for f in folders]}
        named_runs += [(name, Path(e)) for e in scores["eval_runs"]]
        named_runs += [(name, judged_runs[degrader])] if degrader in judged_runs else []
    figure = report_figure(out, named_runs, f"SeNM-VAE pipeline: {args.data}, 10 pairs")
    results["report"] = str(figure)

    table = markdown_table(["training data for DRUNet", "KLD", "AKLD", "FID", "noise std synthetic / real",
                            "PSNR (dB)", "SSIM", "LPIPS", "vs 10 pairs alone", "vs AWGN + 10 pairs"], rows)
    header = (f"# SeNM-VAE pipeline on {args.data} (test pairs: {test})\n\n"
              f"SeNM-VAE: {senmvae_run or 'left out'}; LUD-VAE: {ludvae_run or 'left out'}; "
              f"DeFlow: {deflow_run or 'left out'}; DRUNet: experiment=drunet_cpu, {args.steps} steps, "
              f"seeds {', '.join(map(str, seeds))} (mean ± std over them; win / loss only when the means differ by "
              f"more than the two stds together); {args.samples} synthetic samples per clean tile (seed {args.seed}); "
              f"{time.time() - start:.0f} s in all. KLD / AKLD / FID: the degrader's samples vs the real test "
              f"degradation (lower is closer). Figure: {figure}/report.md\n\n")
    report(out, header + table, results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
