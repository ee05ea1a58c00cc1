"""``degrade-lab calibrate ckpt=RUN/checkpoints/best.ckpt``: tune a trained degradation model's noise strength
from the degraded folder alone, and store the result in the checkpoint.

The model's calibration option (LUD-VAE: the inference pre-noise level; SeNM-VAE: the level; DeFlow: the
temperature) is chosen so that the noise of its synthetic images (made from clean images; the blind estimator's
reading, or for DeFlow their residual) matches the blind reading of the real degraded folder
(:mod:`degrade_lab.degradations.calibration`); no clean / degraded pair is used. The clean and degraded folders
default to the run's own ``data.source`` / ``data.target`` (a ``data.split_from`` run: the split's two domains).
The result goes into the checkpoint (``store=false``: only reported), where every later ``synthesize`` /
``evaluate degrader=`` / ``data.degrader=CKPT`` takes it unless the option is given; ``calibration.json`` and
``results.md`` in the run folder show the search. ``degrade-lab train`` calibrates its checkpoints this way when
training ends.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from degrade_lab.data.datasets import spread
from degrade_lab.data.transforms import center_crop
from degrade_lab.degradations import calibration
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import domain_files, markdown_table, output_dir, save_config, task_device
from degrade_lab.utils.checkpoint import load_model, store_calibration
from degrade_lab.utils.io import atomic_write_json, atomic_write_text, list_images, read_image
from degrade_lab.utils.runs import write_summary
from degrade_lab.utils.trusted_targets import COMMAND_LINE, get_class

log = logging.getLogger(__name__)


Images = str | Path | list[str | Path]


def image_files(images: Images, what: str) -> list[Path]:
    """The images of a folder (sorted), or a list of image files as given (sorted)."""
    if isinstance(images, str | Path):
        return list_images(images, what)
    files = sorted(Path(file) for file in images)
    if not files:
        raise UserInputError(f"the {what} list is empty")
    return files


def describe_images(images: Images) -> str:
    """A folder's path, or ``"N images under DIR"`` for a list of files."""
    if isinstance(images, str | Path):
        return str(images)
    files = image_files(images, "image")
    if len(files) == 1:
        return f"1 image, {files[0]}"
    return f"{len(files)} images under {os.path.commonpath([str(f) for f in files])}"


def clean_crops(images: Images, count: int, crop: int, multiple: int = 1) -> list[torch.Tensor]:
    """Centre crops (``crop`` pixels, whole images where smaller) of up to ``count`` images spread evenly over
    the sorted folder (or list of files), each then cut at its bottom and right edges to a multiple of ``multiple``
    (the model's scale: its clean operator, x4 bicubic, needs whole low-resolution pixels; the papers' data
    preparation crops so too, MATLAB's ``modcrop``). Images smaller than ``multiple`` are left out."""
    files = spread(image_files(images, "clean folder"), count)
    crops, cut = [], 0
    for file in files:
        image = center_crop(read_image(file), crop)
        height, width = image.shape[-2:]
        if height < multiple or width < multiple:
            log.warning("'%s' (%dx%d) is smaller than the scale %d: left out of the calibration", file, height, width,
                        multiple)
            continue
        cut += bool(height % multiple or width % multiple)
        crops.append(image[:, : height - height % multiple, : width - width % multiple].contiguous())
    if cut:
        log.info("calibration: %d of %d clean images cut at the bottom / right to a multiple of the scale %d",
                 cut, len(crops), multiple)
    if not crops:
        raise UserInputError(f"no clean image of {describe_images(images)} is at least {multiple} pixels on each side.")
    return crops


def calibrate_checkpoint(ckpt: str | Path, source: Images | None = None, target: Images | None = None,
                         images: int = 32, crop: int = 256, search_range=None, seed: int = 0, store: bool = True,
                         device: torch.device | str = "cpu", progress: bool = False, statistic: str | None = None) -> dict:
    """Calibrate the degradation model of ``ckpt`` (see the module docstring); returns the calibration
    record (also stored in the checkpoint when ``store``). ``source`` / ``target``: folders or lists of image
    files (a ``data.split_from`` run's two domains)."""
    from degrade_lab.tasks.estimate_noise import estimate_folder

    module, record = load_model(ckpt)
    option = getattr(module, "calibration_option", None)
    if option is None or not getattr(module, "degrader_target", None):
        raise UserInputError(f"checkpoint '{ckpt}' holds a {type(module).__name__}, which has nothing to calibrate "
                             "(calibration tunes degradation models: model=ludvae, senmvae).")
    data = record["config"].get("data") or {}
    if not (source and target) and not (data.get("source") and data.get("target")) and data.get("_target_"):
        # the run's own two domains when they are not plain folders (a data.split_from split, SIDD, ...)
        clean, degraded = domain_files(data, origin=ckpt)
        source, target = source or clean, target or degraded
    source, target = source or data.get("source"), target or data.get("target")
    if not source or not target:
        raise UserInputError("calibrate needs clean images to synthesize from and the degraded folder to match: "
                             "data.source=CLEAN_DIR data.target=DEGRADED_DIR (the run's own are used when it has them).")
    low, high = (float(v) for v in (search_range or module.calibration_range))
    module.calibration = None  # search from the model itself, not from an earlier calibration
    degrader = get_class(module.degrader_target, origin=COMMAND_LINE)(module=module).to(device)  # a class attribute
    reference = (estimate_folder(target, progress=False) if isinstance(target, str | Path) else
                 estimate_folder(describe_images(target), progress=False, files=image_files(target, "degraded")))
    scale = int(getattr(degrader, "scale", 1) or 1)
    clean = [image.to(device) for image in clean_crops(source, images, crop, multiple=scale)]
    statistic = statistic or getattr(module, "calibration_statistic", "reading")
    result = calibration.calibrate(degrader, clean, reference, option, low, high, seed=seed, progress=progress,
                                   statistic=statistic)
    result.update(source=describe_images(source), target=describe_images(target), checkpoint=str(ckpt),
                  range=[low, high])
    if store:
        store_calibration(ckpt, result)
    log.info("calibrated %s: %s = %g (noise std %.2f synthetic / %.2f target)%s", ckpt, option, result["value"],
             result["noise_std_synthetic"], result["noise_std_target"], "; stored in the checkpoint" if store else "")
    return result


def report(result: dict) -> str:
    """The search as a Markdown table, best first line."""
    rows = [[f"{value:g}", f"{distance:.4g}"] for value, distance in sorted(result["tried"])]
    return (f"# Calibration of {result['checkpoint']}\n\n"
            f"`{result['option']}` = **{result['value']:g}**: noise std {result['noise_std_synthetic']:.2f} on "
            f"{result['images']} synthetic images from `{result['source']}` "
            + {"reading": "(blind estimator, largest of the 1x / 2x / 4x readings) ",
               "residual": "(std of synthetic - T(clean), T the task's operator) ",
               "residual_reading": "(blind estimator on synthetic - T(clean) laid over blurred T(clean)) ",
               }[result.get("statistic", "reading")]
            + f"against {result['noise_std_target']:.2f} on `{result['target']}` (blind estimator; ratio "
            f"{result['ratio']:.3f}). No clean / degraded pair was used.\n\n"
            + markdown_table([result["option"], "distance (mean squared log ratio)"], rows))


def calibrate(cfg: DictConfig) -> dict:
    """The ``degrade-lab calibrate`` task (see the module docstring)."""
    start = time.time()
    out = output_dir(cfg)
    save_config(cfg, out)
    data = cfg.get("data") or {}
    result = calibrate_checkpoint(
        cfg.ckpt, data.get("source"), data.get("target"), int(cfg.images), int(cfg.crop),
        list(cfg.range) if cfg.get("range") else None, int(cfg.seed), bool(cfg.store), task_device(cfg),
        bool(cfg.progress), cfg.get("statistic"),
    )
    atomic_write_json(out / "calibration.json", result)
    text = report(result)
    atomic_write_text(out / "results.md", text)
    print(text)
    write_summary(out, task="calibrate", params=None, global_step=None, wall_seconds=round(time.time() - start, 2),
                  seed=int(cfg.seed), metrics={result["option"]: result["value"], "distance": result["distance"]})
    return result

