"""Restorers on this machine: speed at the papers' sizes, and quality under one CPU budget per model.

Part 1 (``--speed``; fp32, 2 threads): parameters, training step time (batch 16 of 64x64, Adam) and
inference time per 256x256 image of DnCNN-17, DRUNet (with its noise map), VDIR (encoder + restorer; its
training step includes the decoder, discriminator and estimator) and RRDBNet x4 (64x64 input). Reference
(KAIR's DRUNet on this machine, 2 threads, fp32): 4.3 s per step, 1.6 s per 256x256 image.

Part 2 (``--quality``): every model trained with the same wall-clock budget (``--minutes``, Lightning's
``max_time``) at a CPU size, then evaluated:
* blind AWGN: trained on builtin clean photos with sigma ~ U[5, 70] made on the fly, scored on the
  held-out clean photos at sigma = 15, 25, 50 (evaluate sweep rows);
* camera noise: trained on the builtin real pairs, scored on the held-out real pairs.
Models: DnCNN (dncnn_cpu), DRUNet blind (no noise map; 16/32/64/128 channels, 2 blocks), VDIR (32
features, 2 groups x 3 blocks) and the same VDIR restorer alone (VDIR's ablation, Tables IX / XI:
does the variational prior c help a restorer of the same size?).

Usage: python benchmarks/bench_restorers.py [--speed] [--quality] [--minutes 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_cli.py
from _cli import metrics_of, run  # noqa: E402

from degrade_lab.archs.discriminators import PatchDiscriminator  # noqa: E402
from degrade_lab.archs.dncnn import DnCNN  # noqa: E402
from degrade_lab.archs.drunet import DRUNet  # noqa: E402
from degrade_lab.archs.rrdbnet import RRDBNet  # noqa: E402
from degrade_lab.archs.vdir import VDIR  # noqa: E402
from degrade_lab.lit.vdir import VDIRModule  # noqa: E402
from degrade_lab.utils.checkpoint import load_model  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def speed_table(repeats: int) -> str:
    torch.manual_seed(0)
    rows = []
    x16, y16 = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 64, 64)
    image = torch.rand(1, 3, 256, 256)

    def plain_step(net, inputs, target, *extra):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad()
            torch.nn.functional.l1_loss(net(inputs, *extra), target).backward()
            optimizer.step()
        return step

    for name, net, extra in (("DnCNN-17", DnCNN(), ()), ("DRUNet (noise map)", DRUNet(), (25.0,))):
        step = timed(plain_step(net, x16, y16, *extra), repeats)
        with torch.inference_mode():
            infer = timed(lambda n=net, e=extra: n(image, *e), repeats)
        rows.append((name, sum(p.numel() for p in net.parameters()), step, infer))

    vdir = VDIR()
    module = VDIRModule(vdir, PatchDiscriminator())
    g_opt = torch.optim.Adam(vdir.parameters(), lr=2e-4)
    d_opt = torch.optim.Adam(module.discriminator.parameters(), lr=2e-4)
    batch = {"clean": y16, "degraded": x16, "parameters": {"sigma": torch.full((16,), 25.0)}}

    def vdir_step():
        encoded = module.encode(x16)
        d_opt.zero_grad()
        module.discriminator_loss(batch, encoded["reconstruction"]).backward()
        d_opt.step()
        g_opt.zero_grad()
        module.generator_loss(batch, encoded)["loss"].backward()
        g_opt.step()

    step = timed(vdir_step, repeats)
    with torch.inference_mode():
        infer = timed(lambda: vdir(image), repeats)
    rows.append(("VDIR (encoder + restorer)", vdir.inference_parameters(), step, infer))

    rrdb = RRDBNet(scale=4)
    step = timed(plain_step(rrdb, torch.rand(16, 3, 16, 16), y16), repeats)
    with torch.inference_mode():
        infer = timed(lambda: rrdb(torch.rand(1, 3, 64, 64)), repeats)
    rows.append(("RRDBNet x4 (64x64 -> 256x256)", sum(p.numel() for p in rrdb.parameters()), step, infer))
    lines = ["| network | parameters | s per training step (16 x 64x64) | s per 256x256 output |", "|---|---|---|---|"]
    lines += [f"| {n} | {p:,} | {s:.2f} | {i:.2f} |" for n, p, s, i in rows]
    lines.append("| KAIR DRUNet (reference, same machine) | 32,640,960 | 4.3 | 1.6 |")
    return "\n".join(lines)


MODELS = {
    "DnCNN (12x32)": ["experiment=dncnn_cpu"],
    "DRUNet blind (16-128 ch, 2 blocks)": ["model=drunet", "model.net.noise_map=false",
                                           "model.net.channels=[16,32,64,128]", "model.net.blocks=2",
                                           "model.optimizer.lr=5e-4", "hardware=cpu_bf16", "model.channels_last=true"],
    "VDIR (32 feat, 2x3)": ["model=vdir", "model.net.features=32", "model.net.groups=2", "model.net.blocks=3",
                            "model.discriminator.widths=[32,32,64,64,64]", "model.optimizer.lr=5e-4",
                            "hardware=cpu_bf16", "model.channels_last=true"],
    "VDIR restorer alone (same size)": ["model=vdir", "model.net.features=32", "model.net.groups=2",
                                        "model.net.blocks=3", "model.net.use_encoder=false",
                                        "model.optimizer.lr=5e-4", "hardware=cpu_bf16", "model.channels_last=true"],
}


def quality(minutes: float, seed: int) -> str:
    from degrade_lab.data.builtin import ensure_builtin
    from degrade_lab.paths import home_dir

    builtin = ensure_builtin("builtin", home_dir() / "data")
    budget = f"00:00:{int(minutes):02d}:{int(minutes % 1 * 60):02d}"
    common = ["data.crop_size=48", "data.batch_size=16", "data.num_workers=0", "trainer.max_steps=1000000",
              f"+trainer.max_time={budget}", "trainer.val_check_interval=200", "data.val_crop=128",
              f"seed={seed}", "callbacks.progress.refresh_rate=0", "model.scheduler.milestones=[1000000]"]
    tasks = {
        "awgn": ["data=folders", f"data.source={builtin / 'source'}", f"data.test={builtin / 'test' / 'clean'}",
                 "data.degrader={_target_:degrade_lab.degradations.noise.AWGN,sigma:[5,70]}"],
        "camera": ["data=builtin"],
    }
    lines = ["| model | params | steps in budget | AWGN 15 | AWGN 25 | AWGN 50 | camera PSNR | camera SSIM |",
             "|---|---|---|---|---|---|---|---|"]
    for name, settings in MODELS.items():
        cells, steps, params = [], [], "-"
        for task, data in tasks.items():
            extra = []
            if name.startswith("VDIR") and task == "camera":
                extra = ["model.estimation_weight=0", "model.known_parameter=null"]
            train_dir = run(["train", *settings, *data, *common, *extra])
            summary = json.loads((train_dir / "summary.json").read_text())
            steps.append(str(summary["global_step"]))
            ckpt = train_dir / "checkpoints" / "best.ckpt"
            ckpt = ckpt if ckpt.is_file() else train_dir / "checkpoints" / "last.ckpt"
            net = load_model(ckpt)[0].net  # parameters used at inference (VDIR: encoder + restorer)
            params = f"{net.inference_parameters() if hasattr(net, 'inference_parameters') else sum(p.numel() for p in net.parameters()):,}"
            if task == "awgn":
                m = metrics_of(run(["evaluate", f"ckpt={ckpt}", "data=folders", f"data.test={builtin / 'test' / 'clean'}",
                                    "sweep.degrader=awgn", "sweep.parameter=sigma", "sweep.values=[15,25,50]",
                                    "progress=false"]))
                cells += [f"{m[f'test/psnr@sigma={s}']:.2f}" for s in (15, 25, 50)]
            else:
                m = metrics_of(run(["evaluate", f"ckpt={ckpt}", "data=builtin", "progress=false"]))
                cells += [f"{m['test/psnr']:.2f}", f"{m['test/ssim']:.4f}"]
        lines.append(f"| {name} | {params} | {' / '.join(steps)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per model and task")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.speed or not args.quality:
        print(speed_table(args.repeats), "\n", flush=True)
    if args.quality or not args.speed:
        print(quality(args.minutes, args.seed), flush=True)


if __name__ == "__main__":
    main()
