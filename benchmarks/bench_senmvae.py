"""SeNM-VAE speed: a training step per domain and the time per synthesized 256x256 image.

Two sizes: the authors' network (64 features, levels (2, 4): 19,955,739 parameters) and the CPU preset
of ``make train-senmvae`` (experiment=senmvae_cpu: 32 features, levels (1, 2): 2,817,955). A training
step is batch 8 of 64x64 crops with the network's own losses (reconstructions, KLs, level predictor; no
LPIPS and no discriminator, as the reference figure), timed per domain since a batch comes from one
domain: paired (two decodes), source (the clean decode), target (the degraded decode); the last
column adds the LPIPS (alex, if installed) and GAN terms to the paired step. Synthesis is
``synthesize`` of one 256x256 image (no tiling).

Figures from the issue (this machine, 2 threads, fp32, the authors' network): 17.7 s per training step
(batch 8, 64x64), 4.9 s per 256x256 translation. The quality comparison (KLD, AKLD, FID, downstream
PSNR against LUD-VAE, AWGN and the 10 pairs alone) is ``make pipeline-senmvae``.

Usage: python benchmarks/bench_senmvae.py [--threads 2] [--repeats 2] [--paper-only | --cpu-only]
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable

import torch
from bench_foundation import timed

from degrade_lab.archs.discriminators import NLayerDiscriminator
from degrade_lab.archs.senmvae import NoiseLevelNet, SeNMVAE
from degrade_lab.data import domains as D
from degrade_lab.lit.senmvae import SeNMVAEModule
from degrade_lab.tasks.common import markdown_table

SIZES = {
    "authors' (64 ch, levels 2+4)": {"features": 64, "levels": (2, 4), "noise_channels": 16, "growth": 32},
    "CPU preset (32 ch, levels 1+2)": {"features": 32, "levels": (1, 2), "noise_channels": 8, "growth": 16},
}


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def module_of(size: dict, full_losses: bool) -> SeNMVAEModule:
    torch.manual_seed(0)
    lpips = 0.0
    if full_losses:
        from degrade_lab.weights import MissingWeightsError

        try:
            from degrade_lab.losses.perceptual import LPIPSLoss

            LPIPSLoss("alex")
            lpips = 1e-2
        except MissingWeightsError:
            lpips = 0.0
    module = SeNMVAEModule(SeNMVAE(**size), NoiseLevelNet(size["features"]), NLayerDiscriminator(features=64),
                           kl_anneal_steps=0, lpips_weight=lpips, gan_weight=0.1 if full_losses else 0.0)
    module.setup("fit")
    return module


def training_step(module: SeNMVAEModule, kind: int) -> Callable[[bool], None]:
    """One optimizer step of ``module`` on a batch of 8 64 x 64 crops of domain ``kind`` (``step(bf16)``)."""
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(8, 3, 64, 64, generator=generator)
    batch = {"clean": clean, "degraded": clean + 0.05 * torch.randn(clean.shape, generator=generator),
             "domain": torch.full((8,), kind)}
    optimizer = torch.optim.Adam(module._generator_parameters(), lr=1e-4)

    def step(bf16: bool) -> None:
        module.net.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast(bf16):
            loss = module.loss_terms(batch)["loss"]
        loss.backward()
        optimizer.step()

    return step


def translation(net: SeNMVAE) -> Callable[[bool], torch.Tensor]:
    """``translate(bf16)``: the synthesis of one 256 x 256 image (no tiling), returned in fp32."""
    clean = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    levels, temperatures = torch.tensor([0.05]), torch.tensor([1.0])

    @torch.inference_mode()
    def translate(bf16: bool) -> torch.Tensor:
        net.eval()
        with autocast(bf16):
            return net.synthesize(clean, [0], levels, temperatures).float()

    return translate


def step_time(module: SeNMVAEModule, kind: int, bf16: bool, repeats: int) -> float:
    step = training_step(module, kind)
    return timed(lambda: step(bf16), repeats)


def translation_time(net: SeNMVAE, bf16: bool, repeats: int) -> float:
    translate = translation(net)
    return timed(lambda: translate(bf16), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--paper-only", action="store_true")
    group.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = {k: v for k, v in SIZES.items()
             if not (args.paper_only and "CPU" in k) and not (args.cpu_only and "CPU" not in k)}
    rows = []
    for name, size in sizes.items():
        module = module_of(size, full_losses=False)
        full = module_of(size, full_losses=True)
        params = sum(p.numel() for p in module.net.parameters())
        for bf16 in (False, True):
            times = [step_time(module, kind, bf16, args.repeats) for kind in (D.PAIRED, D.SOURCE, D.TARGET)]
            rows.append([name, f"{params:,}", "bf16" if bf16 else "fp32", *[f"{t:.2f}" for t in times],
                         f"{sum(times) / 3:.2f}", f"{step_time(full, D.PAIRED, bf16, args.repeats):.2f}",
                         f"{translation_time(module.net, bf16, args.repeats):.2f}"])
            print(rows[-1], flush=True)
    rows.append(["authors' code (issue)", "19,955,739", "fp32", "17.7 (mixed batch)", "", "", "", "", "4.9"])
    print(markdown_table(["network", "parameters", "precision", "paired step (s)", "source step (s)",
                          "target step (s)", "mean step (s)", "paired + LPIPS + GAN (s)",
                          "256x256 translation (s)"], rows))


if __name__ == "__main__":
    main()
