"""Truth recovery: can the CPU preset of a learned degradation model learn a degradation whose answer is known?

The target domain is the builtin held-out photos degraded by AWGN of a known sigma (default 25,
clipped to [0, 1] and saved as 8-bit PNG); the clean domain is the builtin source photos (other
scenes). The model trains on these unpaired folders for its fixed budget; then it degrades the clean
side of real (clean, AWGN) test pairs and we compare its noise with the real noise: standard deviation
(0-255; the clipped truth is a bit below sigma), KLD and AKLD. The true AWGN degrader is scored the
same way as the floor.

- ``--model ludvae`` (experiment=ludvae_cpu, best.ckpt chosen on the test pairs): at the training pre-noise
  sigma_x and with the inference pre-noise drawn from U(sigma_x, 2 sigma_x) (the rule the pipeline uses; the
  paper widens it at inference too).
- ``--model deflow`` (experiment=deflow_cpu, ``data.test=null``: no pair is seen, best.ckpt is chosen by the
  blind noise match and T calibrated on the target folder when training ends): at T = 1 (the model's own
  latent shift) and at the calibrated T (what synthesis uses by default).

Prints a Markdown table. Usage:
  python benchmarks/bench_truth.py [--model ludvae|deflow] [--sigma 25] [--steps N] [--seed 0] [--run RUN]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_cli.py

import yaml  # noqa: E402
from _cli import metrics_of, run  # noqa: E402

from degrade_lab.data.builtin import ensure_builtin  # noqa: E402
from degrade_lab.paths import home_dir, project_root  # noqa: E402
from degrade_lab.utils.checkpoint import read_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-level-degraded", type=float, default=10.0, help="sigma_y of the pre-noise")
    parser.add_argument("--model", choices=("ludvae", "deflow"), default="ludvae")
    parser.add_argument("--run", "--ludvae-run", dest="run", default=None,
                        help="score this training run (made by this script)")
    args = parser.parse_args()
    # the inference-invariance rule of thumb (see conf/model/ludvae.yaml): sigma_x^2 = sigma^2 + sigma_y^2
    sigma_x = round((args.sigma**2 + args.noise_level_degraded**2) ** 0.5, 1)
    out = project_root() / "logs" / f"bench_truth_{args.model}" / time.strftime("%Y-%m-%d_%H-%M-%S")
    builtin = ensure_builtin("builtin", home_dir() / "data")
    awgn = ["degrader=awgn", f"degrader.sigma={args.sigma}"]
    test = out / "test"
    if args.run:
        train_dir = Path(args.run).resolve()
        data = yaml.safe_load((train_dir / "config.yaml").read_text())["data"]
        # a DeFlow run saw no test pairs: they lie next to its target folder (OUT/target/degraded, OUT/test)
        test = Path(data["test"] or Path(data["target"]).parents[1] / "test")
        train_seconds = float(json.loads((train_dir / "summary.json").read_text())["wall_seconds"])
    else:
        run(["synthesize", *awgn, f"input={builtin / 'test' / 'clean'}", f"output={out / 'target'}", "seed=101",
             "progress=false"])
        run(["synthesize", *awgn, f"input={builtin / 'test' / 'clean'}", f"output={out / 'test'}", "seed=202",
             "progress=false"])
        steps = [f"trainer.max_steps={args.steps}"] if args.steps else []
        data = ["data=folders", f"data.source={builtin / 'source'}", f"data.target={out / 'target' / 'degraded'}",
                "data.num_workers=0"]
        model = ([f"data.test={test}", f"model.noise_level_clean={sigma_x}",
                  f"model.noise_level_degraded={args.noise_level_degraded}"] if args.model == "ludvae"
                 else ["data.test=null"])
        start = time.time()
        train_dir = run(["train", f"experiment={args.model}_cpu", *data, *model, f"seed={args.seed}",
                         "callbacks.progress.refresh_rate=0", *steps])
        train_seconds = time.time() - start
    summary = json.loads((train_dir / "summary.json").read_text())
    ckpt = [f"degrader={args.model}", f"degrader.ckpt={train_dir}/checkpoints/best.ckpt"]
    if args.model == "ludvae":
        learned = [(f"LUD-VAE, pre-noise {sigma_x:g} (training level)", ckpt),
                   (f"LUD-VAE, pre-noise U({sigma_x:g}, {2 * sigma_x:g})",
                    [*ckpt, f"degrader.noise_level=[{sigma_x},{2 * sigma_x}]"])]
        recipe = f"pre-noise sigma_x={sigma_x} sigma_y={args.noise_level_degraded}"
    else:
        calibration = read_checkpoint(train_dir / "checkpoints" / "best.ckpt")["degrade_lab"].get("calibration") or {}
        learned = [("DeFlow, T = 1 (the learned shift)", [*ckpt, "degrader.options.temperature=1.0"]),
                   (f"DeFlow, calibrated T = {calibration.get('value', float('nan')):.3g}", ckpt)]
        recipe = "no pair seen (data.test=null)"
    rows = []
    for name, degrader in [(f"AWGN sigma={args.sigma:g} (the truth)", awgn), *learned]:
        m = metrics_of(run(["evaluate", *degrader, "data=folders", f"data.test={test}", "progress=false",
                            "metrics.samples=3"]))
        rows.append((name, m))
    real_std = rows[0][1]["input/noise_std"]
    print(f"\nTruth recovery: AWGN sigma={args.sigma:g}, experiment={args.model}_cpu, "
          f"{summary['global_step']} steps in {train_seconds / 60:.1f} min, {recipe} ({train_dir})\n")
    print("| degrader | synthetic noise std | real noise std | std error vs real | vs sigma | KLD | AKLD |")
    print("|---|---|---|---|---|---|---|")
    for name, m in rows:
        std = m["degradation/noise_std"]
        print(f"| {name} | {std:.2f} | {real_std:.2f} | {100 * (std - real_std) / real_std:+.1f}% | "
              f"{100 * (std - args.sigma) / args.sigma:+.1f}% | {m['degradation/kld']:.4f} | "
              f"{m['degradation/akld']:.4f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
