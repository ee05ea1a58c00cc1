"""Throughput of the hand-made degraders and of DnCNN training / inference on this machine.

Prints two Markdown tables:
1. images/s of each degrader config on 16 x 3 x 256 x 256 batches;
2. DnCNN (17 layers, 64 channels, 559,363 parameters) training step time (batch 16, 64 x 64,
   Adam, L1) and inference time per 256 x 256 image, in fp32 / channels_last / bf16 autocast.
Reference (KAIR's DnCNN on this machine, 2 threads, fp32): 1.37 s per step, 0.56 s per image.

Usage: python benchmarks/bench_foundation.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from degrade_lab.archs.dncnn import DnCNN
from degrade_lab.degradations.build import available_degraders, build_degrader
from degrade_lab.errors import UserInputError


def timed(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_degraders(repeats: int) -> list[tuple[str, float]]:
    batch = torch.rand(16, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    rows = []
    for name in available_degraders():
        try:
            degrader = build_degrader(name)
        except UserInputError:  # a learned degrader without a checkpoint (ludvae): not a hand-made one
            continue
        generator = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            seconds = timed(lambda d=degrader, g=generator: d(batch, g), repeats)
        rows.append((name, 16 / seconds))
    return rows


def bench_dncnn_variant(channels_last: bool, bf16: bool, repeats: int) -> tuple[float, float]:
    """(seconds per training step, seconds per 256x256 inference) for one precision/layout."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = DnCNN().to(memory_format=fmt)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    clean = torch.rand(16, 3, 64, 64).contiguous(memory_format=fmt)
    noisy = (clean + 0.1 * torch.randn_like(clean)).contiguous(memory_format=fmt)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.l1_loss(net(noisy).float(), clean)
        loss.backward()
        optimizer.step()

    step_seconds = timed(step, repeats)
    net.eval()
    image = torch.rand(1, 3, 256, 256).contiguous(memory_format=fmt)

    def infer():
        with torch.inference_mode(), autocast():
            net(image)

    return step_seconds, timed(infer, repeats)


def bench_dncnn(repeats: int) -> list[tuple[str, float, float]]:
    variants = [("fp32", False, False), ("fp32 channels_last", True, False),
                ("bf16 autocast", False, True), ("bf16 autocast + channels_last", True, True)]
    return [(label, *bench_dncnn_variant(cl, bf16, repeats)) for label, cl, bf16 in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| degrader | images/s (16x3x256x256 batches) |\n|---|---|")
    for name, rate in bench_degraders(args.repeats):
        print(f"| {name} | {rate:.1f} |")
    print("\n| DnCNN-17 (559,363 params) | train step, batch 16 of 64x64 (s) | inference, 256x256 (s) |\n|---|---|---|")
    print("| KAIR reference (fp32) | 1.37 | 0.56 |")
    for label, step, infer in bench_dncnn(args.repeats):
        print(f"| degrade_lab {label} | {step:.3f} | {infer:.3f} |")


if __name__ == "__main__":
    main()
