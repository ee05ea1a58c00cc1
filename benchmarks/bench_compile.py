"""torch.compile, channels-last and bf16 on this CPU: training step and inference time at the papers' sizes, whether
the outputs stay the same, and how time and peak memory grow with image size and batch.

Part 1 (``--variants``): DnCNN-17, DRUNet (noise map, sigma 25) and SeNM-VAE (the authors' size): a training step
(restorers: batch 16 of 64 x 64, L1, Adam; SeNM-VAE: its paired step, batch 8 of 64 x 64, the network's own losses)
and one 256 x 256 image (restorers: the forward; SeNM-VAE: a translation), each as eager fp32, fp32 channels-last,
compiled fp32 (``lit/base.compile_parts``, what ``model.compile=true`` does), eager bf16 channels-last and compiled
bf16 channels-last; "max |diff|" is the largest difference of the 256 x 256 output from eager fp32 (bf16 rows:
rounding, not a change of model). References (the issue, this machine, fp32): KAIR's DRUNet 4.32 s a step and 1.62 s
an image; the authors' SeNM-VAE 17.7 s a step and 4.88 s a translation.

Part 2 (``--scaling``): DnCNN-17 and DRUNet inference at 128 ... 1024 pixels and DnCNN-17's training step at batch
1 ... 64 (64 x 64), fp32 and bf16 channels-last: seconds and the process's peak resident memory during the call
(``VmHWM``, reset before each measurement).

Usage: python benchmarks/bench_compile.py [--variants] [--scaling] [--models dncnn,drunet,senmvae] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench_foundation import timed
from bench_senmvae import autocast

from degrade_lab.api import fast_bf16
from degrade_lab.archs.dncnn import DnCNN
from degrade_lab.archs.drunet import DRUNet
from degrade_lab.lit.base import compile_parts
from degrade_lab.tasks.common import markdown_table

VARIANTS = [  # (name, channels_last, bf16, compiled)
    ("eager fp32", False, False, False),
    ("eager fp32, channels-last", True, False, False),
    ("compiled fp32", False, False, True),
    ("eager bf16, channels-last", True, True, False),
    ("compiled bf16, channels-last", True, True, True),
]


def layout(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


def restorer(name: str) -> tuple[torch.nn.Module, tuple]:
    torch.manual_seed(0)
    return (DnCNN(), ()) if name == "dncnn" else (DRUNet(), (25.0,))


def restorer_work(name: str, channels_last: bool):
    """(network, extra forward arguments, ``step(bf16)``, ``infer(bf16)``): a training step (batch 16 of 64 x 64,
    L1, Adam) and the 256 x 256 image, returned in fp32."""
    net, extra = restorer(name)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)
    x16, y16 = (layout(torch.rand(16, 3, 64, 64, generator=generator), channels_last) for _ in range(2))
    image = layout(torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)), channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step(bf16: bool) -> None:
        net.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast(bf16):
            loss = torch.nn.functional.l1_loss(net(x16, *extra).float(), y16)
        loss.backward()
        optimizer.step()

    @torch.inference_mode()
    def infer(bf16: bool) -> torch.Tensor:
        net.eval()
        with autocast(bf16):
            return net(image, *extra).float()

    return net, extra, step, infer


def restorer_variant(name: str, channels_last: bool, bf16: bool, compiled: bool, repeats: int):
    """(step seconds, image seconds, first-call seconds (compilation), the 256 x 256 output)."""
    net, _, step, infer = restorer_work(name, channels_last)
    if compiled:
        compile_parts(net)
    tic = time.perf_counter()
    step(bf16)
    first = time.perf_counter() - tic
    step_seconds = timed(lambda: step(bf16), repeats, warmup=1)
    net.load_state_dict(restorer(name)[0].state_dict())  # the same weights in every variant for the output check
    tic = time.perf_counter()
    infer(bf16)
    first += time.perf_counter() - tic
    return step_seconds, timed(lambda: infer(bf16), repeats), first, infer(bf16)


def senmvae_variant(channels_last: bool, bf16: bool, compiled: bool, repeats: int):
    import bench_senmvae

    from degrade_lab.data import domains as D

    module = bench_senmvae.module_of(bench_senmvae.SIZES["authors' (64 ch, levels 2+4)"], full_losses=False)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    if compiled:
        module.compile_networks(True)
    tic = time.perf_counter()
    step_seconds = bench_senmvae.step_time(module, D.PAIRED, bf16, repeats)
    first = time.perf_counter() - tic - step_seconds * repeats
    torch.manual_seed(0)
    reference = bench_senmvae.module_of(bench_senmvae.SIZES["authors' (64 ch, levels 2+4)"], full_losses=False)
    module.load_state_dict(reference.state_dict())
    translate = bench_senmvae.translation(module.net)
    return step_seconds, timed(lambda: translate(bf16), repeats), first, translate(bf16)


def variants_table(models: list[str], repeats: int) -> str:
    rows = []
    for model in models:
        baseline = None
        for name, channels_last, bf16, compiled in VARIANTS:
            if bf16 and not fast_bf16(torch.device("cpu")):
                continue
            if model == "senmvae":
                step, image, first, output = senmvae_variant(channels_last, bf16, compiled, repeats)
            else:
                step, image, first, output = restorer_variant(model, channels_last, bf16, compiled, repeats)
            baseline = output if baseline is None else baseline
            rows.append([model, name, f"{step:.3f}", f"{image:.3f}", f"{first:.1f}",
                         f"{float((output - baseline).abs().max()):.2e}"])
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
    return markdown_table(["model", "variant", "step s", "256 x 256 s", "first calls s (compiling)",
                           "max |diff| vs eager fp32"], rows)


def _peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6
    return float("nan")


def scaling_table(repeats: int) -> str:
    rows = []
    precisions = [False] + ([True] if fast_bf16(torch.device("cpu")) else [])
    for model in ("dncnn", "drunet"):
        for bf16 in precisions:
            net, extra = restorer(model)
            net = (net.to(memory_format=torch.channels_last) if bf16 else net).eval()
            for size in (128, 256, 512, 1024):
                image = layout(torch.rand(1, 3, size, size), bf16)

                @torch.inference_mode()
                def infer(net=net, image=image, extra=extra, bf16=bf16):
                    with autocast(bf16):
                        net(image, *extra)

                infer()
                _peak_reset()
                seconds = timed(infer, repeats, warmup=0)
                rows.append([model, "inference", "bf16 CL" if bf16 else "fp32", f"1 x {size}^2", f"{seconds:.3f}",
                             f"{seconds / (size * size / 1e6):.3f}", f"{_peak_gb():.2f}"])
                print("| " + " | ".join(rows[-1]) + " |", flush=True)
    for bf16 in precisions:
        net, _ = restorer("dncnn")
        net = net.to(memory_format=torch.channels_last) if bf16 else net
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        for batch in (1, 4, 16, 64):
            x, y = (layout(torch.rand(batch, 3, 64, 64), bf16) for _ in range(2))

            def step(x=x, y=y, bf16=bf16, net=net, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                with autocast(bf16):
                    loss = torch.nn.functional.l1_loss(net(x).float(), y)
                loss.backward()
                optimizer.step()

            step()
            _peak_reset()
            seconds = timed(step, repeats, warmup=0)
            rows.append(["dncnn", "training step", "bf16 CL" if bf16 else "fp32", f"{batch} x 64^2",
                         f"{seconds:.3f}", f"{seconds / (batch * 64 * 64 / 1e6):.3f}", f"{_peak_gb():.2f}"])
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
    return markdown_table(["model", "what", "precision", "input", "seconds", "seconds per megapixel",
                           "peak RSS GB"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--models", default="dncnn,drunet,senmvae")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.variants or not args.scaling:
        print(variants_table(args.models.split(","), args.repeats))
    if args.scaling or not args.variants:
        print(scaling_table(args.repeats))


if __name__ == "__main__":
    main()
