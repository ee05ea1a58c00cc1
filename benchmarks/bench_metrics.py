"""Cost and sanity of the offline perceptual metrics on this machine (needs `degrade-lab weights install`).

Prints three Markdown tables:
1. ms per 256 x 256 image of LPIPS-alex, LPIPS-vgg (image pairs) and the FID Inception features
   (batches of 10, fp32);
2. the whole FID of 50 vs 50 builtin 128 x 128 crops, features included, and the matrix square root
   alone: torchmetrics' eigenvalue form (what FID uses) vs a naive scipy ``sqrtm`` of the 2048 x 2048
   product (what many scripts do);
3. FID of 50 builtin crops vs the same crops + AWGN sigma = 0, 5, 15, 25 (must grow monotonically).

Usage: python benchmarks/bench_metrics.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from degrade_lab.data.builtin import ensure_builtin
from degrade_lab.metrics.fid import FID, InceptionFeatures
from degrade_lab.metrics.lpips import LPIPS
from degrade_lab.metrics.optional import tiles
from degrade_lab.utils.io import list_images, read_image


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def builtin_crops(count: int, size: int = 128) -> torch.Tensor:
    root = ensure_builtin()
    files = list_images(root / "source") + list_images(root / "paired" / "clean") + list_images(root / "test" / "clean")
    crops = torch.cat([tiles(read_image(f)[None], size) for f in files])
    if len(crops) < count:
        raise SystemExit(f"only {len(crops)} builtin crops of {size}x{size}, need {count}")
    return crops[:count]


def per_image_table(repeats: int) -> str:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(10, 3, 256, 256, generator=generator), torch.rand(10, 3, 256, 256, generator=generator)
    rows = []
    with torch.inference_mode():
        for net in ("alex", "vgg"):
            metric = LPIPS(net)
            rows.append((f"LPIPS-{net}", timed(lambda m=metric: m.per_image(a, b), repeats) / 10 * 1000, metric.label))
        features = InceptionFeatures()
        rows.append(("FID Inception features", timed(lambda: features(a), repeats) / 10 * 1000, features.label))
    lines = ["| metric | ms per 256x256 image | weights |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.1f} | {label} |" for name, ms, label in rows]
    return "\n".join(lines)


def fid_cost_table() -> str:
    import numpy as np
    import scipy.linalg
    from torchmetrics.image.fid import _compute_fid

    crops = builtin_crops(100)
    metric = FID()
    start = time.perf_counter()
    with torch.inference_mode():
        metric.update(crops[:50], real=True)
        metric.update(crops[50:], real=False)
        value = float(metric.compute())
    whole = time.perf_counter() - start
    # the statistics torchmetrics keeps, turned into covariances, to time the square root alone
    n_r, n_f = metric.real_features_num_samples, metric.fake_features_num_samples
    mu_r, mu_f = metric.real_features_sum / n_r, metric.fake_features_sum / n_f
    cov_r = (metric.real_features_cov_sum - n_r * torch.outer(mu_r, mu_r)) / (n_r - 1)
    cov_f = (metric.fake_features_cov_sum - n_f * torch.outer(mu_f, mu_f)) / (n_f - 1)
    start = time.perf_counter()
    eig_value = float(_compute_fid(mu_r, cov_r, mu_f, cov_f))
    eig_seconds = time.perf_counter() - start
    start = time.perf_counter()
    root = scipy.linalg.sqrtm(cov_r.numpy() @ cov_f.numpy())
    naive_value = float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r.numpy()) + np.trace(cov_f.numpy())
                        - 2 * np.trace(root.real))
    naive_seconds = time.perf_counter() - start
    return "\n".join([
        "| FID of 50 vs 50 builtin 128x128 crops | seconds | FID |", "|---|---|---|",
        f"| whole metric (features + statistics + square root) | {whole:.2f} | {value:.2f} |",
        f"| square root only: eigenvalues of sigma1 sigma2 (torchmetrics, float64) | {eig_seconds:.2f} | {eig_value:.2f} |",
        f"| square root only: naive scipy.linalg.sqrtm (2048 x 2048) | {naive_seconds:.2f} | {naive_value:.2f} |",
    ])


def fid_noise_table() -> str:
    crops = builtin_crops(50)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(crops.shape, generator=generator)
    metric = FID()
    rows = []
    with torch.inference_mode():
        real_features = metric.inception(crops)
        for sigma in (0, 5, 15, 25):
            metric.reset()
            metric.update_features(real_features, real=True)
            metric.update((crops + sigma / 255 * noise).clamp(0, 1), real=False)
            rows.append((sigma, float(metric.compute())))
    monotone = all(a[1] < b[1] for a, b in zip(rows, rows[1:], strict=False))
    lines = ["| AWGN sigma (0-255) | FID (50 crops vs the same + noise) |", "|---|---|"]
    lines += [f"| {s} | {v:.2f} |" for s, v in rows]
    return "\n".join(lines) + f"\n\nmonotone: {'yes' if monotone else 'NO'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads\n")
    print(per_image_table(args.repeats), "\n")
    print(fid_cost_table(), "\n")
    print(fid_noise_table())


if __name__ == "__main__":
    main()
