"""``degrade-lab evaluate degrader=...``: judge a degrader, learned or hand-made, against real pairs.

For every test pair (clean, real degraded) the degrader degrades the clean image ``samples`` times
(seeded per image); each synthetic image, rounded to 8 bits as a saved file would be, is compared
with the real one through the noise ``degraded - reference`` where the reference is the clean image
at the degraded side's resolution (MATLAB bicubic for SR):

* ``degradation/kld``: noise-histogram KL(real || synthetic), smoothed (:mod:`degrade_lab.metrics.noise_kld`), and
  ``degradation/kld_noiseflow``: the same as NoiseFlow defines it (LUD-VAE Table 2);
* ``degradation/kl_intensity``: SeNM-VAE's grey-level histogram KL(synthetic || real)
  (:mod:`degrade_lab.metrics.intensity_kl`; SeNM-VAE Tables 1, 6, 7);
* ``degradation/akld``: local-variance KL as DANet computes it (:mod:`degrade_lab.metrics.akld`), averaged over
  samples (the papers: ``metrics.samples=50``, and LUD-VAE ``metrics.center_crop=128``);
* ``degradation/psnr``: synthetic vs reference (how strong the synthetic degradation is), next to
  ``input/psnr``: real vs reference (how strong the real one is);
* ``degradation/noise_std`` and ``input/noise_std``: the noise standard deviation (0-255);
* ``degradation/residual_*`` and ``input/residual_*``: whether the degradation keeps the content
  (:mod:`degrade_lab.metrics.residual`): the residual's mean per channel (a colour cast) and the std of its
  low-pass (Gaussian, 3 px) and high-pass parts, grey levels;
* ``degradation/mmd`` for LUD-VAE checkpoints: the MMD between q(z|x) and q(z|y) samples on a centre
  crop of every pair (Table 6: the inference-invariance check);
* ``degradation/fid``: FID between the synthetic and the real degraded images, pooled over the test
  set as non-overlapping ``metrics.fid_crop`` tiles (a few test images give few samples; tiles give
  more), next to ``input/fid``: clean reference vs real (how far no degradation at all is). Needs the
  installed Inception (``degrade-lab weights install``); otherwise reported as unavailable.

Writes metrics.json / metrics.csv / metrics.md, ``degradation.png`` (see
:mod:`degrade_lab.plots.degradation_sheet`), and what ``degrade-lab report`` reads: ``examples/``
(clean | real | synthetic centre crops of the first image) and ``noise_histogram.csv`` (densities of
real and synthetic noise over all test images, 1-grey-level bins).
"""

from __future__ import annotations

import time

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from degrade_lab.data.transforms import center_crop
from degrade_lab.degradations.resize import imresize
from degrade_lab.errors import UserInputError
from degrade_lab.metrics import akld, gaussian_mmd, noise_kld, psnr
from degrade_lab.metrics.intensity_kl import intensity_kl
from degrade_lab.metrics.noise_kld import noiseflow_kld
from degrade_lab.metrics.optional import build_or_explain, tiles
from degrade_lab.metrics.residual import CHANNELS, NAMES, named_statistics, residual_statistics
from degrade_lab.plots.degradation_sheet import degradation_sheet
from degrade_lab.tasks.common import (
    markdown_table,
    metric_notes,
    output_dir,
    save_config,
    save_examples,
    task_device,
    test_pairs,
)
from degrade_lab.utils.io import atomic_write_csv, atomic_write_json, atomic_write_text, quantize_8bit
from degrade_lab.utils.runs import count_parameters, write_summary
from degrade_lab.utils.seeds import image_seed
from degrade_lab.utils.trusted_targets import COMMAND_LINE, instantiate

HISTOGRAM_SPAN = 80  # noise histogram range (grey levels) written for `degrade-lab report`
RESIDUAL = [f"residual_{name}" for name in NAMES]
KEYS = ["degradation/kld", "degradation/kld_noiseflow", "degradation/kl_intensity", "degradation/akld", "degradation/psnr", "input/psnr", "degradation/noise_std",
        "input/noise_std", *(f"{side}/{key}" for side in ("degradation", "input") for key in RESIDUAL)]


def _fid(fid_metric, clean_fid, unavailable: dict) -> dict:
    """degradation/fid and input/fid, or the reason they cannot be computed (fewer than 2 tiles)."""
    counts = int(fid_metric.real_features_num_samples), int(fid_metric.fake_features_num_samples)
    if min(counts) < 2:
        reason = f"FID needs at least 2 tiles per side, got {counts}: lower metrics.fid_crop"
        unavailable["degradation/fid"] = unavailable["input/fid"] = reason
        return {}
    return {"degradation/fid": float(fid_metric.compute()), "input/fid": float(clean_fid.compute())}


def _scores(synthetic: torch.Tensor, real: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """One test image's scores: ``synthetic`` (its samples) against the ``real`` degraded image."""
    reals, references = real.expand_as(synthetic), reference.expand_as(synthetic)
    row = {
        "degradation/kld": float(noise_kld(synthetic, reals, references).mean()),
        "degradation/kld_noiseflow": float(noiseflow_kld(synthetic, reals, references).mean()),
        "degradation/kl_intensity": float(intensity_kl(synthetic, reals).mean()),
        "degradation/akld": float(akld(synthetic, reals, references).mean()),
        "degradation/psnr": float(psnr(synthetic, references).mean()),
        "input/psnr": float(psnr(real, reference).mean()),
        "degradation/noise_std": float((synthetic - references).std() * 255),
        "input/noise_std": float((real - reference).std() * 255),
    }
    for side, images in (("degradation", synthetic), ("input", real)):
        statistics = named_statistics(residual_statistics(images, reference.expand_as(images)), f"{side}/residual_")
        row.update({key: float(values.mean()) for key, values in statistics.items()})
    return row


def _load_degrader(cfg: DictConfig):
    """The degrader to judge and its scale, checked against the data."""
    degrader = instantiate(cfg.degrader, origin=COMMAND_LINE, _convert_="all")
    if getattr(degrader, "produces", "degraded") != "degraded":
        raise UserInputError(
            "evaluate judges degraders (clean -> degraded); this one is set to produce clean images "
            "(direction=n2c). Use degrader.direction=c2n, or score N2C outputs as a restorer."
        )
    scale = int(getattr(degrader, "scale", 1))
    data_scale = int(cfg.data.get("scale", 1))
    if data_scale not in (1, scale):
        raise UserInputError(f"the degrader works at scale {scale} but data.scale is {data_scale}.")
    return degrader, scale


#: what metrics.json says is behind each divergence
DEFINITIONS = {
    "degradation/kld": "noise histogram KL(real || synthetic), NoiseFlow bins, (count + 1) / (N + bins) smoothing",
    "degradation/kld_noiseflow": "noise histogram KL(real || synthetic) as NoiseFlow: unsmoothed, bins both fill",
    "degradation/kl_intensity": "SeNM-VAE compute_kl.py: grey-level histograms KL(synthetic || real), eps 1e-8",
    "degradation/akld": "DANet AKLD: 7x7 cv2.getGaussianKernel(7, -1) table, ratio clamped to [0.1, 10]",
}


def evaluate_degrader(cfg: DictConfig) -> dict:
    start = time.time()
    out = output_dir(cfg)
    save_config(cfg, out)
    degrader, scale = _load_degrader(cfg)
    device = task_device(cfg)
    degrader.to(device).eval()
    dataset = test_pairs(cfg, scale)
    if getattr(dataset, "ground_truth", True) is False:
        raise UserInputError(f"data.test={cfg.data.test} has no clean images to degrade: a degrader is judged on "
                             "pairs (SIDD: data.test=validation).")
    samples, mmd_samples = int(cfg.metrics.samples), int(cfg.metrics.mmd_samples)
    has_latents = hasattr(degrader, "latent_samples") and mmd_samples > 1
    unavailable, labels = {}, dict(DEFINITIONS)
    centre = int(cfg.metrics.get("center_crop") or 0)
    fid_metric = clean_fid = None
    if cfg.metrics.get("fid"):
        from degrade_lab.metrics.fid import FID

        fid_metric = build_or_explain(["degradation/fid", "input/fid"], lambda: FID(cfg.weights.source),
                                      unavailable, labels)
        if fid_metric is not None:
            fid_metric.to(device)
            clean_fid = FID(cfg.weights.source).to(device)
    fid_crop, fid_tiles = int(cfg.metrics.get("fid_crop", 0)), int(cfg.metrics.get("fid_tiles_per_image", 0))
    edges = torch.arange(-HISTOGRAM_SPAN - 0.5, HISTOGRAM_SPAN + 1.0, 1.0)
    histogram = {"real": torch.zeros(len(edges) - 1, dtype=torch.float64),
                 "synthetic": torch.zeros(len(edges) - 1, dtype=torch.float64)}
    rows, sheet = [], []
    with torch.inference_mode():
        for sample in tqdm(dataset, desc="evaluate degrader", unit="img", disable=not cfg.progress):
            clean = sample["clean"][None].to(device)
            real = sample["degraded"][None].to(device)
            if centre:
                clean, real = center_crop(clean, centre * scale), center_crop(real, centre)
            reference = imresize(clean, 1 / scale).clamp(0, 1) if scale > 1 else clean
            generator = torch.Generator(device=device).manual_seed(image_seed(int(cfg.seed), sample["name"]))
            synthetic = quantize_8bit(degrader(clean.expand(samples, -1, -1, -1), generator))
            if synthetic.shape[-2:] != real.shape[-2:]:
                raise UserInputError(
                    f"'{sample['name']}': the degrader makes {tuple(synthetic.shape[-2:])} images from the "
                    f"clean one, but the real degraded image is {tuple(real.shape[-2:])}."
                )
            row = {"name": sample["name"], **_scores(synthetic, real, reference)}
            if has_latents:
                crop = int(cfg.metrics.mmd_crop)
                z_clean = degrader.latent_samples(center_crop(clean, crop * scale), False, mmd_samples, generator)
                z_real = degrader.latent_samples(center_crop(real, crop), True, mmd_samples, generator)
                row["degradation/mmd"] = float(gaussian_mmd(z_clean, z_real))
            rows.append(row)
            if fid_metric is not None:
                real_features = fid_metric.inception(tiles(real, fid_crop, fid_tiles))  # feeds both FIDs
                fid_metric.update_features(real_features, real=True)
                clean_fid.update_features(real_features, real=True)
                fid_metric.update(tiles(synthetic, fid_crop, fid_tiles), real=False)
                clean_fid.update(tiles(reference, fid_crop, fid_tiles), real=False)
            for kind, image in (("real", real), ("synthetic", synthetic)):
                noise = ((image - reference) * 255).round().flatten().double().cpu()
                histogram[kind] += torch.histogram(noise, edges.double())[0]  # outside the span: left out
            if len(rows) == 1:
                save_examples(out / "examples", {"clean": reference, "real": real, "synthetic": synthetic[:1]})
            if len(sheet) < int(cfg.figure.max_images):
                sheet.append({"name": sample["name"], "clean": reference[0].cpu(), "real": real[0].cpu(),
                              "synthetic": synthetic[: min(samples, 3)].cpu(),
                              "kld": row["degradation/kld"], "akld": row["degradation/akld"]})
    keys = KEYS + (["degradation/mmd"] if has_latents else [])
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    if fid_metric is not None:
        fid_values = _fid(fid_metric, clean_fid, unavailable)
        metrics.update(fid_values)
    metrics["test/images"] = len(rows)
    metrics["degradation/samples_per_image"] = samples
    metrics["degradation/center_crop"] = centre
    metrics["labels"], metrics["unavailable"] = labels, unavailable
    tables = _write_outputs(cfg, out, rows, metrics, keys, histogram, sheet, has_latents)
    write_summary(
        out, task="evaluate", degrader=str(cfg.degrader.get("ckpt") or cfg.degrader.get("_target_")),
        params=count_parameters(degrader), global_step=None, wall_seconds=round(time.time() - start, 2),
        seed=cfg.seed, metrics=metrics,
    )
    print(tables)
    return metrics


def _write_outputs(cfg, out, rows, metrics, keys, histogram, sheet, has_latents) -> str:
    """metrics.csv / .json / .md, noise_histogram.csv and degradation.png; returns the printed tables."""
    samples, fid_crop = metrics["degradation/samples_per_image"], int(cfg.metrics.get("fid_crop", 0))
    centre = metrics["degradation/center_crop"]
    total = {kind: counts / counts.sum().clamp(min=1) for kind, counts in histogram.items()}
    atomic_write_csv(out / "noise_histogram.csv",
                     [{"noise": int(centre), "real": float(r), "synthetic": float(f)}
                      for centre, r, f in zip(range(-HISTOGRAM_SPAN, HISTOGRAM_SPAN + 1), total["real"],
                                              total["synthetic"], strict=True)],
                     ["noise", "real", "synthetic"])

    atomic_write_csv(out / "metrics.csv", rows, ["name", *keys])
    atomic_write_json(out / "metrics.json", metrics)
    label = cfg.degrader.get("ckpt") or cfg.degrader.get("_target_")
    header = ["", "KLD", "KLD (NoiseFlow)", "KL grey (SeNM-VAE)", "AKLD", "FID", "PSNR (dB)", "noise std"]
    header += ["MMD"] if has_latents else []
    synthetic_row = ["synthetic", metrics["degradation/kld"], metrics["degradation/kld_noiseflow"],
                     metrics["degradation/kl_intensity"], metrics["degradation/akld"],
                     metrics.get("degradation/fid", "n/a"), metrics["degradation/psnr"],
                     metrics["degradation/noise_std"]]
    real_row = ["real", 0.0, 0.0, 0.0, 0.0, 0.0, metrics["input/psnr"], metrics["input/noise_std"]]
    clean_row = ["clean (no degradation)", "", "", "", "", metrics.get("input/fid", "n/a"), "", 0.0]
    if has_latents:
        synthetic_row.append(metrics["degradation/mmd"])
        real_row.append("")
        clean_row.append("")
    table = markdown_table(header, [real_row, synthetic_row, clean_row])
    residual_table = markdown_table(
        ["residual (degraded - clean)", *(f"mean {c.upper()}" for c in CHANNELS), "low-pass std", "high-pass std"],
        [[name, *(metrics[f"{side}/{key}"] for key in RESIDUAL)]
         for name, side in (("real", "input"), ("synthetic", "degradation"))])
    atomic_write_text(
        out / "metrics.md",
        f"# Degradation model evaluation: {label}\n\nTest pairs: `{cfg.data.test}` ({len(rows)} images, "
        f"{samples} synthetic samples each{f', {centre} x {centre} centre crops' if centre else ''}). "
        "KLD = KL(real || synthetic) of noise histograms (smoothed; NoiseFlow's unsmoothed definition next to it); "
        "KL grey = SeNM-VAE's KL(synthetic || real) of grey-level histograms; AKLD as in DANet; FID against the real degraded images "
        f"({fid_crop}x{fid_crop} tiles); PSNR against the clean reference; MMD between q(z|x) and q(z|y) "
        f"(LUD-VAE).\n\n{table}\n\nDoes the degradation keep the content? The residual's mean per channel (a colour cast) and "
        "the std of its low-pass (Gaussian, 3 px) and high-pass parts, grey levels; real sensor noise is zero-mean "
        f"and mostly high-pass.\n\n{residual_table}\n{metric_notes(metrics['labels'], metrics['unavailable'])}\n![samples](degradation.png)\n",
    )
    degradation_sheet(
        out / "degradation.png", sheet,
        f"{label}: KLD {metrics['degradation/kld']:.3f}, AKLD {metrics['degradation/akld']:.3f}",
    )
    return f"{table}\n\n{residual_table}"

