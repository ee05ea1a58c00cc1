"""``degrade-lab evaluate``: score a restorer checkpoint (or the input itself) on paired test images;
with ``degrader=...`` judge a degrader instead (:mod:`degrade_lab.tasks.evaluate_degrader`).

Writes ``metrics.json`` (flat means: ``test/psnr``, ``test/ssim``, ``test/lpips``, ``input/...``; the
weights behind LPIPS under ``labels``, metrics that could not run under ``unavailable``),
``metrics.csv`` (one row per image), ``metrics.md`` (the table) and ``examples/`` (a centre crop of the
first image: degraded | restored | clean, read by ``degrade-lab report``) into the run folder.
Restored images are rounded to 8 bits before scoring, as a saved result would be.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from degrade_lab.degradations.resize import imresize
from degrade_lab.errors import UserInputError
from degrade_lab.metrics import psnr, ssim
from degrade_lab.metrics.image_quality import SSIM_VARIANTS, SSIM_WINDOW
from degrade_lab.metrics.optional import build_or_explain
from degrade_lab.tasks.common import (
    build_data,
    markdown_table,
    metric_notes,
    output_dir,
    save_config,
    save_examples,
    task_device,
    test_pairs,
)
from degrade_lab.utils.checkpoint import load_model
from degrade_lab.utils.inference import self_ensemble, tiled
from degrade_lab.utils.io import (
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    image_size,
    quantize_8bit,
)
from degrade_lab.utils.runs import count_parameters, write_summary


def _restorer(model, cfg: DictConfig, scale: int):
    """The model's forward, with the x8 self-ensemble and tiling the config asks for."""
    if model is None:
        return None
    restore = model
    if cfg.get("self_ensemble"):
        def restore(x, base=model):
            return self_ensemble(base, x)
    tile = int(cfg.get("tile") or 0)
    if tile:
        inner = restore
        multiple = int(cfg.get("tile_multiple") or 8)

        def restore(x):
            return tiled(inner, x, tile, int(cfg.get("tile_margin") or 32), scale, multiple)
    return restore


def _sweep_dataset(cfg: DictConfig, sweep, value):
    """Clean test images degraded by ``sweep.degrader`` with ``sweep.parameter = value`` and the fields of
    ``sweep.options`` (e.g. ``clip: false``, the synthetic benchmarks' unclipped AWGN), fixed seeds."""
    from omegaconf import OmegaConf, open_dict

    from degrade_lab.data.datasets import DegradedImageDataset
    from degrade_lab.data.pairing import PairFolder
    from degrade_lab.degradations.build import build_degrader, degrader_config

    spec = degrader_config(sweep.degrader) if isinstance(sweep.degrader, str) else sweep.degrader
    spec = OmegaConf.create(OmegaConf.to_container(spec, resolve=True))
    with open_dict(spec):
        for key, option in (sweep.get("options") or {}).items():
            OmegaConf.update(spec, str(key), option, merge=False)
        OmegaConf.update(spec, str(sweep.parameter), value, merge=False)
    degrader = build_degrader(OmegaConf.to_container(spec))
    if not str(cfg.data.get("_target_", "")).endswith(".folders"):  # a named data set: its clean test images
        return DegradedImageDataset(None, degrader, seed=int(cfg.seed), files=build_data(cfg.data, kind="clean"))
    spec = PairFolder.of(cfg.data.test)
    folder = spec.clean_dir if spec.clean_dir.is_dir() else spec.root
    return DegradedImageDataset(folder, degrader, seed=int(cfg.seed))


def _table(per_level: dict, parameter: str | None, restored: bool) -> str:
    name = "restored" if restored else "identity"
    if parameter is None:
        means = per_level[None]
        return markdown_table(
            ["", "PSNR (dB)", "SSIM", "LPIPS"],
            [["degraded input", means["input/psnr"], means["input/ssim"], means.get("input/lpips", "n/a")],
             [name, means["test/psnr"], means["test/ssim"], means.get("test/lpips", "n/a")]],
        )
    rows = [[f"{parameter} = {value}", m["input/psnr"], m["test/psnr"], m["input/ssim"], m["test/ssim"],
             m.get("test/lpips", "n/a")] for value, m in per_level.items()]
    return markdown_table([parameter, "input PSNR", f"{name} PSNR (dB)", "input SSIM", f"{name} SSIM", "LPIPS"],
                          rows)


def _check_sizes(dataset, crop: int) -> None:
    """Every clean test image (headers only) must leave SSIM's 11 x 11 window after the border crop."""
    if hasattr(dataset, "pairs"):
        files = [clean for _, clean, _ in dataset.pairs]
    elif hasattr(dataset, "items"):
        files = [p for _, p in dataset.items]
    else:  # a data set's own arrays (SIDD's 256 x 256 blocks): nothing small to refuse
        return
    for file in files:
        height, width = image_size(file)
        if min(height, width) - 2 * crop < SSIM_WINDOW:
            raise UserInputError(
                f"test image '{file}' is {height}x{width}: after the border crop of {crop} pixels it is smaller "
                f"than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window; remove it or lower metrics.crop_border."
            )


def _load_restorer(cfg: DictConfig, scale: int):
    """The restorer of ``cfg.ckpt`` (``(None, None)`` for ``ckpt=identity``), checked against the data."""
    if str(cfg.ckpt) == "identity":
        return None, None
    model, record = load_model(cfg.ckpt)
    if getattr(model, "data_kind", "paired") != "paired":
        name = type(model).__module__.rsplit(".", 1)[-1]  # degrade_lab.lit.NAME: the model's config name
        raise UserInputError(
            f"checkpoint '{cfg.ckpt}' is a degradation model ({type(model).__name__}), not a restorer: judge it "
            f"with degrade-lab evaluate degrader={name} degrader.ckpt={cfg.ckpt}."
        )
    if int(getattr(model, "scale", 1)) != scale:
        raise UserInputError(
            f"checkpoint '{cfg.ckpt}' restores at scale {model.scale} but data.scale is {scale}: "
            f"evaluate it on x{model.scale} pairs (data.scale={model.scale})."
        )
    if cfg.get("noise_level") is not None:
        # non-blind networks (DRUNet with its noise map): a sigma, or auto (each image's estimated level)
        model.noise_level = "auto" if cfg.noise_level == "auto" else float(cfg.noise_level)
    return model, record


def _take_the_images_noise_level(model, cfg: DictConfig, sample: dict) -> None:
    """Non-blind networks (a noise-level map input: DRUNet, FFDNet) get each image's true sigma when the pairs
    are made here by a noise degrader (``sweep.*`` rows), unless ``noise_level=`` fixes one for all."""
    if model is None or cfg.get("noise_level") is not None or not getattr(model.net, "noise_map", False):
        return
    sigma = (sample.get("parameters") or {}).get("sigma")
    if sigma is not None:
        model.noise_level = float(sigma)


def _lpips(cfg: DictConfig, device, unavailable: dict, labels: dict):
    """The LPIPS metric the config asks for, or ``None`` (with the reason under ``unavailable``)."""
    if not cfg.metrics.get("lpips"):
        return None
    from degrade_lab.metrics.lpips import LPIPS

    metric = build_or_explain(["test/lpips", "input/lpips"], lambda: LPIPS(cfg.metrics.lpips, cfg.weights.source),
                              unavailable, labels)
    return metric.to(device) if metric is not None else None


def _groups(cfg: DictConfig, scale: int) -> list:
    """``(sweep value, dataset)`` per table row: the test pairs, or the clean images at each sweep value."""
    sweep = cfg.get("sweep") or {}
    levels = list(sweep.get("values") or []) if sweep.get("degrader") else []
    if not levels:
        return [(None, test_pairs(cfg, scale))]
    return [(value, _sweep_dataset(cfg, sweep, value)) for value in levels]


def _score(sample: dict, restore, scale: int, measure: dict, lpips_metric, device) -> tuple[dict, dict]:
    """One image's row of scores (``measure``: the PSNR and SSIM functions with their conventions bound), and its
    panels (degraded, restored, clean) for the examples."""
    clean = sample["clean"][None].to(device)
    degraded = sample["degraded"][None].to(device)
    restored = restore(degraded).float() if restore is not None else degraded
    if restored.shape != clean.shape:  # the input of an SR pair: bicubic up-sampling
        restored = imresize(restored, scale).clamp(0, 1)
    restored = quantize_8bit(restored)
    baseline = imresize(degraded, scale).clamp(0, 1) if scale > 1 else degraded
    row = {
        "name": sample["name"],
        "test/psnr": float(measure["psnr"](restored, clean)),
        "test/ssim": float(measure["ssim"](restored, clean)),
        "input/psnr": float(measure["psnr"](baseline, clean)),
        "input/ssim": float(measure["ssim"](baseline, clean)),
    }
    if lpips_metric is not None:
        row["test/lpips"] = float(lpips_metric.per_image(restored, clean))
        row["input/lpips"] = float(lpips_metric.per_image(baseline, clean))
    return row, {"degraded": baseline, "restored": restored, "clean": clean}


def _write_outputs(cfg: DictConfig, out: Path, rows: list[dict], per_level: dict, keys: list[str], model,
                   crop: int, labels: dict, unavailable: dict) -> tuple[dict, str]:
    """metrics.json / .csv / .md; returns the metrics and the Markdown table."""
    sweep = cfg.get("sweep") or {}
    levels = [value for value in per_level if value is not None]
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    for value in levels:
        metrics.update({f"{k}@{sweep.parameter}={value}": v for k, v in per_level[value].items()})
    metrics["test/images"] = len(rows)
    metrics["labels"], metrics["unavailable"] = labels, unavailable
    atomic_write_csv(out / "metrics.csv", rows, ["name", *([str(sweep.parameter)] if levels else []), *keys])
    atomic_write_json(out / "metrics.json", metrics)
    table = _table(per_level, sweep.get("parameter") if levels else None, model is not None)
    options = [name for name, on in (("x8 self-ensemble", cfg.get("self_ensemble")),
                                     (f"tiles of {cfg.get('tile')} px", cfg.get("tile"))) if on]
    source = (f"clean images `{cfg.data.test}` degraded by `{sweep.degrader}` at {sweep.parameter} = {levels}"
              if levels else f"test pairs `{cfg.data.test}`")
    atomic_write_text(
        out / "metrics.md",
        f"# Evaluation of {'input (identity)' if model is None else cfg.ckpt}\n\n{source} ({len(rows)} images), "
        f"{'Y (BT.601)' if cfg.metrics.y_channel else 'RGB'}, border crop {crop}"
        f"{', ' + ', '.join(options) if options else ''}.\n\n{table}\n{metric_notes(labels, unavailable)}",
    )
    return metrics, table


def _submit(cfg: DictConfig, out: Path, dataset, model, restore, record, start: float) -> dict:
    """A benchmark without ground truth (DND, SIDD's benchmark blocks): every image restored and written in the
    benchmark's submission format under ``out/submission`` (the data set's ``submission`` writer), with the
    seconds per megapixel the benchmarks ask for; nothing is scored."""
    if model is None:
        raise UserInputError(f"data.test={cfg.data.test} has no ground truth: there is nothing to score for "
                             "ckpt=identity; give a restorer's checkpoint to write its submission.")
    writer = dataset.submission(out / "submission")
    seconds, pixels = 0.0, 0
    with torch.inference_mode():
        for sample in tqdm(dataset, desc="restore for the submission", unit="img", disable=not cfg.progress):
            degraded = sample["degraded"][None].to(next(model.parameters()).device)
            began = time.perf_counter()
            restored = restore(degraded).float()
            seconds += time.perf_counter() - began
            pixels += degraded.shape[-1] * degraded.shape[-2]
            writer.add(sample["name"], restored[0])
    per_megapixel = seconds / max(pixels / 1e6, 1e-12)
    folder = writer.close(per_megapixel)
    metrics = {"test/images": len(dataset), "seconds_per_megapixel": per_megapixel, "submission": str(folder),
               "labels": {}, "unavailable": {"test/psnr": "no ground truth: upload the submission to the benchmark"}}
    atomic_write_json(out / "metrics.json", metrics)
    text = (f"# Submission of {cfg.ckpt}\n\n{len(dataset)} images of `{cfg.data.test}` restored "
            f"({per_megapixel:.3f} s per megapixel); no ground truth to score against: upload `{folder}` to the "
            "benchmark's server.\n")
    atomic_write_text(out / "metrics.md", text)
    write_summary(out, task="evaluate", ckpt=str(cfg.ckpt), params=count_parameters(model),
                  global_step=None if record is None else record.get("global_step"),
                  wall_seconds=round(time.time() - start, 2), seed=cfg.seed, metrics=metrics)
    print(text)
    return metrics


def _check_request(cfg: DictConfig) -> None:
    if not cfg.data.get("test"):
        raise UserInputError("evaluate needs test pairs: data.test=DIR (with clean/ and degraded/).")
    if cfg.get("degrader") is not None and cfg.get("ckpt") is not None:
        raise UserInputError("give either ckpt=... (a restorer) or degrader=... (a degrader), not both.")
    if cfg.get("degrader") is None and cfg.get("ckpt") is None:
        raise UserInputError(
            "evaluate needs ckpt=RUN/checkpoints/last.ckpt (a restorer; ckpt=identity scores the input) "
            "or degrader=NAME (a degrader, e.g. degrader=ludvae degrader.ckpt=RUN/checkpoints/last.ckpt)."
        )


def evaluate(cfg: DictConfig) -> dict:
    """Score a restorer (or the input) on test pairs; ``degrader=...`` judges a degrader instead."""
    _check_request(cfg)
    if cfg.get("degrader") is not None:
        from degrade_lab.tasks.evaluate_degrader import evaluate_degrader

        return evaluate_degrader(cfg)
    start = time.time()
    out = output_dir(cfg)
    save_config(cfg, out)
    scale, device = int(cfg.data.get("scale", 1)), task_device(cfg)
    model, record = _load_restorer(cfg, scale)
    restore = _restorer(model.to(device), cfg, scale) if model is not None else None
    # the default border: the scale for SR (BasicSR's convention), none for denoising
    crop = (scale if scale > 1 else 0) if cfg.metrics.get("crop_border") is None else int(cfg.metrics.crop_border)
    y_channel, variant = bool(cfg.metrics.y_channel), str(cfg.metrics.get("ssim", "torchmetrics"))
    if variant not in SSIM_VARIANTS:
        raise UserInputError(f"metrics.ssim={variant}: expected one of {', '.join(SSIM_VARIANTS)}.")
    measure = {"psnr": partial(psnr, crop_border=crop, y_channel=y_channel),
               "ssim": partial(ssim, crop_border=crop, y_channel=y_channel, variant=variant)}
    unavailable, labels = {}, {"test/ssim": SSIM_VARIANTS[variant], "input/ssim": SSIM_VARIANTS[variant]}
    lpips_metric = _lpips(cfg, device, unavailable, labels)
    keys = ["test/psnr", "test/ssim", "input/psnr", "input/ssim"]
    keys += ["test/lpips", "input/lpips"] if lpips_metric is not None else []
    groups = _groups(cfg, scale)
    if len(groups) == 1 and getattr(groups[0][1], "ground_truth", True) is False:
        return _submit(cfg, out, groups[0][1], model, restore, record, start)
    for _, dataset in groups:
        _check_sizes(dataset, crop)
    rows, per_level = [], {}
    with torch.inference_mode():
        for value, dataset in groups:
            desc = "evaluate" if value is None else f"evaluate {cfg.sweep.parameter}={value}"
            level_rows = []
            for sample in tqdm(dataset, desc=desc, unit="img", disable=not cfg.progress):
                _take_the_images_noise_level(model, cfg, sample)
                row, panels = _score(sample, restore, scale, measure, lpips_metric, device)
                if value is not None:
                    row[str(cfg.sweep.parameter)] = value
                if not rows and not level_rows:
                    save_examples(out / "examples", panels)
                level_rows.append(row)
            if not level_rows:
                raise UserInputError(f"no test images in '{cfg.data.test}'.")
            per_level[value] = {k: sum(r[k] for r in level_rows) / len(level_rows) for k in keys}
            rows += level_rows
    metrics, table = _write_outputs(cfg, out, rows, per_level, keys, model, crop, labels, unavailable)
    write_summary(
        out, task="evaluate", ckpt=str(cfg.ckpt), params=count_parameters(model),
        global_step=None if record is None else record.get("global_step"),
        wall_seconds=round(time.time() - start, 2), seed=cfg.seed, metrics=metrics,
    )
    print(table)
    return metrics
