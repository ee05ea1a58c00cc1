"""Run by tests/test_perceptual.py in two processes (gloo, CPU): every metric updated with half the batch."""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist


def inputs(seed: int = 0, count: int = 6, size: int = 48):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(count, 3, size, size, generator=generator)
    clean = torch.nn.functional.avg_pool2d(clean, 5, 1, 2)  # smooth-ish images
    noisy = (clean + 0.08 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    synthetic = (clean + 0.05 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    quantize = lambda x: (x * 255).round() / 255  # noqa: E731
    return quantize(clean), quantize(noisy), quantize(synthetic)


def metrics(with_weights: bool) -> dict:
    from degrade_lab.metrics import AKLD, MMD, PSNR, SSIM, NoiseKLD

    out = {"psnr": PSNR(), "ssim": SSIM(), "kld": NoiseKLD(), "akld": AKLD(), "mmd": MMD()}
    if with_weights:
        from degrade_lab.metrics.fid import FID
        from degrade_lab.metrics.lpips import LPIPS

        out["lpips"], out["fid"] = LPIPS("alex"), FID()
    return out


def update(metric_set: dict, clean, noisy, synthetic) -> None:
    for name, metric in metric_set.items():
        if name in ("psnr", "ssim", "lpips"):
            metric.update(noisy, clean)
        elif name in ("kld", "akld"):
            metric.update(synthetic, noisy, clean)
        elif name == "mmd":
            metric.update(synthetic.flatten(1)[:, :64], noisy.flatten(1)[:, :64])
        elif name == "fid":
            metric.update(noisy, real=True)
            metric.update(synthetic, real=False)


def main(rank: int, world: int, init_file: str, out_file: str, with_weights: bool) -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    clean, noisy, synthetic = inputs()
    part = slice(0, 4) if rank == 0 else slice(4, None)  # uneven halves on purpose
    metric_set = metrics(with_weights)
    update(metric_set, clean[part], noisy[part], synthetic[part])
    values = {name: float(metric.compute()) for name, metric in metric_set.items()}
    if rank == 0:
        with open(out_file, "w") as handle:
            json.dump(values, handle)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1")
