"""The LUD-VAE paper's full loop on a builtin dataset (Table 3 layout), run through the CLI.

``--data builtin`` (camera noise) or ``builtin_phone`` (blur, read noise and JPEG q60; data/builtin.py).

1. train LUD-VAE on the dataset's unpaired folders: clean ``source`` vs degraded ``target`` (other photos;
   never paired), with the CPU preset (experiment=ludvae_cpu) and the pre-noise levels set from the noise
   the blind estimator reads in the target folder (``model.noise_level_*=auto``: nothing known about it);
   it validates without pairs (``data.test=null``: best.ckpt by the blind noise reading of its synthetic
   images against the target folder's), so no test pair chooses or tunes the model;
2. judge it as a degrader on the held-out real test pairs (KLD, AKLD, noise std), next to AWGN;
   LUD-VAE four times: at its training pre-noise sigma_x, with the inference pre-noise drawn per image
   from U(sigma_x, 2 sigma_x) (the paper widens it at inference too: SIDD trains at 40 and samples
   at U(30, 70)), at the pre-noise calibrated on the target folder when training ended (no pair used),
   and the calibrated one keeping the clean image's low frequencies (``degrader.lowpass_sigma``,
   ``--lowpass-sigma``: only the model's residual above a Gaussian of that std reaches the pairs);
   DeFlow (experiment=deflow_cpu) trained on the same unpaired folders the same way (``data.test=null``, T
   calibrated on the target folder when training ended; ``--no-deflow`` leaves it out, ``--deflow-run`` reuses one);
3. synthesize training pairs from the clean source images with AWGN sigma ~ U[5, 50], the two calibrated
   LUD-VAE variants and DeFlow (the other LUD-VAE rows are judged only: ``--all-rows`` trains on them too);
4. train the CPU-sized DnCNN on each, and on the true pairs (the oracle, upper bound), once per seed of
   ``--seeds``;
5. evaluate every DnCNN on the held-out real test pairs and print one table: PSNR / SSIM as mean ± std over
   the seeds, and each row against AWGN: ``win`` only when the means differ by more than the two stds together.

Writes results.md / results.json in logs/pipeline_ludvae/<time>/ and prints that folder last.
Usage: python experiments/ludvae_pipeline.py [--data builtin|builtin_phone] [--seeds 0,1,2] [--ludvae-steps N]
       [--steps N] [--samples K] [--lowpass-sigma S] [--all-rows] [--ludvae-run RUN] [--ludvae-args ARG ...]
       [--deflow-run RUN | --no-deflow]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import yaml
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

AWGN = "AWGN sigma ~ U[5, 50]"
CALIBRATED = "LUD-VAE (unpaired), calibrated pre-noise"
DEFLOW = "DeFlow (unpaired), calibrated T"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ludvae-steps", type=int, default=None, help="LUD-VAE steps (default: the preset's)")
    parser.add_argument("--steps", type=int, default=800, help="training steps per DnCNN")
    parser.add_argument("--samples", type=int, default=4, help="synthetic versions per clean image")
    parser.add_argument("--data", default="builtin", choices=["builtin", "builtin_phone"], help="builtin dataset")
    parser.add_argument("--seed", type=int, default=0, help="seed of LUD-VAE's training and of the synthesis")
    parser.add_argument("--seeds", default="0,1,2", help="DnCNN training seeds (comma-separated)")
    parser.add_argument("--lowpass-sigma", type=float, default=3.0,
                        help="the content-keeping row's degrader.lowpass_sigma (pixels)")
    parser.add_argument("--all-rows", action="store_true", help="train DnCNNs on the uncalibrated LUD-VAE rows too")
    parser.add_argument("--ludvae-run", default=None, help="reuse this LUD-VAE training run instead of training")
    parser.add_argument("--ludvae-args", nargs="*", default=[], help="more overrides for LUD-VAE's training")
    parser.add_argument("--deflow-run", default=None, help="reuse this DeFlow training run instead of training")
    parser.add_argument("--no-deflow", action="store_true", help="leave the DeFlow row out")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    start = time.time()
    out = project_root() / "logs" / "pipeline_ludvae" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    builtin = ensure_builtin(args.data, home_dir() / "data")
    test = builtin / "test"

    # 1. the degradation model, from unpaired folders only
    if args.ludvae_run:
        ludvae_run = Path(args.ludvae_run).resolve()
    else:
        steps = [f"trainer.max_steps={args.ludvae_steps}"] if args.ludvae_steps else []
        ludvae_run = run(["train", "experiment=ludvae_cpu", f"data={args.data}", "data.test=null",
                          "model.noise_level_clean=auto",
                          "model.noise_level_degraded=auto", f"seed={args.seed}", "callbacks.progress.refresh_rate=0",
                          *steps, *args.ludvae_args])
    ckpt = ludvae_run / "checkpoints" / "best.ckpt"
    sigma_x = float(yaml.safe_load((ludvae_run / "config.yaml").read_text())["model"]["noise_level_clean"])
    degraders = {
        AWGN: ["degrader=awgn", "degrader.sigma=[5,50]"],
        f"LUD-VAE (unpaired), pre-noise {sigma_x:g}":
            ["degrader=ludvae", f"degrader.ckpt={ckpt}", f"degrader.noise_level={sigma_x}"],
        f"LUD-VAE (unpaired), pre-noise U({sigma_x:g}, {2 * sigma_x:g})":
            ["degrader=ludvae", f"degrader.ckpt={ckpt}", f"degrader.noise_level=[{sigma_x},{2 * sigma_x}]"],
        # train ended by calibrating the pre-noise to the target folder's noise (no pair used): the default
        CALIBRATED: ["degrader=ludvae", f"degrader.ckpt={ckpt}"],
        f"{CALIBRATED}, lowpass_sigma {args.lowpass_sigma:g}":
            ["degrader=ludvae", f"degrader.ckpt={ckpt}", f"degrader.lowpass_sigma={args.lowpass_sigma}"],
    }
    downstream = list(degraders) if args.all_rows else [AWGN, CALIBRATED, list(degraders)[-1]]
    if not args.no_deflow:  # the other unpaired model, trained on the same folders the same honest way
        deflow_run = (Path(args.deflow_run).resolve() if args.deflow_run
                      else run(["train", "experiment=deflow_cpu", f"data={args.data}", "data.test=null",
                                f"seed={args.seed}", "callbacks.progress.refresh_rate=0"]))
        degraders[DEFLOW] = ["degrader=deflow", f"degrader.ckpt={best_checkpoint(deflow_run)}"]
        downstream.append(DEFLOW)
    # 2. + 3. judge each degrader against the real test pairs, then synthesize pairs with it
    judged, judged_runs, pairs = judge_and_synthesize(degraders, test, builtin / "source", out, args.samples,
                                                      args.seed, synthesize_for=downstream)
    pairs["real pairs (oracle)"] = builtin / "paired"

    # 4. + 5. the downstream denoiser, once per seed
    identity_run = run(["evaluate", "ckpt=identity", "data=folders", f"data.test={test}", "progress=false"])
    identity = metrics_of(identity_run)
    named_runs = [("noisy input", identity_run)]
    rows = [["noisy input", "-", "-", "-", f"{identity['input/psnr']:.2f}", f"{identity['input/ssim']:.3f}", "-"]]
    results = {"input": {"psnr": identity["input/psnr"], "ssim": identity["input/ssim"]},
               "ludvae_run": str(ludvae_run), "seeds": seeds, "data": args.data}
    for name in [*degraders, "real pairs (oracle)"]:
        degradation = judged.get(name, {})
        kld, akld = degradation.get("degradation/kld"), degradation.get("degradation/akld")
        if name not in pairs:  # judged as a degrader only
            results[name] = {"degradation": degradation}
            rows.append([name, f"{kld:.3f}", f"{akld:.3f}", noise_std_cell(degradation), "-", "-", "-"])
            named_runs.append((name, judged_runs[name]))
            continue
        folder = pairs[name]
        scores = train_and_evaluate_seeds("dncnn_cpu", folder, test, args.steps, seeds)
        results[name] = {**scores, "degradation": degradation, "pairs": str(folder)}
        rows.append([name, "-" if kld is None else f"{kld:.3f}", "-" if akld is None else f"{akld:.3f}",
                     noise_std_cell(degradation), plus_minus(scores["psnr"]), plus_minus(scores["ssim"], 3),
                     "-" if name == AWGN else verdict(scores["psnr"], results[AWGN]["psnr"])])
        named_runs += [(name, Path(e)) for e in scores["eval_runs"]]
        named_runs += [(name, judged_runs[name])] if name in judged_runs else []
    figure = report_figure(out, named_runs, f"LUD-VAE pipeline: {args.data}")
    results["report"] = str(figure)

    table = markdown_table(
        ["training data for DnCNN", "KLD", "AKLD", "noise std synthetic / real", "PSNR (dB)", "SSIM", "vs AWGN"], rows
    )
    header = (f"# LUD-VAE pipeline on {args.data} (test pairs: {test})\n\n"
              f"LUD-VAE: experiment=ludvae_cpu ({ludvae_run}); DnCNN: experiment=dncnn_cpu, {args.steps} steps, "
              f"seeds {', '.join(map(str, seeds))} (PSNR / SSIM: mean ± std over them; vs AWGN: win / loss only when "
              f"the means differ by more than the two stds together); {args.samples} synthetic samples per clean "
              f"image (seed {args.seed}); {time.time() - start:.0f} s in all. KLD/AKLD: the degrader's samples vs the "
              f"real test degradation (lower is closer). FID, LPIPS and the figure: {figure}/report.md\n\n")
    report(out, header + table, results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
