"""``degrade-lab prepare RECIPE data.root=DIR output=DIR``: the preprocessing the papers did to a data set, written
once (the recipes: :mod:`degrade_lab.data.preparation`).

Every file is written atomically (a killed run leaves no half-written file) and recorded in ``output/manifest.json``
with its source and SHA-256; rerunning the same command skips what is there and completes the rest, and a run with
other settings into the same folder is refused. Sources are decoded by ``workers`` threads (decoding and PNG encoding
release the GIL), each source once for all the files made from it. The output folder may not overlap
``data.root``: point a data set at both with ``data.root=[DIR,OUTPUT]``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from degrade_lab.data.preparation import RECIPES, Job
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import output_dir, save_config
from degrade_lab.utils.io import (
    atomic_write_bytes,
    atomic_write_json,
    check_separate,
    contained_path,
    png_bytes,
    sha256_bytes,
)
from degrade_lab.utils.lock import OutputLock
from degrade_lab.utils.manifest import PeriodicSave, load_manifest
from degrade_lab.utils.runs import package_versions, write_summary


def _write(job: Job, target: Path) -> dict[str, dict]:
    """Make one job's files and write each atomically; returns their manifest entries."""
    made = job.make()
    if sorted(made) != sorted(job.outputs):
        raise RuntimeError(f"recipe job for {job.source} made {sorted(made)[:3]} ..., not its outputs")
    entries = {}
    for relative, image in made.items():
        data = png_bytes(image, job.bits)
        atomic_write_bytes(contained_path(target, relative), data)
        entries[relative] = {"source": job.source, "sha256": sha256_bytes(data), "bit_depth": job.bits,
                             "size": list(image.shape[-2:])}
    return entries


def prepare(cfg: DictConfig) -> dict:
    start = time.time()
    run_dir = output_dir(cfg)
    save_config(cfg, run_dir)
    recipe = str(cfg.get("recipe") or "")
    if recipe not in RECIPES:
        raise UserInputError(f"prepare needs a recipe: degrade-lab prepare RECIPE data.root=DIR output=DIR, with "
                             f"RECIPE one of {', '.join(RECIPES)} (got {recipe or 'none'}).")
    roots = cfg.data.root if OmegaConf.is_list(cfg.data.root) else [cfg.data.root]
    if not cfg.get("output") or not all(roots):
        raise UserInputError("prepare needs data.root=DIR (the data set as shipped) and output=DIR.")
    target = check_separate({f"data.root {i}": str(root) for i, root in enumerate(roots)}, str(cfg.output))
    options = {k: v for k, v in OmegaConf.to_container(cfg.options, resolve=True).items() if v is not None}
    settings = {"recipe": recipe, "options": options, "seed": int(cfg.seed)}
    jobs = RECIPES[recipe](roots[0] if len(roots) == 1 else roots, seed=int(cfg.seed), **options)
    writers: dict[str, str] = {}  # two sources that would write one file (a.png and a.jpg): refused, naming both
    for job in jobs:
        for relative in job.outputs:
            if writers.setdefault(relative, str(job.source)) != str(job.source):
                raise UserInputError(f"'{writers[relative]}' and '{job.source}' would both be written as "
                                     f"'{relative}': rename or remove one.")
            contained_path(target, relative)
    with OutputLock(target, what="output folder"):
        manifest_path = target / "manifest.json"
        done = load_manifest(manifest_path, settings, what="prepared files")

        def save_manifest():
            atomic_write_json(manifest_path, {"settings": settings, "data_root": [str(r) for r in roots],
                                              "versions": package_versions(), "files": done})

        save_manifest()  # before the first file: a second writer with other settings is refused
        periodic_save = PeriodicSave(save_manifest)
        todo = [job for job in jobs if not all(o in done and (target / o).is_file() for o in job.outputs)]
        written = 0
        with ThreadPoolExecutor(max_workers=max(int(cfg.workers), 1)) as pool, \
                tqdm(total=len(todo), desc=f"prepare {recipe}", unit="source", disable=not cfg.progress) as bar:
            for entries in pool.map(lambda job: _write(job, target), todo):
                done.update(entries)
                written += len(entries)
                bar.update()
                periodic_save()
        save_manifest()
    summary = {"recipe": recipe, "sources": len(jobs), "files": len(done), "written_now": written,
               "output": str(target)}
    write_summary(run_dir, task="prepare", wall_seconds=round(time.time() - start, 2), seed=int(cfg.seed), **summary)
    print(f"prepare {recipe}: wrote {written} files ({len(done)} in total from {len(jobs)} sources) to {target}")
    return summary
