"""``degrade-lab synthesize``: degrade a folder of clean images into a paired folder.

``output/clean/NAME.png`` and ``output/degraded/NAME.png`` (``NAME_sK`` for ``samples=K > 1``),
plus ``output/manifest.json`` (degrader config, seed, versions, SHA-256 of every file, and the
parameters the degrader drew for each image: noise sigma, JPEG quality, SeNM-VAE level, ...). A degrader
that produces clean images (LUD-VAE with ``direction=n2c``) reads degraded inputs instead: the input
becomes ``degraded/`` and its translation ``clean/``. Each
image's randomness is seeded by (seed, its name), so results do not depend on the order or on
interruptions: re-running after a kill skips the finished files and completes the set.

The inputs are never written to: an output folder that is, contains or lies inside the input is refused.
Every input's header is checked before the first file is written. One run writes into an output folder
at a time (:class:`~degrade_lab.utils.lock.OutputLock`), and the manifest, written before the first
image, refuses a later run with other settings. Outputs keep 16 bits per sample where the input had
them (``bit_depth=auto``; or ``8`` / ``16``); the manifest records each file's ``bit_depth``.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import output_dir, save_config, task_device
from degrade_lab.utils.io import (
    ORIENTATION_NOTE,
    atomic_write_bytes,
    atomic_write_json,
    check_foreign,
    check_separate,
    contained_path,
    image_size,
    list_images,
    orientation,
    png_bits,
    png_bytes,
    read_image_and_depth,
    relative_stems,
    sha256_bytes,
    write_png,
)
from degrade_lab.utils.lock import OutputLock, is_launcher_process
from degrade_lab.utils.manifest import PeriodicSave, load_manifest, merge_rank_manifests, rank_manifest
from degrade_lab.utils.overlap import overlapped
from degrade_lab.utils.runs import count_parameters, package_versions, write_summary
from degrade_lab.utils.seeds import image_seed
from degrade_lab.utils.sharded import sharded, wants_several_processes
from degrade_lab.utils.trusted_targets import COMMAND_LINE, instantiate


def _check_inputs(files: list[Path], scale: int) -> None:
    """Every input's header, before anything is written: readable, within max_pixels, not smaller than
    the degrader's scale."""
    for file in tqdm(files, desc="check inputs", unit="img", disable=len(files) < 500):
        height, width = image_size(file)
        if height < scale or width < scale:
            raise UserInputError(
                f"image '{file}' is {height}x{width}, smaller than the degrader's scale {scale}; remove it "
                "or choose a degrader without down-sampling."
            )


def synthesize(cfg: DictConfig) -> dict:
    start = time.time()
    run_dir = output_dir(cfg)
    save_config(cfg, run_dir)
    if not cfg.get("input") or not cfg.get("output"):
        raise UserInputError("synthesize needs input=CLEAN_DIR and output=PAIRED_DIR.")
    source = Path(str(cfg.input)).expanduser().resolve()
    target = check_separate({"input": source}, str(cfg.output))
    samples = int(cfg.samples)
    if samples < 1:
        raise UserInputError(f"samples={samples}: give at least 1.")
    png_bits(cfg.get("bit_depth", "auto"), 8)  # check the option before any work
    files = list_images(source, "input folder")
    relative_stems(files, source)  # a.png and a.jpg would both be written as a.png: refused, naming both
    degrader = instantiate(cfg.degrader, origin=COMMAND_LINE, _convert_="all")
    device = task_device(cfg)
    several = wants_several_processes(cfg.get("trainer") or {})  # each rank's device is Lightning's to choose
    degrader.to(torch.device("cpu") if several else device).eval()
    scale = int(getattr(degrader, "scale", 1))
    _check_inputs(files, scale)
    inverse = getattr(degrader, "produces", "degraded") == "clean"  # N2C: input degraded, output clean
    given, made = ("degraded", "clean") if inverse else ("clean", "degraded")
    settings = {"degrader": OmegaConf.to_container(cfg.degrader, resolve=True), "seed": int(cfg.seed),
                "samples": samples}
    if str(cfg.get("bit_depth", "auto")) != "auto":  # (absent for the default: folders written before it existed)
        settings["bit_depth"] = int(cfg.bit_depth)

    owner = is_launcher_process()  # not one of the processes Lightning starts for hardware=ddp
    with OutputLock(target, what="output folder") if owner else nullcontext():
        check_foreign(target, bool(cfg.get("overwrite", False)))
        for file in files:  # every file it will write lies inside the output folder, through no link
            stem = file.relative_to(source).with_suffix("").as_posix()
            for side in (given, made):
                contained_path(target, f"{side}/{stem}.png")
        manifest_path = target / "manifest.json"
        done = load_manifest(manifest_path, settings)
        leftovers, _ = merge_rank_manifests(manifest_path, settings, done)  # a killed sharded run's files

        def save_manifest():
            atomic_write_json(manifest_path, {"settings": settings, "input": str(source),
                                              "versions": package_versions(), "orientation": ORIENTATION_NOTE,
                                              "files": done})

        if owner:
            save_manifest()  # before the first image: a second writer with other settings is refused
            for rank_file in leftovers:
                rank_file.unlink()
        written = _write_pairs(cfg, files, source, target, degrader, device, given, made, done, save_manifest,
                               settings)
        if not written["is_global_zero"]:
            return {}  # another rank of a sharded run: rank 0 merges, records and reports
        rank_files, entries = merge_rank_manifests(manifest_path, settings, done)
        save_manifest()
        for rank_file in rank_files:
            rank_file.unlink()
        if rank_files:  # a sharded run: every rank's images, as their manifests list them
            written["inputs"] = entries // samples
    summary = {"images": len(files), "pairs": len(done), "written_now": written["inputs"], "output": str(target),
               "processes": written["world"], "seconds": written["seconds"]}
    write_summary(run_dir, task="synthesize", params=count_parameters(degrader), global_step=None,
                  wall_seconds=round(time.time() - start, 2), seed=int(cfg.seed), **summary)
    times = written["seconds"]
    processes = f" in {written['world']} processes" if written["world"] > 1 else ""
    print(f"wrote {written['inputs']} images ({len(done)} pairs in total) to {target}{processes}; seconds: degrader "
          f"{times['degrader']}, decoding {times['decode']} and encoding + writing {times['encode']} (beside it), "
          f"waited for decoding {times['wait']}, wall {times['wall']}")
    return summary


def _write_pairs(cfg, files, source, target, degrader, device, given, made, done, save_manifest, settings) -> dict:
    """Decode ahead, degrade, encode and write behind: in threads around this process
    (:func:`~degrade_lab.utils.overlap.overlapped`), or sharded over the processes ``hardware=`` asks for
    (:func:`~degrade_lab.utils.sharded.sharded`, each rank recording its files in its own manifest). Returns how
    many inputs this process wrote, the seconds of each stage, and the rank it ran as."""
    samples, scale = int(cfg.samples), int(getattr(degrader, "scale", 1))
    todo = []
    for file in files:
        name = file.relative_to(source).with_suffix("").as_posix()
        names = [name] if samples == 1 else [f"{name}_s{k}" for k in range(samples)]
        if not all(n in done and (target / made / f"{n}.png").is_file() for n in names):
            todo.append((file, name, names))
    written = {"inputs": 0}
    mine: dict = {}  # what this process wrote (a sharded run's rank manifest)

    def read(item):
        return (*read_image_and_depth(item[0]), orientation(item[0]))

    def compute(item, data, device):
        file, name, _ = item
        clean, input_bits, turned = data
        bits = png_bits(cfg.get("bit_depth", "auto"), input_bits)
        height, width = clean.shape[-2:]
        clean = clean[:, : height - height % scale, : width - width % scale]
        generator = torch.Generator(device=device).manual_seed(image_seed(int(cfg.seed), name))
        try:
            with torch.inference_mode():
                degraded = degrader(clean[None].expand(samples, -1, -1, -1).to(device), generator).cpu()
        except (RuntimeError, ValueError) as err:
            raise UserInputError(
                f"image '{file}' ({height}x{width}) could not be degraded ({type(err).__name__}: {err})."
            ) from err
        parameters = getattr(degrader, "last_parameters", {})  # per-image sigma, quality, level, ...
        parameters = {key: [float(v) for v in values] for key, values in parameters.items()}
        return clean, degraded, bits, parameters, turned

    def write(item, result):
        _, _, names = item
        clean, degraded, bits, _, _ = result
        given_png = png_bytes(clean, bits)  # one encoding, written once per sample name
        shas = []
        for n, image in zip(names, degraded, strict=True):
            atomic_write_bytes(contained_path(target, f"{given}/{n}.png"), given_png)
            shas.append(sha256_bytes(write_png(contained_path(target, f"{made}/{n}.png"), image, bits)))
        return sha256_bytes(given_png), shas

    def finished(item, result, written_shas):
        file, _, names = item
        bits, parameters, turned = result[2], result[3], result[4]
        given_sha, made_shas = written_shas
        for k, (n, made_sha) in enumerate(zip(names, made_shas, strict=True)):
            entry = {"source": str(file), given: given_sha, made: made_sha, "bit_depth": bits}
            if parameters:
                entry["parameters"] = {key: round(values[k], 6) for key, values in parameters.items()}
            if turned != 1:  # read as the camera meant it (EXIF orientation applied), written upright
                entry["exif_orientation"] = turned
            done[n] = mine[n] = entry
        written["inputs"] += 1
        save()

    threads = int(cfg.get("io_threads", 2))
    if todo and wants_several_processes(cfg.get("trainer") or {}):
        rank_path = [None]

        def save_mine():  # each rank its own manifest; rank 0 merges them at the end
            if rank_path[0] is None:
                rank_path[0] = rank_manifest(target / "manifest.json", torch.distributed.get_rank())
            atomic_write_json(rank_path[0], {"settings": settings, "files": mine})

        save = PeriodicSave(save_mine)
        times = sharded(todo, read, compute, write, finished, OmegaConf.to_container(cfg.trainer, resolve=True),
                        networks=degrader, threads=threads, progress=bool(cfg.progress), root=str(output_dir(cfg)),
                        flush=save.now)
        written.update(is_global_zero=times["is_global_zero"], world=times["world"])
        times["waited"] = max(0.0, times["wall"] - times["compute"])
    else:
        save = PeriodicSave(save_manifest)
        progress = tqdm(total=len(todo), desc="synthesize", unit="img", disable=not cfg.progress)
        times = overlapped(todo, read, lambda item, data: compute(item, data, device), write, finished, threads,
                           progress)
        progress.close()
        written.update(is_global_zero=True, world=1)
    written["seconds"] = {"degrader": round(times["compute"], 3), "decode": round(times["read"], 3),
                          "encode": round(times["write"], 3), "wait": round(times["waited"], 3),
                          "wall": round(times["wall"], 3)}
    return written
