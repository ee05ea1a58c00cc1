"""``degrade-lab evaluate``: score a restorer checkpoint (or the input itself) on paired test images;
with ``degrader=...`` judge a degrader instead (:mod:`degrade_lab.tasks.evaluate_degrader`).

Writes ``metrics.json`` (flat means: ``test/psnr``, ``test/ssim``, ``input/psnr``, ``input/ssim``),
``metrics.csv`` (one row per image) and ``metrics.md`` (the table) into the run folder.
Restored images are rounded to 8 bits before scoring, as a saved result would be.
"""

from __future__ import annotations

import time

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from degrade_lab.data.datasets import PairedImageDataset
from degrade_lab.degradations.resize import imresize
from degrade_lab.errors import UserInputError
from degrade_lab.metrics import psnr, ssim
from degrade_lab.tasks.common import markdown_table, output_dir, save_config
from degrade_lab.utils.checkpoint import load_model
from degrade_lab.utils.io import atomic_write_csv, atomic_write_json, atomic_write_text, quantize_8bit
from degrade_lab.utils.runs import count_parameters, write_summary


def evaluate(cfg: DictConfig) -> dict:
    if not cfg.data.get("test"):
        raise UserInputError("evaluate needs test pairs: data.test=DIR (with clean/ and degraded/).")
    if cfg.get("degrader") is not None:
        if cfg.get("ckpt") is not None:
            raise UserInputError("give either ckpt=... (a restorer) or degrader=... (a degrader), not both.")
        from degrade_lab.tasks.evaluate_degrader import evaluate_degrader

        return evaluate_degrader(cfg)
    if cfg.get("ckpt") is None:
        raise UserInputError(
            "evaluate needs ckpt=RUN/checkpoints/last.ckpt (a restorer; ckpt=identity scores the input) "
            "or degrader=NAME (a degrader, e.g. degrader=ludvae degrader.ckpt=RUN/checkpoints/last.ckpt)."
        )
    start = time.time()
    out = output_dir(cfg)
    save_config(cfg, out)
    scale = int(cfg.data.get("scale", 1))
    model, record = (None, None) if str(cfg.ckpt) == "identity" else load_model(cfg.ckpt)
    if model is not None and int(getattr(model, "scale", 1)) != scale:
        raise UserInputError(
            f"checkpoint '{cfg.ckpt}' restores at scale {model.scale} but data.scale is {scale}."
        )
    crop = int(cfg.metrics.crop_border)
    y_channel = bool(cfg.metrics.y_channel)
    dataset = PairedImageDataset(cfg.data.test, scale=scale)
    device = torch.device(cfg.device)
    if model is not None:
        model.to(device)

    rows = []
    with torch.inference_mode():
        for sample in tqdm(dataset, desc="evaluate", unit="img", disable=not cfg.progress):
            clean = sample["clean"][None].to(device)
            degraded = sample["degraded"][None].to(device)
            restored = model(degraded).float() if model is not None else degraded
            if restored.shape != clean.shape:  # the input of an SR pair: bicubic up-sampling
                restored = imresize(restored, scale).clamp(0, 1)
            restored = quantize_8bit(restored)
            baseline = imresize(degraded, scale).clamp(0, 1) if scale > 1 else degraded
            rows.append({
                "name": sample["name"],
                "test/psnr": float(psnr(restored, clean, crop, y_channel)),
                "test/ssim": float(ssim(restored, clean, crop, y_channel)),
                "input/psnr": float(psnr(baseline, clean, crop, y_channel)),
                "input/ssim": float(ssim(baseline, clean, crop, y_channel)),
            })
    keys = ["test/psnr", "test/ssim", "input/psnr", "input/ssim"]
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    metrics["test/images"] = len(rows)

    atomic_write_csv(out / "metrics.csv", rows, ["name", *keys])
    atomic_write_json(out / "metrics.json", metrics)
    label = "input (identity)" if model is None else str(cfg.ckpt)
    table = markdown_table(
        ["", "PSNR (dB)", "SSIM"],
        [["degraded input", metrics["input/psnr"], metrics["input/ssim"]],
         ["restored" if model is not None else "identity", metrics["test/psnr"], metrics["test/ssim"]]],
    )
    conventions = "RGB" if not y_channel else "Y (BT.601)"
    atomic_write_text(
        out / "metrics.md",
        f"# Evaluation of {label}\n\nTest pairs: `{cfg.data.test}` ({len(rows)} images), {conventions}, "
        f"border crop {crop}.\n\n{table}",
    )
    write_summary(
        out, task="evaluate", ckpt=str(cfg.ckpt), params=count_parameters(model),
        global_step=None if record is None else record.get("global_step"),
        wall_seconds=round(time.time() - start, 2), seed=cfg.seed, metrics=metrics,
    )
    print(table)
    return metrics
