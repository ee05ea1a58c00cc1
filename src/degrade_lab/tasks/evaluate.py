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

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from degrade_lab.data.datasets import PairedImageDataset
from degrade_lab.degradations.resize import imresize
from degrade_lab.errors import UserInputError
from degrade_lab.metrics import psnr, ssim
from degrade_lab.metrics.optional import build_or_explain
from degrade_lab.tasks.common import markdown_table, output_dir, save_config
from degrade_lab.utils.checkpoint import load_model
from degrade_lab.utils.io import (
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    quantize_8bit,
    write_png,
)
from degrade_lab.utils.runs import count_parameters, write_summary


def save_examples(folder, images: dict[str, torch.Tensor], size: int = 128) -> None:
    """A centre crop of each panel (``examples/<name>.png``), at the clean image's position."""
    for name, image in images.items():
        height, width = image.shape[-2:]
        top, left = max((height - size) // 2, 0), max((width - size) // 2, 0)
        write_png(folder / f"{name}.png", image[0, :, top : top + size, left : left + size].float().cpu())


def metric_notes(labels: dict, unavailable: dict) -> str:
    """Markdown lines naming the weights behind each number and why any metric is missing."""
    lines = [f"- `{key}`: {label}" for key, label in labels.items()]
    lines += [f"- `{key}` unavailable: {reason}" for key, reason in unavailable.items()]
    return ("Weights and notes:\n\n" + "\n".join(lines) + "\n") if lines else ""


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

    unavailable, labels = {}, {}
    lpips_metric = None
    if cfg.metrics.get("lpips"):
        from degrade_lab.metrics.lpips import LPIPS

        lpips_metric = build_or_explain(["test/lpips", "input/lpips"],
                                        lambda: LPIPS(cfg.metrics.lpips, cfg.weights.source), unavailable, labels)
        if lpips_metric is not None:
            lpips_metric.to(device)

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
            if lpips_metric is not None:
                rows[-1]["test/lpips"] = float(lpips_metric.per_image(restored, clean))
                rows[-1]["input/lpips"] = float(lpips_metric.per_image(baseline, clean))
            if len(rows) == 1:
                save_examples(out / "examples", {"degraded": baseline, "restored": restored, "clean": clean})
    keys = ["test/psnr", "test/ssim", "input/psnr", "input/ssim"]
    keys += ["test/lpips", "input/lpips"] if lpips_metric is not None else []
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    metrics["test/images"] = len(rows)
    metrics["labels"], metrics["unavailable"] = labels, unavailable

    atomic_write_csv(out / "metrics.csv", rows, ["name", *keys])
    atomic_write_json(out / "metrics.json", metrics)
    label = "input (identity)" if model is None else str(cfg.ckpt)
    def lpips_of(prefix):
        return metrics.get(f"{prefix}/lpips", "n/a")

    table = markdown_table(
        ["", "PSNR (dB)", "SSIM", "LPIPS"],
        [["degraded input", metrics["input/psnr"], metrics["input/ssim"], lpips_of("input")],
         ["restored" if model is not None else "identity", metrics["test/psnr"], metrics["test/ssim"],
          lpips_of("test")]],
    )
    conventions = "RGB" if not y_channel else "Y (BT.601)"
    atomic_write_text(
        out / "metrics.md",
        f"# Evaluation of {label}\n\nTest pairs: `{cfg.data.test}` ({len(rows)} images), {conventions}, "
        f"border crop {crop}.\n\n{table}\n{metric_notes(labels, unavailable)}",
    )
    write_summary(
        out, task="evaluate", ckpt=str(cfg.ckpt), params=count_parameters(model),
        global_step=None if record is None else record.get("global_step"),
        wall_seconds=round(time.time() - start, 2), seed=cfg.seed, metrics=metrics,
    )
    print(table)
    return metrics
