"""``degrade-lab evaluate degrader=...``: judge a degrader, learned or hand-made, against real pairs.

For every test pair (clean, real degraded) the degrader degrades the clean image ``samples`` times
(seeded per image); each synthetic image, rounded to 8 bits as a saved file would be, is compared
with the real one through the noise ``degraded - reference`` where the reference is the clean image
at the degraded side's resolution (MATLAB bicubic for SR):

* ``degradation/kld``: noise-histogram KL(real || synthetic) (:mod:`degrade_lab.metrics.noise_kld`);
* ``degradation/akld``: local-variance KL (:mod:`degrade_lab.metrics.akld`), averaged over samples;
* ``degradation/psnr``: synthetic vs reference (how strong the synthetic degradation is), next to
  ``input/psnr``: real vs reference (how strong the real one is);
* ``degradation/noise_std`` and ``input/noise_std``: the noise standard deviation (0-255);
* ``degradation/mmd`` for LUD-VAE checkpoints: the MMD between q(z|x) and q(z|y) samples on a centre
  crop of every pair (Table 6: the inference-invariance check).

Writes metrics.json / metrics.csv / metrics.md and ``degradation.png`` (see
:mod:`degrade_lab.plots.degradation_sheet`).
"""

from __future__ import annotations

import time

import hydra
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from degrade_lab.data.datasets import PairedImageDataset
from degrade_lab.degradations.resize import imresize
from degrade_lab.errors import UserInputError
from degrade_lab.metrics import akld, gaussian_mmd, noise_kld, psnr
from degrade_lab.plots.degradation_sheet import degradation_sheet
from degrade_lab.tasks.common import markdown_table, output_dir, save_config
from degrade_lab.tasks.synthesize import image_seed
from degrade_lab.utils.io import atomic_write_csv, atomic_write_json, atomic_write_text, quantize_8bit
from degrade_lab.utils.runs import count_parameters, write_summary

KEYS = ["degradation/kld", "degradation/akld", "degradation/psnr", "input/psnr", "degradation/noise_std",
        "input/noise_std"]


def _centre(image: torch.Tensor, size: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    top, left = max((height - size) // 2, 0), max((width - size) // 2, 0)
    return image[..., top : top + size, left : left + size]


def evaluate_degrader(cfg: DictConfig) -> dict:
    start = time.time()
    out = output_dir(cfg)
    save_config(cfg, out)
    degrader = hydra.utils.instantiate(cfg.degrader, _convert_="all")
    if getattr(degrader, "produces", "degraded") != "degraded":
        raise UserInputError(
            "evaluate judges degraders (clean -> degraded); this one is set to produce clean images "
            "(direction=n2c). Use degrader.direction=c2n, or score N2C outputs as a restorer."
        )
    scale = int(getattr(degrader, "scale", 1))
    data_scale = int(cfg.data.get("scale", 1))
    if data_scale not in (1, scale):
        raise UserInputError(f"the degrader works at scale {scale} but data.scale is {data_scale}.")
    device = torch.device(cfg.device)
    degrader.to(device).eval()
    dataset = PairedImageDataset(cfg.data.test, scale=scale)
    samples, mmd_samples = int(cfg.metrics.samples), int(cfg.metrics.mmd_samples)
    has_latents = hasattr(degrader, "latent_samples") and mmd_samples > 1
    rows, sheet = [], []
    with torch.inference_mode():
        for sample in tqdm(dataset, desc="evaluate degrader", unit="img", disable=not cfg.progress):
            clean = sample["clean"][None].to(device)
            real = sample["degraded"][None].to(device)
            reference = imresize(clean, 1 / scale).clamp(0, 1) if scale > 1 else clean
            generator = torch.Generator(device=device).manual_seed(image_seed(int(cfg.seed), sample["name"]))
            synthetic = quantize_8bit(degrader(clean.expand(samples, -1, -1, -1), generator))
            if synthetic.shape[-2:] != real.shape[-2:]:
                raise UserInputError(
                    f"'{sample['name']}': the degrader makes {tuple(synthetic.shape[-2:])} images from the "
                    f"clean one, but the real degraded image is {tuple(real.shape[-2:])}."
                )
            reals, references = real.expand_as(synthetic), reference.expand_as(synthetic)
            row = {
                "name": sample["name"],
                "degradation/kld": float(noise_kld(synthetic, reals, references).mean()),
                "degradation/akld": float(akld(synthetic, reals, references).mean()),
                "degradation/psnr": float(psnr(synthetic, references).mean()),
                "input/psnr": float(psnr(real, reference).mean()),
                "degradation/noise_std": float((synthetic - references).std() * 255),
                "input/noise_std": float((real - reference).std() * 255),
            }
            if has_latents:
                crop = int(cfg.metrics.mmd_crop)
                z_clean = degrader.latent_samples(_centre(clean, crop * scale), False, mmd_samples, generator)
                z_real = degrader.latent_samples(_centre(real, crop), True, mmd_samples, generator)
                row["degradation/mmd"] = float(gaussian_mmd(z_clean, z_real))
            rows.append(row)
            if len(sheet) < int(cfg.figure.max_images):
                sheet.append({"name": sample["name"], "clean": reference[0].cpu(), "real": real[0].cpu(),
                              "synthetic": synthetic[: min(samples, 3)].cpu(),
                              "kld": row["degradation/kld"], "akld": row["degradation/akld"]})
    keys = KEYS + (["degradation/mmd"] if has_latents else [])
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    metrics["test/images"] = len(rows)
    metrics["degradation/samples_per_image"] = samples

    atomic_write_csv(out / "metrics.csv", rows, ["name", *keys])
    atomic_write_json(out / "metrics.json", metrics)
    label = cfg.degrader.get("ckpt") or cfg.degrader.get("_target_")
    header = ["", "KLD", "AKLD", "PSNR (dB)", "noise std"] + (["MMD"] if has_latents else [])
    synthetic_row = ["synthetic", metrics["degradation/kld"], metrics["degradation/akld"],
                     metrics["degradation/psnr"], metrics["degradation/noise_std"]]
    real_row = ["real", 0.0, 0.0, metrics["input/psnr"], metrics["input/noise_std"]]
    if has_latents:
        synthetic_row.append(metrics["degradation/mmd"])
        real_row.append("")
    table = markdown_table(header, [real_row, synthetic_row])
    atomic_write_text(
        out / "metrics.md",
        f"# Degradation model evaluation: {label}\n\nTest pairs: `{cfg.data.test}` ({len(rows)} images, "
        f"{samples} synthetic samples each). KLD = KL(real || synthetic) of noise histograms; AKLD as in "
        "DANet; PSNR against the clean reference; MMD between q(z|x) and q(z|y) (LUD-VAE).\n\n"
        f"{table}\n![samples](degradation.png)\n",
    )
    degradation_sheet(
        out / "degradation.png", sheet,
        f"{label}: KLD {metrics['degradation/kld']:.3f}, AKLD {metrics['degradation/akld']:.3f}",
    )
    write_summary(
        out, task="evaluate", degrader=str(label), params=count_parameters(degrader), global_step=None,
        wall_seconds=round(time.time() - start, 2), seed=cfg.seed, metrics=metrics,
    )
    print(table)
    return metrics
