"""LUD-VAE at the paper's size (5,709,827 parameters): training step and clean-to-noisy synthesis.

Prints one Markdown table, next to the authors' network as the reference. The reference is the
same weights run the way the authors' code runs them: fp32, contiguous tensors, and ``translate``
computing the noise-encoder branch whose output it never uses. Ours skips that branch and can
use channels_last and bf16 autocast. Also checks that ours gives the same fp32 outputs as the
reference for the same weights and noise, and how much bf16 changes the noise statistics
(KLD between the fp32 and bf16 outputs' noise histograms).

Figures from the issue (this machine, 2 threads, fp32): 20.1 s per training step (batch 16, 64x64),
5.5 s per 256x256 translation.

With random weights the outputs are not image-plus-noise, so ``--ckpt`` (a trained LUD-VAE, e.g. from
``make train-ludvae``) also measures the bf16 change on real C2N samples of the builtin test images.

Usage: python benchmarks/bench_ludvae_speed.py [--threads 2] [--repeats 2] [--batch16] [--ckpt PATH]
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F
from bench_foundation import timed

from degrade_lab.archs.ludvae import LUDVAE
from degrade_lab.metrics import noise_kld
from degrade_lab.utils.io import quantize_8bit


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def reference_translate(net: LUDVAE, x: torch.Tensor, hx: torch.Tensor, eps) -> torch.Tensor:
    """The authors' ``translate``: both encoders run, the noise features are discarded."""
    net._encode(x, net.noise_in, net.noise_blocks)  # computed and unused, as in the official code
    gate = torch.ones(x.shape[0], 1, 1, 1)
    content = net.encode_content(hx)
    return net._decode(content, None, gate, None, 1.0, eps)[0]


def train_step_time(net: LUDVAE, channels_last: bool, bf16: bool, repeats: int) -> float:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(16, 3, 64, 64).contiguous(memory_format=fmt)
    hx = (x + 0.04 * torch.randn_like(x)).contiguous(memory_format=fmt)
    label = torch.ones(16)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(bf16):
            recon, kls = net(x, hx, label)
            loss = F.mse_loss(recon.float(), x) + 1e-4 * sum(k.sum() for k in kls) / x.numel()
        loss.backward()
        optimizer.step()

    return timed(step, repeats)


def bf16_check(ckpt: str) -> None:
    """C2N samples of the builtin test images in fp32 and in bf16 (same noise): KLD and noise std."""
    from degrade_lab.data.builtin import ensure_builtin
    from degrade_lab.degradations.ludvae import LUDVAEDegrader
    from degrade_lab.paths import home_dir
    from degrade_lab.utils.io import list_images, read_image

    test = ensure_builtin("builtin", home_dir() / "data") / "test" / "clean"
    clean = torch.stack([read_image(p) for p in list_images(test)])
    with torch.inference_mode():
        fp32 = quantize_8bit(LUDVAEDegrader(ckpt, bf16=False)(clean, torch.Generator().manual_seed(0)))
        bf16 = quantize_8bit(LUDVAEDegrader(ckpt, bf16=True)(clean, torch.Generator().manual_seed(0)))
    kld = noise_kld(bf16, fp32, clean).mean().item()
    std32, std16 = ((fp32 - clean).std() * 255).item(), ((bf16 - clean).std() * 255).item()
    print(f"\ntrained checkpoint {ckpt}: bf16 vs fp32 C2N on {len(clean)} builtin test images: "
          f"KLD = {kld:.4f} (target < 0.005), noise std {std16:.2f} vs {std32:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch16", action="store_true", help="also time a batch of 16 256x256 images")
    parser.add_argument("--ckpt", default=None, help="a trained LUD-VAE checkpoint for the bf16 statistics check")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = LUDVAE().eval()
    params = sum(p.numel() for p in net.parameters())
    clean = torch.rand(1, 3, 256, 256) * 0.8 + 0.1
    hx = clean + 15 / 255 * torch.randn_like(clean)
    eps = [torch.randn(shape) for shape in net.latent_shapes(1, 256, 256)]

    rows = []
    with torch.inference_mode():
        reference = reference_translate(net, clean, hx, eps)
        t_ref = timed(lambda: reference_translate(net, clean, hx, eps), args.repeats)
        rows.append(["authors' network (fp32, both encoders)", t_ref, None])
        outputs = {}
        for channels_last, bf16 in [(False, False), (True, False), (False, True), (True, True)]:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            net_v = net.to(memory_format=fmt)
            cond = hx.contiguous(memory_format=fmt)

            def run(net_v=net_v, cond=cond, bf16=bf16):
                with autocast(bf16):
                    return net_v.sample(cond, eps=eps).float()

            outputs[(channels_last, bf16)] = run()
            t = timed(run, args.repeats)
            name = f"ours ({'bf16' if bf16 else 'fp32'}{', channels_last' if channels_last else ''})"
            rows.append([name, t, None])
        net = net.to(memory_format=torch.contiguous_format)
    same = (outputs[(False, False)] - reference).abs().max().item()
    kld_bf16 = noise_kld(quantize_8bit(outputs[(True, True)]), quantize_8bit(outputs[(False, False)]), clean).item()

    print(f"LUD-VAE at paper size: {params:,} parameters, {args.threads} threads\n")
    print("| synthesis of one 256x256 image | seconds | speed-up vs authors |")
    print("|---|---|---|")
    for name, t, _ in rows:
        print(f"| {name} | {t:.2f} | {t_ref / t:.2f}x |")
    print(f"\nfp32 ours vs authors' translate, same weights and noise: max |difference| = {same:.2e}")
    print(f"bf16 + channels_last vs fp32: noise-histogram KLD = {kld_bf16:.4f} (target < 0.005)")

    if args.batch16:
        batch = clean.expand(16, -1, -1, -1).contiguous(memory_format=torch.channels_last)
        eps16 = [e.expand(16, -1, -1, -1) for e in eps]
        net_cl = net.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            t16_ref = timed(lambda: reference_translate(net, batch.contiguous(), batch.contiguous(), eps16), 1, 0)
            t16 = {}
            for bf16 in (False, True):
                def run16(bf16=bf16):
                    with autocast(bf16):
                        return net_cl.sample(batch, eps=eps16)
                t16[bf16] = timed(run16, 1, 0)
        net = net.to(memory_format=torch.contiguous_format)
        print("\n| synthesis of 16 x 256x256 | seconds | per image | speed-up |")
        print("|---|---|---|---|")
        print(f"| authors' network (fp32) | {t16_ref:.1f} | {t16_ref / 16:.2f} | 1.00x |")
        print(f"| ours fp32 channels_last | {t16[False]:.1f} | {t16[False] / 16:.2f} | {t16_ref / t16[False]:.2f}x |")
        print(f"| ours bf16 channels_last | {t16[True]:.1f} | {t16[True] / 16:.2f} | {t16_ref / t16[True]:.2f}x |")

    if args.ckpt:
        bf16_check(args.ckpt)
    net.train()
    step_rows = [("authors' network (fp32, contiguous)", False, False), ("ours, fp32 channels_last", True, False),
                 ("ours, bf16 autocast", False, True), ("ours, bf16 + channels_last", True, True)]
    times = [train_step_time(net, cl, bf, args.repeats) for _, cl, bf in step_rows]
    print("\n| training step (batch 16 of 64x64, Adam) | seconds | speed-up |")
    print("|---|---|---|")
    for (name, _, _), t in zip(step_rows, times, strict=True):
        print(f"| {name} | {t:.2f} | {times[0] / t:.2f}x |")


if __name__ == "__main__":
    main()
