"""``degrade-lab synthesize``: degrade a folder of clean images into a paired folder.

``output/clean/NAME.png`` and ``output/degraded/NAME.png`` (``NAME_sK`` for ``samples=K > 1``),
plus ``output/manifest.json`` (degrader config, seed, versions, SHA-256 of every file, and the
parameters the degrader drew for each image: noise sigma, JPEG quality, SeNM-VAE level, ...). A degrader
that produces clean images (LUD-VAE with ``direction=n2c``) reads degraded inputs instead: the input
becomes ``degraded/`` and its translation ``clean/``. Each
image's randomness is seeded by (seed, its name), so results do not depend on the order or on
interruptions: re-running after a kill skips the finished files and completes the set.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import output_dir, save_config
from degrade_lab.utils.io import (
    atomic_write_bytes,
    atomic_write_json,
    list_images,
    png_bytes,
    read_image,
    sha256_bytes,
    write_png,
)
from degrade_lab.utils.runs import count_parameters, package_versions, write_summary


def image_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:15], 16)


def _load_manifest(path: Path, settings: dict) -> dict:
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text())
    if manifest.get("settings") != settings:
        raise UserInputError(
            f"'{path.parent}' already holds pairs made with other settings ({manifest.get('settings')}); "
            "choose another output folder or delete this one."
        )
    return manifest.get("files", {})


def synthesize(cfg: DictConfig) -> dict:
    start = time.time()
    run_dir = output_dir(cfg)
    save_config(cfg, run_dir)
    if not cfg.get("input") or not cfg.get("output"):
        raise UserInputError("synthesize needs input=CLEAN_DIR and output=PAIRED_DIR.")
    source = Path(str(cfg.input)).expanduser().resolve()
    target = Path(str(cfg.output)).expanduser().resolve()
    if target == source or source in target.parents:
        raise UserInputError(f"output '{target}' must not be inside input '{source}'.")
    files = list_images(source, "input folder")
    degrader = hydra.utils.instantiate(cfg.degrader, _convert_="all")
    device = torch.device(cfg.device)
    degrader.to(device).eval()
    samples, scale = int(cfg.samples), int(getattr(degrader, "scale", 1))
    inverse = getattr(degrader, "produces", "degraded") == "clean"  # N2C: input degraded, output clean
    given, made = ("degraded", "clean") if inverse else ("clean", "degraded")
    settings = {"degrader": OmegaConf.to_container(cfg.degrader, resolve=True), "seed": int(cfg.seed),
                "samples": samples}
    manifest_path = target / "manifest.json"
    done = _load_manifest(manifest_path, settings)

    def save_manifest():
        atomic_write_json(manifest_path, {"settings": settings, "input": str(source), "versions": package_versions(),
                                          "files": done})

    written = 0
    with torch.inference_mode():
        for file in tqdm(files, desc="synthesize", unit="img", disable=not cfg.progress):
            name = file.relative_to(source).with_suffix("").as_posix()
            names = [name] if samples == 1 else [f"{name}_s{k}" for k in range(samples)]
            if all(n in done and (target / made / f"{n}.png").is_file() for n in names):
                continue
            clean = read_image(file)
            height, width = clean.shape[-2:]
            clean = clean[:, : height - height % scale, : width - width % scale]
            generator = torch.Generator(device=device).manual_seed(image_seed(int(cfg.seed), name))
            degraded = degrader(clean[None].expand(samples, -1, -1, -1).to(device), generator)
            given_png = png_bytes(clean)  # one encoding, written once per sample name
            given_sha = sha256_bytes(given_png)
            parameters = getattr(degrader, "last_parameters", {})  # per-image sigma, quality, level, ...
            for k, (n, image) in enumerate(zip(names, degraded, strict=True)):
                atomic_write_bytes(target / given / f"{n}.png", given_png)
                made_sha = sha256_bytes(write_png(target / made / f"{n}.png", image))
                done[n] = {"source": str(file), given: given_sha, made: made_sha}
                if parameters:
                    done[n]["parameters"] = {key: round(float(values[k]), 6) for key, values in parameters.items()}
            written += 1
            if written % 20 == 0:
                save_manifest()
    save_manifest()
    summary = {"images": len(files), "pairs": len(done), "written_now": written, "output": str(target)}
    write_summary(run_dir, task="synthesize", params=count_parameters(degrader), global_step=None,
                  wall_seconds=round(time.time() - start, 2), seed=int(cfg.seed), **summary)
    print(f"wrote {written} images ({len(done)} pairs in total) to {target}")
    return summary
