"""``degrade-lab restore`` and ``synthesize`` throughput on photo-sized folders: is the network the bottleneck?

Folders: 24 Kodak-sized images (768 x 512) and 4 twelve-megapixel images (4000 x 3000; for RRDBNet x4 the
inputs are 4 times smaller, so that the outputs have these sizes), 8-bit PNGs of smooth
random content with noise (decoding cost is that of real photos of the same size and format). Models at the
papers' sizes with random weights (speed does not depend on the weights): DnCNN-17, DRUNet (noise map) and
RRDBNet x4 for ``restore``; LUD-VAE, SeNM-VAE and DeFlow for ``synthesize``. Each configuration (whole images or
tiles of 512, float32 or bfloat16 where the CPU / GPU runs it natively) runs as its own ``degrade-lab`` process,
whose peak memory (RSS, and CUDA's peak allocation on a GPU) is recorded; the restore rows give the seconds of
the network, of decoding and of encoding + writing (both overlapped with the network in their threads) and the
time the network waited for a decoded image.

Usage:
  python benchmarks/bench_restore.py                      # everything (hours on 2 CPU cores: DRUNet and RRDBNet
                                                          # at 12 MP take minutes per image)
  python benchmarks/bench_restore.py --models dncnn --sets kodak --modes whole
  python benchmarks/bench_restore.py --synthesize-only --sets kodak
Options: --models dncnn,drunet,rrdbnet  --degraders ludvae,senmvae,deflow  --sets kodak,12mp  --modes whole,tiled
--precisions 32,bf16  --limit N (first N images)  --device cpu|cuda  --work DIR (kept between runs: images and model files are made once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SETS = {"kodak": (24, 512, 768), "12mp": (4, 3000, 4000)}
RESTORERS = {"dncnn": ("dncnn", 1), "drunet": ("drunet", 1), "rrdbnet": ("rrdbnet", 4)}
DEGRADERS = {"ludvae": "ludvae", "senmvae": "senmvae", "deflow": "deflow"}


def make_images(folder: Path, count: int, height: int, width: int, scale: int = 1, limit: int = 0) -> Path:
    """``count`` PNGs of smooth random colour with sigma-15 noise (made once; SR inputs are ``scale`` x smaller)."""
    from PIL import Image

    folder = folder / f"{count}x{height // scale}x{width // scale}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == count:
        return subset(folder, limit)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = height // scale, width // scale
    for i in range(count):
        low = rng.random((h // 64 + 2, w // 64 + 2, 3)).astype(np.float32)
        image = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32)
        image += rng.normal(0, 15, image.shape).astype(np.float32)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"img{i:02d}.png", compress_level=1)
    return subset(folder, limit)


def subset(folder: Path, limit: int) -> Path:
    """A folder of links to the first ``limit`` images (all: the folder itself)."""
    files = sorted(folder.glob("*.png"))
    if not limit or limit >= len(files):
        return folder
    part = folder.with_name(f"{folder.name}_first{limit}")
    part.mkdir(exist_ok=True)
    for file in files[:limit]:
        if not (part / file.name).exists():
            (part / file.name).symlink_to(file)
    return part


def make_model_file(name: str, scale: int, path: Path) -> Path:
    """A model file of ``conf/model/NAME.yaml`` at its default (paper) size with random weights."""
    if path.is_file():
        return path
    import torch

    from degrade_lab.lit.base import instantiate_model
    from degrade_lab.tasks.import_weights import model_config
    from degrade_lab.utils.checkpoint import save_model_file
    from degrade_lab.utils.runs import package_versions

    torch.manual_seed(0)
    model, scale = model_config(name, scale, None)
    if "val_lpips" in model:
        model["val_lpips"] = None  # a validation metric: not needed to run the model
    module = instantiate_model(model)
    save_model_file(path, module.state_dict(), {"config": {"model": model, "data": {"scale": scale}}, "seed": 0,
                                                "versions": package_versions(), "global_step": 0})
    return path


def run_one(args: list[str]) -> dict:
    """One ``degrade-lab`` command in its own process, with its peak memory."""
    code = ("import resource, sys, json, torch; from degrade_lab.cli import main; sys.argv = ['degrade-lab', *"
            f"{args!r}]\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6\n"
            "cuda = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None\n"
            "print('BENCH', json.dumps({'peak_rss_gb': peak, 'peak_cuda_gb': cuda}))")
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    run_dir = Path([line for line in result.stdout.splitlines() if line.strip()][-2].strip())
    summary = json.loads((run_dir / "summary.json").read_text())
    return {**json.loads(line[6:]), "summary": summary, "process_seconds": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dncnn,drunet,rrdbnet")
    parser.add_argument("--degraders", default="ludvae,senmvae,deflow")
    parser.add_argument("--sets", default="kodak,12mp")
    parser.add_argument("--modes", default="whole,tiled")
    parser.add_argument("--precisions", default="32,bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--restore-only", action="store_true")
    parser.add_argument("--synthesize-only", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images of each set")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "degrade_lab" / "bench_restore"))
    args = parser.parse_args()
    import torch

    from degrade_lab.api import fast_bf16

    work = Path(args.work)
    device = torch.device(args.device)
    precisions = [p for p in args.precisions.split(",") if p == "32" or fast_bf16(device)]
    skipped = [p for p in args.precisions.split(",") if p not in precisions]
    hardware = ["hardware=gpu"] if device.type == "cuda" else ["hardware=cpu"]
    rows = []
    if not args.synthesize_only:
        for model in args.models.split(","):
            name, scale = RESTORERS[model]
            ckpt = make_model_file(name, scale, work / "models" / f"{model}.ckpt")
            for set_name in args.sets.split(","):
                count, height, width = SETS[set_name]
                folder = make_images(work / "images", count, height, width, scale, args.limit)
                count = len(list(folder.glob("*.png")))
                for mode in args.modes.split(","):
                    for precision in precisions:
                        out = work / "out" / f"{model}_{set_name}_{mode}_{precision}"
                        subprocess.run(["rm", "-rf", str(out)], check=True)
                        extra = ["noise_level=25"] if model == "drunet" else []
                        result = run_one(["restore", f"ckpt={ckpt}", f"input={folder}", f"output={out}",
                                          f"tile={512 if mode == 'tiled' else 0}", f"precision={precision}",
                                          "progress=false", *hardware, *extra])
                        s = result["summary"]["seconds"]
                        rows.append([f"restore {model}", set_name, mode, precision, count / s["wall"],
                                     s["network"], s["decode"], s["encode"], s["wait"], s["wall"],
                                     result["peak_rss_gb"], result["peak_cuda_gb"] or "-"])
                        print(rows[-1], flush=True)
    if not args.restore_only:
        for degrader in args.degraders.split(","):
            ckpt = make_model_file(DEGRADERS[degrader], 1 if degrader != "deflow" else 4,
                                   work / "models" / f"{degrader}.ckpt")
            for set_name in args.sets.split(","):
                count, height, width = SETS[set_name]
                folder = make_images(work / "images", count, height, width, 1, args.limit)
                count = len(list(folder.glob("*.png")))
                for precision in precisions:
                    out = work / "out" / f"synth_{degrader}_{set_name}_{precision}"
                    subprocess.run(["rm", "-rf", str(out)], check=True)
                    result = run_one(["synthesize", f"degrader={degrader}", f"degrader.ckpt={ckpt}",
                                      f"degrader.bf16={str(precision == 'bf16').lower()}", f"input={folder}",
                                      f"output={out}", "progress=false", *hardware,
                                      *(["degrader.level=0.05"] if degrader == "senmvae" else [])])
                    wall = result["summary"]["wall_seconds"]
                    rows.append([f"synthesize {degrader}", set_name, "tiles of the degrader", precision,
                                 count / wall, "-", "-", "-", "-", wall, result["peak_rss_gb"],
                                 result["peak_cuda_gb"] or "-"])
                    print(rows[-1], flush=True)
    from degrade_lab.tasks.common import markdown_table

    print()
    print(markdown_table(["command", "images", "mode", "precision", "images/s", "network s", "decode s",
                          "encode+write s", "waited s", "wall s", "peak RSS GB", "peak CUDA GB"], rows))
    if skipped:
        print(f"\nnot run: precision {', '.join(skipped)} (not native on {device})")


if __name__ == "__main__":
    main()
