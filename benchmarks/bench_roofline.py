"""How close each network runs to what this CPU's convolutions can do, and what the speed targets would need.

A network's time is bounded below by its arithmetic: ``FLOPs / the fastest rate convolutions reach here``. This
script measures both and prints one Markdown table:

1. the convolution ceiling: the best GFLOP/s of a 3x3 convolution (DRUNet's four level shapes: 64 channels at
   256^2 ... 512 at 32^2, batch 1, contiguous and channels-last) in fp32 and under bf16 autocast;
2. per workload (DnCNN-17, DRUNet and SeNM-VAE at the authors' sizes: a training step and a 256 x 256 image), the
   FLOPs (``torch.utils.flop_counter``: convolutions and matrix products, forward and backward), the seconds in fp32
   (the faster of contiguous and channels-last) and in bf16 channels-last, the GFLOP/s reached and their share of
   the ceiling;
3. the targets of issue 19 (1.5x the authors' code in fp32, 3x in bf16): the seconds they mean and the share of the
   ceiling they would need. Above 100 % no implementation that does the network's arithmetic can reach them; only
   doing less arithmetic can (``--winograd`` measures the usual way, Winograd F(4x4, 3x3), built from library ops).

References, the authors' code on this machine (2 threads, fp32; the issue's figures): KAIR's DnCNN 1.37 s a step,
0.56 s an image; KAIR's DRUNet 4.32 s and 1.62 s; SeNM-VAE's 17.7 s a paired step and 4.88 s a translation.

Usage: python benchmarks/bench_roofline.py [--threads 2] [--repeats 2] [--models dncnn,drunet,senmvae] [--winograd]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_compile import restorer_work
from bench_foundation import timed
from bench_senmvae import autocast
from torch.utils.flop_counter import FlopCounterMode

from degrade_lab.api import fast_bf16
from degrade_lab.tasks.common import markdown_table

CONV_SHAPES = [(64, 256), (128, 128), (256, 64), (512, 32)]  # (channels, side): DRUNet's levels
REFERENCES = {("dncnn", "step"): 1.37, ("dncnn", "image"): 0.56, ("drunet", "step"): 4.32,
              ("drunet", "image"): 1.62, ("senmvae", "step"): 17.7, ("senmvae", "image"): 4.88}
CL = torch.channels_last


def conv_ceiling(bf16: bool, repeats: int) -> float:
    """The best GFLOP/s of one 3x3 convolution over DRUNet's level shapes and both memory layouts."""
    best = 0.0
    for channels, side in CONV_SHAPES:
        weight = torch.randn(channels, channels, 3, 3) / (9 * channels) ** 0.5
        for memory_format in (torch.contiguous_format, CL):
            x = torch.randn(1, channels, side, side).contiguous(memory_format=memory_format)

            @torch.inference_mode()
            def run(x=x, weight=weight):
                with autocast(bf16):
                    F.conv2d(x, weight, padding=1)

            seconds = timed(run, repeats * 3)
            best = max(best, 2 * side * side * channels * channels * 9 / seconds / 1e9)
    return best


def workloads(model: str, channels_last: bool) -> dict[str, Callable[[bool], object]]:
    """``{"step": step(bf16), "image": infer(bf16)}`` of a fresh network: bench_compile.py's restorer step and image
    (DnCNN, DRUNet), bench_senmvae.py's paired step and translation (SeNM-VAE at the authors' size)."""
    if model != "senmvae":
        _, _, step, infer = restorer_work(model, channels_last)
        return {"step": step, "image": infer}
    import bench_senmvae

    from degrade_lab.data import domains as D

    module = bench_senmvae.module_of(bench_senmvae.SIZES["authors' (64 ch, levels 2+4)"], full_losses=False)
    if channels_last:
        module.to(memory_format=CL)
    return {"step": bench_senmvae.training_step(module, D.PAIRED), "image": bench_senmvae.translation(module.net)}


def count_flops(run: Callable) -> float:
    with FlopCounterMode(display=False) as counter:
        run(False)
    return float(counter.get_total_flops())


def roofline_table(models: list[str], repeats: int) -> str:
    bf16_here = fast_bf16(torch.device("cpu"))
    ceiling = {False: conv_ceiling(False, repeats)}
    if bf16_here:
        ceiling[True] = conv_ceiling(True, repeats)
    print(f"convolution ceiling: {ceiling[False]:.0f} GFLOP/s fp32"
          + (f", {ceiling[True]:.0f} GFLOP/s bf16" if bf16_here else " (no fast bf16 here)"), flush=True)
    rows = []
    for model in models:
        for kind in ("step", "image"):
            flops = count_flops(workloads(model, False)[kind])
            reference = REFERENCES[(model, kind)]
            fp32 = min(timed(lambda run=workloads(model, cl)[kind]: run(False), repeats) for cl in (False, True))
            variants = [("fp32", fp32, reference / 1.5, False)]
            if bf16_here:
                bf16_seconds = timed(lambda run=workloads(model, True)[kind]: run(True), repeats)
                variants.append(("bf16 CL", bf16_seconds, reference / 3, True))
            for precision, seconds, target, bf16 in variants:
                rate = flops / seconds / 1e9
                needed = flops / target / 1e9
                rows.append([model, "training step" if kind == "step" else "256 x 256 image", f"{flops / 1e9:.0f}",
                             precision, f"{seconds:.2f}", f"{reference / seconds:.2f}x", f"{rate:.0f}",
                             f"{100 * rate / ceiling[bf16]:.0f} %", f"{target:.2f}",
                             f"{100 * needed / ceiling[bf16]:.0f} %"])
                print("| " + " | ".join(rows[-1]) + " |", flush=True)
    return markdown_table(["model", "work", "GFLOP", "precision", "seconds", "vs authors'", "GFLOP/s",
                           "share of conv ceiling", "target s", "ceiling share the target needs"], rows)


# ---- less arithmetic: Winograd F(4x4, 3x3) (Lavin & Gray 2016), from library ops ---------------------------------
# No maintained PyTorch library offers Winograd convolution on x86 CPUs (PyTorch asks oneDNN for direct convolution
# only, uxlfoundation/oneDNN#3139; oneDNN's x86 Winograd is "unimplemented", #1716), so the three
# stages are written here with torch ops: the tile transforms as depthwise convolutions, the product as a 1x1
# convolution grouped by tile position. Only a measurement: nothing in degrade_lab uses it.
_BT = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                    [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
_G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                   [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
_AT = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                   dtype=torch.float64)


def winograd_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A function computing ``F.conv2d(x, weight, padding=1)`` by F(4x4, 3x3): 36 multiplications per 4x4 output
    tile and channel pair instead of 144."""
    out_channels, channels = weight.shape[:2]
    height, width = x.shape[-2:]
    tiles_h, tiles_w = -(-height // 4), -(-width // 4)
    product = torch.einsum("ip,kcpq,jq->ijkc", _G, weight.double(), _G).reshape(36 * out_channels, channels, 1, 1)
    product = product.float()
    to_tiles = torch.einsum("ip,jq->ijpq", _BT, _BT).reshape(36, 1, 6, 6).float().repeat(channels, 1, 1, 1)
    from_tiles = torch.einsum("ui,vj->uvij", _AT, _AT).reshape(16, 36, 1, 1).float().repeat(out_channels, 1, 1, 1)

    def run() -> torch.Tensor:
        padded = F.pad(x, (1, tiles_w * 4 + 1 - width, 1, tiles_h * 4 + 1 - height))
        v = F.conv2d(padded, to_tiles, stride=4, groups=channels)  # B^T d B per tile: (c, position) channels
        v = v.unflatten(1, (channels, 36)).transpose(1, 2).flatten(1, 2)  # grouped by tile position
        m = F.conv2d(v, product, groups=36)  # per position: sum over c of U[k, c] V[c]
        m = m.unflatten(1, (36, out_channels)).transpose(1, 2).flatten(1, 2)
        return F.pixel_shuffle(F.conv2d(m, from_tiles, groups=out_channels), 4)[..., :height, :width]  # A^T M A

    return run


def winograd_table(repeats: int) -> str:
    rows = []
    for channels, side in CONV_SHAPES:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, channels, side, side, generator=generator)
        weight = torch.randn(channels, channels, 3, 3, generator=generator) / (9 * channels) ** 0.5
        with torch.inference_mode():
            exact = F.conv2d(x.double(), weight.double(), padding=1)
            winograd = winograd_conv3x3(x, weight)
            error = float((winograd() - exact).abs().max())
            direct_error = float((F.conv2d(x, weight, padding=1) - exact).abs().max())
            direct = min(timed(lambda xx=x.contiguous(memory_format=fmt), w=weight: F.conv2d(xx, w, padding=1),
                               repeats * 3) for fmt in (torch.contiguous_format, CL))
            seconds = timed(winograd, repeats * 3)
        rows.append([f"{channels} x {side}^2", f"{1e3 * direct:.1f}", f"{1e3 * seconds:.1f}", f"{direct / seconds:.2f}x",
                     f"{direct_error:.1e}", f"{error:.1e}"])
        print("| " + " | ".join(rows[-1]) + " |", flush=True)
    return markdown_table(["3x3 conv, channels x pixels", "direct ms (best layout)", "Winograd F(4,3) ms",
                           "speed-up", "direct max error", "Winograd max error"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default="dncnn,drunet,senmvae")
    parser.add_argument("--winograd", action="store_true", help="also time Winograd F(4x4, 3x3) against direct")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(roofline_table([m for m in args.models.split(",") if m], args.repeats))
    if args.winograd:
        print(winograd_table(args.repeats))


if __name__ == "__main__":
    main()
