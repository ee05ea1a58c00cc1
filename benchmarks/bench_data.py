"""Training steps per second on a folder of 12-megapixel photos against pre-cut 256-pixel tiles of the same photos.

Each row is a real ``degrade-lab train`` run (the presets' crops and batches, validation off) whose ``StepTimer``
callback splits the time between the network (inside the step), waiting for the loader and degrading on the fly.
The target (issue 19): on the photos at least 90 % of the tiles' rate, for DnCNN-17, LUD-VAE and a restorer
trained with an on-the-fly degrader. ``data.cache`` modes: ``auto`` (the default: decoded into memory here),
``disk`` (decoded once into memory-mapped arrays) and ``off`` (decoding the file for every crop, what training
did before: run with few steps, it is slow on photos).

Usage: python benchmarks/bench_data.py [--models dncnn,ludvae,dncnn_camera] [--caches auto,disk,off]
       [--photos 4] [--steps 40] [--off-steps 8] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# (what the row trains, its overrides, the data it reads: paired pairs / unpaired source+target / source only)
MODELS = {
    "dncnn": ("DnCNN-17, real pairs", ["model=dncnn", "hardware=cpu_bf16", "data.crop_size=64",
                                      "data.batch_size=16"], "paired"),
    "ludvae": ("LUD-VAE (unpaired)", ["experiment=ludvae_cpu"], "unpaired"),
    "dncnn_camera": ("DnCNN-17, camera degrader on the fly", ["model=dncnn", "hardware=cpu_bf16",
                                                              "data.crop_size=64", "data.batch_size=16",
                                                              "data.degrader=camera"], "source"),
}
PHOTO = (3000, 4000)
TILE = 256


def make_photos(work: Path, count: int) -> dict[str, Path]:
    """``count`` 12 MP clean photos and their noisy versions (PNG, made once), as folders: ``source`` (clean),
    ``target`` (noisy), ``paired`` (clean/ + degraded/), and the same three cut into 256-pixel tiles."""
    from PIL import Image

    root = work / f"photos{count}"
    done = root / "done"
    folders = {name: root / name for name in ("source", "target", "paired")}
    folders.update({f"{name}_tiles": root / f"{name}_tiles" for name in ("source", "target", "paired")})
    if done.exists():
        return folders
    rng = np.random.default_rng(0)
    height, width = PHOTO
    for i in range(count):
        low = rng.random((height // 48 + 2, width // 48 + 2, 3)).astype(np.float32)
        clean = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC),
                           np.float32) + rng.normal(0, 3, (height, width, 3)).astype(np.float32)
        clean = np.clip(clean, 0, 255).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
        for kind, image in (("clean", clean), ("noisy", noisy)):
            side = "source" if kind == "clean" else "target"
            pair_side = "clean" if kind == "clean" else "degraded"
            for folder in (folders[side], folders["paired"] / pair_side):
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(folder / f"photo{i}.png")
            for top in range(0, height - TILE + 1, TILE):
                for left in range(0, width - TILE + 1, TILE):
                    tile = Image.fromarray(image[top : top + TILE, left : left + TILE])
                    name = f"photo{i}_{top:04d}_{left:04d}.png"
                    for folder in (folders[f"{side}_tiles"], folders["paired_tiles"] / pair_side):
                        folder.mkdir(parents=True, exist_ok=True)
                        tile.save(folder / name)
        print(f"made photo {i + 1}/{count}", flush=True)
    done.touch()
    return folders


def run(model: str, photos: dict[str, Path], tiles: bool, cache: str, steps: int, work: Path) -> dict:
    _, overrides, data = MODELS[model]
    suffix = "_tiles" if tiles else ""
    if data == "paired":
        folders = [f"data.paired={photos['paired' + suffix]}"]
    elif data == "unpaired":
        folders = [f"data.source={photos['source' + suffix]}", f"data.target={photos['target' + suffix]}"]
    else:
        folders = [f"data.source={photos['source' + suffix]}"]
    name = f"{model}_{'tiles' if tiles else 'photos'}_{cache}"
    args = [sys.executable, "-m", "degrade_lab.cli", "train", *overrides, "data=folders", *folders,
            "data.test=null", f"data.cache={cache}", f"data.cache_dir={work / 'decoded'}",
            f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps + 1000}", "trainer.num_sanity_val_steps=0",
            "callbacks.best_checkpoint=null", "callbacks.image_grid=null", "callbacks.progress=null",
            "callbacks.step_timer.log_every=0", "callbacks.step_timer.skip=2", "callbacks.lr_monitor=null", "logger=none", "calibrate=false",
            f"hydra.run.dir={work / 'runs' / name}"]
    shutil.rmtree(work / "runs" / name, ignore_errors=True)
    began = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    summary = json.loads((work / "runs" / name / "summary.json").read_text())
    return {**summary["throughput"], "loading": summary["data_loading"], "process": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dncnn,ludvae,dncnn_camera")
    parser.add_argument("--caches", default="auto,disk,off")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--off-steps", type=int, default=8, help="steps of the slow data.cache=off rows")
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "degrade_lab" / "bench_data"))
    args = parser.parse_args()
    work = Path(args.work)
    photos = make_photos(work, args.photos)
    rows = []
    header = ("model", "cache", "tiles: steps/s", "photos: steps/s", "photos / tiles", "data wait (photos)",
              "degrade (photos)", "workers", "prepare s (photos)")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    for model in args.models.split(","):
        for cache in args.caches.split(","):
            shutil.rmtree(work / "decoded", ignore_errors=True)  # the disk rows pay their one decoding
            steps = args.off_steps if cache == "off" else args.steps
            tiles = run(model, photos, True, cache, steps, work)
            full = run(model, photos, False, cache, steps, work)
            row = (MODELS[model][0], f"{cache} ({full['loading']['cache']['mode']})", f"{tiles['steps_per_second']:.3f}",
                   f"{full['steps_per_second']:.3f}", f"{full['steps_per_second'] / tiles['steps_per_second']:.2f}",
                   f"{full['data_wait_share']:.1%}", f"{full['degrade_share']:.1%}",
                   str(full["loading"]["num_workers"]), f"{full['loading']['cache'].get('prepare_seconds', 0):.1f}")
            rows.append(row)
            print("| " + " | ".join(row) + " |", flush=True)
    (work / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
