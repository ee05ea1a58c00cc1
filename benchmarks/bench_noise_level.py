"""Accuracy and speed of the blind noise estimator (``degrade-lab estimate-noise``).

Accuracy: the builtin clean tiles with white Gaussian noise of known std, Poisson-Gaussian noise of known
shot / read, and the builtin camera pipeline (demosaicked, JPEG'd: spatially correlated) against the std of
its true residual. Speed: one image of 12 megapixels (4000 x 3000), the patch subset of one folder image.

    python benchmarks/bench_noise_level.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from degrade_lab.data.builtin import ensure_builtin
from degrade_lab.degradations.noise import PoissonGaussian
from degrade_lab.metrics.noise_level import Patches, noise_level, noise_level_function, patches
from degrade_lab.metrics.pooled_noise import MAX_PATCHES_PER_IMAGE
from degrade_lab.tasks.common import markdown_table
from degrade_lab.utils.io import list_images, read_image


def read(paths):
    return [read_image(p) for p in paths]


def pooled(images, scale=1):
    return noise_level(Patches.cat([patches(F.avg_pool2d(i[None], scale)[0] if scale > 1 else i) for i in images])) * scale


def main() -> None:
    root = ensure_builtin("builtin")
    clean = read(list_images(root / "source") + list_images(root / "test" / "clean"))
    generator = torch.Generator().manual_seed(0)
    rows = []
    for sigma in (5, 15, 30, 50):
        noisy = [c + torch.randn(c.shape, generator=generator) * sigma / 255 for c in clean]
        rows.append([f"AWGN sigma {sigma}", f"{sigma}", *(f"{float(pooled(noisy, s).mean()):.2f}" for s in (1, 2, 4))])
    make = PoissonGaussian(shot=0.01, read=1e-3, clip=False)
    noisy = [make(c[None], torch.Generator().manual_seed(i))[0] for i, c in enumerate(clean)]
    shot, read_ = noise_level_function(Patches.cat([patches(n) for n in noisy]), bins=8).poisson_gaussian()
    rows.append(["Poisson-Gaussian shot 0.01, read 1e-3", "fit: shot / read",
                 f"{float(shot.mean()):.4f} / {float(read_.mean()):.5f}", "", ""])
    pairs_clean = read(list_images(root / "paired" / "clean"))
    pairs_noisy = read(list_images(root / "paired" / "degraded"))
    true = torch.stack([n - c for n, c in zip(pairs_noisy, pairs_clean, strict=True)]).std() * 255
    rows.append(["builtin camera pipeline (JPEG q90)", f"{float(true):.2f} (residual std)",
                 *(f"{float(pooled(pairs_noisy, s).mean()):.2f}" for s in (1, 2, 4))])
    print(markdown_table(["noise", "true std (0-255)", "estimate", "x2 averaged, x2", "x4 averaged, x4"], rows))

    big = torch.rand(3, 3000, 4000, generator=generator)
    start = time.perf_counter()
    found = patches(big, max_patches=MAX_PATCHES_PER_IMAGE, generator=generator)
    gathered = time.perf_counter() - start
    noise_level(found)
    print(f"\n12-megapixel image: patches {gathered:.1f} s, estimate {time.perf_counter() - start - gathered:.1f} s "
          f"({found.count} patches per channel, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
