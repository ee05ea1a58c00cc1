"""``degrade-lab restore``: run a trained restorer on every image of a folder (or one file).

``output/REL.png`` for every image ``input/REL.*`` (recursive, any readable format and bit depth; 16-bit inputs
give 16-bit PNGs with ``bit_depth=auto``), at full resolution, plus ``output/manifest.json``: the settings,
the checkpoint, the package versions and, per file, its source, size, bits, whether it was tiled, its seconds
and the SHA-256 of what was written. Re-running after a kill skips the finished files and completes the rest
(each PNG is written atomically, so nothing is ever half-written); a later run with other settings is refused.
Each image's random numbers (VDIR samples its latent) are seeded by (seed, its name), so a resumed run writes
what an uninterrupted one would.

Decoding (reader threads) and encoding + writing (writer threads) overlap with the network, so that the
network sets the pace; the summary gives each one's seconds. Images above
:data:`~degrade_lab.api.AUTO_TILE_PIXELS` pixels are restored in tiles with ``tile=auto`` (the default),
and an image that runs out of memory whole is retried in tiles; both are said.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from degrade_lab import api
from degrade_lab.api import Restorer, load_restorer, uses_bf16
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import markdown_table, output_dir, save_config, task_device
from degrade_lab.utils.io import (
    IMAGE_SUFFIXES,
    ORIENTATION_NOTE,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_foreign,
    check_separate,
    contained_path,
    image_size,
    list_images,
    orientation,
    png_bits,
    png_bytes,
    read_image_and_depth,
    sha256_bytes,
)
from degrade_lab.utils.lock import OutputLock, is_launcher_process
from degrade_lab.utils.manifest import PeriodicSave, load_manifest, merge_rank_manifests, rank_manifest
from degrade_lab.utils.overlap import overlapped
from degrade_lab.utils.runs import count_parameters, package_versions, write_summary
from degrade_lab.utils.seeds import image_seed
from degrade_lab.utils.sharded import sharded, wants_several_processes

log = logging.getLogger(__name__)


def _inputs(cfg: DictConfig) -> tuple[Path, list[Path]]:
    """(root, files): a folder's images (recursive) or one image file."""
    if not cfg.get("ckpt") or not cfg.get("input") or not cfg.get("output"):
        raise UserInputError("restore needs ckpt=RUN/checkpoints/best.ckpt input=DIR_OR_IMAGE output=DIR.")
    source = Path(str(cfg.input)).expanduser().resolve()
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserInputError(f"input '{source}' is not an image ({', '.join(IMAGE_SUFFIXES)}).")
        return source.parent, [source]
    return source, list_images(source, "input folder")


def _names(files: list[Path], root: Path) -> dict[str, Path]:
    """Output name (relative, ``.png``) -> input file; two inputs that would write one output stop the run."""
    names: dict[str, Path] = {}
    for file in files:
        name = file.relative_to(root).with_suffix(".png").as_posix()
        if name in names:
            raise UserInputError(f"'{names[name]}' and '{file}' would both be written as '{name}': rename one.")
        names[name] = file
    return names


def _check_headers(names: dict[str, Path], skip_bad: bool, failed: dict) -> dict[str, Path]:
    """Every input's header before the first image is written: unreadable ones stop the run (named), or are left
    out with ``skip_bad=true`` (listed in the manifest)."""
    good = {}
    for name, file in tqdm(names.items(), desc="check inputs", unit="img", disable=len(names) < 500):
        try:
            image_size(file)
        except UserInputError as err:
            if not skip_bad:
                raise UserInputError(f"{err} (skip_bad=true restores the other images and lists this one)") from None
            failed[name] = str(err)
            continue
        good[name] = file
    return good


def _check_seams(cfg: DictConfig, restorer: Restorer, todo: dict[str, Path]) -> dict | None:
    """When some image will be restored in tiles and ``tile_margin`` is narrower than the network's receptive field,
    warn with the difference it causes, measured on a crop of the first such image (:meth:`Restorer.seams`)."""
    first = next(((name, file, tile) for name, file in todo.items()
                  if (tile := Restorer.tile_for(image_size(file), cfg.tile))), None)
    if first is None:
        return None
    name, file, tile = first
    image = read_image_and_depth(file)[0].to(restorer.device)
    seams = restorer.seams(image, tile, int(cfg.tile_margin), int(cfg.tile_multiple), cfg.get("noise_level"))
    if seams and seams["max_difference_grey_levels"] > 0:
        message = (f"tile_margin={seams['tile_margin']} is narrower than the network's receptive field (radius "
                   f"{'at least ' if seams['at_least'] else ''}{seams['receptive_radius']} px, from its gradient): "
                   f"tiles differ from restoring the image whole by up to {seams['max_difference_grey_levels']:.2f} "
                   f"grey levels (measured on a {seams['crop'][0]}x{seams['crop'][1]} crop of '{name}' in tiles of "
                   f"{seams['tile']} px); tile_margin={seams['receptive_radius']} or more"
                   f"{'' if seams['at_least'] else ' removes them'}, tile=0 restores whole images.")
        log.warning(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)
    return seams


def _restore_one(restorer: Restorer, image: torch.Tensor, name: str, cfg: DictConfig) -> tuple[torch.Tensor, int]:
    """The restored image and the tile size used (0: whole); a whole image that runs out of memory is retried
    in tiles, halved until it fits."""
    options = {"tile_margin": int(cfg.tile_margin), "tile_multiple": int(cfg.tile_multiple),
               "self_ensemble": bool(cfg.self_ensemble), "noise_level": cfg.get("noise_level"),
               "precision": str(cfg.precision), "channels_last": bool(cfg.channels_last)}
    tile = Restorer.tile_for(image.shape[-2:], cfg.tile)
    if tile and str(cfg.tile) == "auto":
        log.info("%s is %.1f megapixels: restored in tiles of %d px (tile=0 forces whole images)", name,
                 image.shape[-2] * image.shape[-1] / 1e6, tile)
    while True:
        try:
            return restorer.restore_batch(image[None], tile=tile, **options)[0], tile
        except (torch.OutOfMemoryError, RuntimeError) as err:
            text = str(err).lower()
            if "out of memory" not in text and "can't allocate" not in text and "not enough memory" not in text:
                raise
            smaller = tile // 2 if tile else min(api.AUTO_TILE, max(image.shape[-2:]) // 2)
            if smaller < 16:
                raise UserInputError(f"'{name}' does not fit in memory even in tiles of {tile or 'its'} px.") from err
            log.warning("%s ran out of memory %s: retrying in tiles of %d px", name,
                        f"in tiles of {tile} px" if tile else "whole", smaller)
            if restorer.device.type == "cuda":
                torch.cuda.empty_cache()
            tile = smaller


def restore(cfg: DictConfig) -> dict:
    start = time.time()
    run_dir = output_dir(cfg)
    save_config(cfg, run_dir)
    root, files = _inputs(cfg)
    target = check_separate({"input": root}, str(cfg.output), "output folder")
    png_bits(cfg.bit_depth, 8)  # check the option before any work
    device = task_device(cfg)
    several = wants_several_processes(cfg.get("trainer") or {})  # each rank's device is Lightning's to choose
    restorer = load_restorer(cfg.ckpt, device=torch.device("cpu") if several else device)
    restorer.network(cfg.get("noise_level"))  # a blind model given a level, a non-blind one without: stop now
    settings = {"ckpt": str(Path(str(cfg.ckpt)).expanduser().resolve()), "tile": str(cfg.tile),
                "tile_margin": int(cfg.tile_margin), "self_ensemble": bool(cfg.self_ensemble),
                "noise_level": cfg.get("noise_level"), "precision": str(cfg.precision),
                "bit_depth": str(cfg.bit_depth)}
    bf16 = uses_bf16(device, cfg.precision)
    owner = is_launcher_process()  # not one of the processes Lightning starts for hardware=ddp
    with OutputLock(target, what="output folder") if owner else nullcontext():
        check_foreign(target, bool(cfg.overwrite))
        manifest_path = target / "manifest.json"
        done = load_manifest(manifest_path, settings, what="restored images")
        failed: dict[str, str] = {}
        leftovers, _ = merge_rank_manifests(manifest_path, settings, done, failed, what="restored images")
        names = _check_headers(_names(files, root), bool(cfg.skip_bad), failed)
        for name in names:  # every file it will write lies inside the output folder, through no link
            contained_path(target, name)
        todo = {n: f for n, f in names.items() if not (n in done and (target / n).is_file())}
        seams = _check_seams(cfg, restorer, todo) if owner else None

        def save_manifest():
            atomic_write_json(manifest_path, {
                "settings": settings, "input": str(root), "model": type(restorer.module.net).__name__,
                "scale": restorer.scale, "precision": "bf16" if bf16 else "float32", "versions": package_versions(),
                "orientation": ORIENTATION_NOTE,
                "files": done, "failed": failed})

        if owner:
            save_manifest()
            for rank_file in leftovers:
                rank_file.unlink()
        times = _run(cfg, restorer, todo, target, done, failed, save_manifest, settings)
        if not times.pop("is_global_zero"):
            return {}  # another rank of a sharded run: rank 0 merges, records and reports
        rank_files, entries = merge_rank_manifests(manifest_path, settings, done, failed, what="restored images")
        save_manifest()
        for rank_file in rank_files:
            rank_file.unlink()
        if rank_files:  # a sharded run: every rank's images, as their manifests list them
            times["images"] = entries
    summary = {"images": len(names), "restored": len(done), "restored_now": times["images"], "failed": len(failed),
               "output": str(target), "precision": "bf16" if bf16 else "float32", "processes": times["processes"],
               "seconds": times, **({"tile_seams": seams} if seams else {})}
    write_summary(run_dir, task="restore", ckpt=str(cfg.ckpt), params=count_parameters(restorer.module),
                  global_step=restorer.record.get("global_step"), wall_seconds=round(time.time() - start, 2),
                  seed=int(cfg.seed), **summary)
    table = _timing_table(times)
    atomic_write_text(run_dir / "restore.md", f"# Restore of {cfg.ckpt}\n\n{len(done)} images in `{target}`"
                      f"{f', {len(failed)} unreadable (manifest.json lists them)' if failed else ''}.\n\n{table}")
    processes = f" in {times['processes']} processes (the table: rank 0's share)" if times["processes"] > 1 else ""
    print(f"restored {times['images']} images now ({len(done)} in total) into {target}{processes}"
          + (f"; {len(failed)} unreadable images left out (listed in manifest.json)" if failed else ""))
    if times["images"]:
        print(table)
    return summary


def _timing_table(times: dict) -> str:
    wall = max(times["wall"], 1e-9)
    rows = [[what, round(times[key], 2), f"{100 * times[key] / wall:.0f} %"] for what, key in
            (("network", "network"), ("decoding (reader threads, overlapped)", "decode"),
             ("encoding + writing (writer threads, overlapped)", "encode"),
             ("waiting for decoded images", "wait"), ("wall", "wall"))]
    rows.append(["megapixels per second (network)", round(times["megapixels"] / max(times["network"], 1e-9), 3), ""])
    return markdown_table(["", "seconds", "share of wall"], rows)


def _run(cfg, restorer: Restorer, todo: dict[str, Path], target: Path, done: dict, failed: dict,
         save_manifest, settings: dict) -> dict:
    """Decode ahead, restore, encode and write behind: in threads around this process
    (:func:`~degrade_lab.utils.overlap.overlapped`), or sharded over the processes ``hardware=`` asks for
    (:func:`~degrade_lab.utils.sharded.sharded`, each rank recording its files in its own manifest)."""
    count = {"images": 0, "megapixels": 0.0}
    mine: dict = {}  # what this process restored (a sharded run's rank manifest)
    mine_failed: dict = {}

    def read(item):
        name, file = item
        try:
            return (*read_image_and_depth(file), orientation(file))
        except UserInputError as err:
            if not cfg.skip_bad:
                raise UserInputError(f"{err} (skip_bad=true restores the other images and lists this one)") from None
            return err

    def compute(item, data, device):
        name, file = item
        if isinstance(data, UserInputError):
            failed[name] = mine_failed[name] = str(data)
            return None
        if restorer.device != device:
            restorer.to(device)
        image, bits, turned = data
        torch.manual_seed(image_seed(int(cfg.seed), name))  # a sampling restorer (VDIR) repeats itself
        tic = time.perf_counter()
        restored, tile = _restore_one(restorer, image, name, cfg)
        restored = restored.clamp(0, 1).cpu()
        out_bits = png_bits(cfg.bit_depth, bits)
        count["megapixels"] += image.shape[-2] * image.shape[-1] / 1e6
        entry = {"source": str(file), "size": list(image.shape[-2:]), "bits": out_bits, "tile": tile,
                 "seconds": round(time.perf_counter() - tic, 4)}
        if turned != 1:  # read as the camera meant it (EXIF orientation applied), written upright
            entry["exif_orientation"] = turned
        return restored, out_bits, entry

    def write(item, result):
        restored, out_bits, _ = result
        data = png_bytes(restored, out_bits)
        atomic_write_bytes(contained_path(target, item[0]), data)
        return sha256_bytes(data)

    def finished(item, result, sha):
        done[item[0]] = mine[item[0]] = {**result[2], "sha256": sha}
        count["images"] += 1
        save()

    threads = int(cfg.io_threads)
    if todo and wants_several_processes(cfg.get("trainer") or {}):
        rank_path = [None]

        def save_mine():  # each rank its own manifest; rank 0 merges them at the end
            if rank_path[0] is None:
                rank_path[0] = rank_manifest(target / "manifest.json", torch.distributed.get_rank())
            atomic_write_json(rank_path[0], {"settings": settings, "files": mine, "failed": mine_failed})

        save = PeriodicSave(save_mine)
        times = sharded(list(todo.items()), read, compute, write, finished,
                        OmegaConf.to_container(cfg.trainer, resolve=True), networks=restorer.module,
                        threads=threads, progress=bool(cfg.progress), root=str(output_dir(cfg)),
                        flush=save.now)
        times["waited"] = max(0.0, times["wall"] - times["compute"])
    else:
        save = PeriodicSave(save_manifest)
        progress = tqdm(total=len(todo), desc="restore", unit="img", disable=not cfg.progress)
        times = overlapped(todo.items(), read, lambda item, data: compute(item, data, restorer.device), write,
                           finished, threads, progress)
        progress.close()
        times.update(is_global_zero=True, world=1)
    return {"network": round(times["compute"], 3), "decode": round(times["read"], 3),
            "encode": round(times["write"], 3), "wait": round(times["waited"], 3), "wall": round(times["wall"], 3),
            "megapixels": round(count["megapixels"], 3), "images": count["images"],
            "is_global_zero": times["is_global_zero"], "processes": times["world"]}
