"""DeFlow next to the authors' code: the same weights give the same outputs, and how much faster ours runs.

The authors' network (``RRDBGlowNet`` of github.com/volflow/DeFlow, their NTIRE-RWSR configuration) is built
from their own code and configuration file, its ActNorms initialised from a batch as in training, then its
zero-initialised layers and latent shifts moved off their initial values (they would make every coupling the
identity and hide mistakes), and its weights converted into ours with :mod:`degrade_lab.importers.deflow`. Both
encode the same images with the same conditioning (their LR noise off for this part), and we compare the
conditioning features, the latents, the log-likelihood per image and the decoded image, in float32 (the authors'
densities are float32 tensors).

Then the speed of both on this machine, each figure in a fresh process (peak resident memory is its own): a
training step (both domains' NLL, eq. 7, batch 8 of 160x160 and 16 of 64x64; the same inputs, Adam) and a
256x256 X -> Y translation (encode, shift, decode). Ours in fp32 and in bf16 autocast, both with the model's
channels-last weights (``model.channels_last``).

The authors' code is not installed with degrade_lab: clone it and point ``--reference`` at its ``codes``
folder. Its utilities import ``cv2`` and ``natsort``, which its network never calls; where they are not
installed this script puts empty modules in their place.

Usage: python benchmarks/bench_deflow_reference.py --reference DeFlow/codes [--threads 2] [--repeats 2]
       [--skip-speed | --skip-equivalence]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import sys
import types
from pathlib import Path

import torch
from _fresh import in_fresh_process, peak_gib, seconds_per_call

from degrade_lab.tasks.common import markdown_table

CONFIG = "confs/DeFlow-NTIRE-RWSR.yml"
#: the authors' densities are computed into float32 tensors, so the comparison runs in float32
DTYPE = torch.float32


def authors_network(reference: Path, lr_noise: bool = True):
    """The authors' NTIRE-RWSR network from their code, as after some training (see the module docstring; seeded)."""
    if not (reference / CONFIG).is_file():
        raise SystemExit(f"{reference / CONFIG} not found: clone https://github.com/volflow/DeFlow and pass "
                         "--reference DeFlow/codes")
    sys.path.insert(0, str(reference))
    for name in ("cv2", "natsort"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    import numpy as np
    from models.modules.RRDBGlowNet_arch import RRDBGlowNet
    from options.options import parse

    np.random.seed(0)  # their 1x1 convolutions start from numpy's random rotations
    opt = parse(str(reference / CONFIG), is_train=True)
    if not lr_noise:
        opt["network_G"]["flow"]["LR_noise_std"] = 0
    net = RRDBGlowNet(in_nc=3, out_nc=3, nf=64, nb=23, scale=4, K=16, opt=opt, step=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        # the ActNorms initialise from data as in training (the flow still the identity map)
        net.train()(gt=torch.rand(4, 3, 160, 160, generator=generator), lr=torch.rand(4, 3, 40, 40, generator=generator),
                    y_label=torch.tensor([0, 0, 1, 1]))
        for name, parameter in net.named_parameters():  # then the zero-initialised layers and the shifts move
            if "shift" in name:
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
            elif re.search(r"(fAffine|fFeatures)\.4\.|layers\.\d+\.conv\.", name):
                parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    return net


def ours_from(authors) -> torch.nn.Module:
    from degrade_lab.archs.deflow import DeFlow
    from degrade_lab.importers.deflow import convert_state_dict

    net = DeFlow()
    net.load_state_dict(convert_state_dict(authors.state_dict(), net))
    return net


def equivalence(reference: Path) -> list[list[str]]:
    from degrade_lab.utils.imresize import imresize

    torch.manual_seed(0)
    authors = authors_network(reference, lr_noise=False).to(DTYPE).eval()
    ours = ours_from(authors).to(DTYPE).eval()
    image = torch.rand(2, 3, 160, 160, generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    small = imresize(image, 0.25)
    labels = torch.tensor([0, 1])
    rows = []

    def row(what: str, mine: torch.Tensor, theirs: torch.Tensor) -> None:
        rows.append([what, str(tuple(mine.shape)), f"{(mine - theirs).abs().max().item():.2e}",
                     f"{theirs.abs().max().item():.3g}"])

    with torch.no_grad():
        features = ours.encoder(small, ours.levels)
        lr_enc = authors.rrdbPreprocessing(small)
        for level, name in enumerate(("fea_up2", "fea_up1", "fea_up0")):
            row(f"h(x), level {level + 1} ({name})", features[level], lr_enc[name])
        latents, logdet = ours.encode(image, features)
        log_prob = logdet + sum(shift.log_prob(eps, labels.bool()) for shift, eps in zip(ours.shifts, latents, strict=True))
        epses, nll, _ = authors.normal_flow(image, small, y_onehot=labels, epses=[], lr_enc=lr_enc,
                                            add_gt_noise=False)
        for group, (mine, theirs) in enumerate(zip(latents, epses, strict=True)):
            row(f"latent group {group + 1}", mine, theirs)
        # their NLL divides by H W (not C H W) and includes no dequantisation term here (add_gt_noise=False)
        row("-log p(x | h) per image (nats; clean, degraded)", -log_prob, nll * torch.log(torch.tensor(2.0)) * 160**2)
        decoded = ours.decode(latents, features)
        theirs, _ = authors.flowUpsamplerNet(rrdbResults=lr_enc, z=None, epses=list(epses), logdet=0.0, reverse=True,
                                             y_onehot=labels)
        row("decoded image f^-1(f(x))", decoded, theirs)
        row("decoded image vs the input", decoded, image)
    return rows


def _measure(reference: str, code: str, kind: str, batch: int, crop: int, bf16: bool, threads: int, repeats: int,
             queue) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, crop, crop, generator=generator)
    labels = [torch.zeros(batch), torch.ones(batch)]
    if code == "authors":
        from degrade_lab.utils.imresize import imresize

        net = authors_network(Path(reference))
        small = imresize(image, 0.25)
        cast = contextlib.nullcontext()

        def loss(index: int) -> torch.Tensor:
            return net(gt=image, lr=small, y_label=labels[index % 2])[1].mean()

        def translate(index: int) -> torch.Tensor:
            lr_enc = net.rrdbPreprocessing(small)
            epses, _, _ = net.normal_flow(image, small, y_onehot=labels[0], epses=[], lr_enc=lr_enc, add_gt_noise=False)
            shifted = [eps + net.mean_shift.view(1, -1, 1, 1) if eps.shape[1] == net.mean_shift.numel() else eps
                       for eps in epses]
            return net.flowUpsamplerNet(rrdbResults=lr_enc, z=None, epses=shifted, logdet=0.0, reverse=True,
                                        y_onehot=labels[0])[0]
    else:
        from degrade_lab.lit.deflow import DeFlowModule

        module = DeFlowModule(ours_from(authors_network(Path(reference))))
        net = module
        cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

        def loss(index: int) -> torch.Tensor:
            return module.loss_terms({"clean": image} if index % 2 == 0 else {"degraded": image})["loss"]

        def translate(index: int) -> torch.Tensor:
            return module.net.synthesize(image, [index])

    if kind == "step":
        net.train()
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-5)

        def run(index: int) -> None:
            optimizer.zero_grad(set_to_none=True)
            with cast:
                value = loss(index)
            value.backward()
            optimizer.step()
    else:
        net.eval()

        @torch.inference_mode()
        def run(index: int) -> None:
            with cast:
                translate(index)

    queue.put((seconds_per_call(run, repeats), peak_gib()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="the authors' DeFlow/codes folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-equivalence", action="store_true")
    args = parser.parse_args()
    reference = args.reference.resolve()
    if not args.skip_equivalence:
        rows = equivalence(reference)
        print("\nSame weights (the authors' NTIRE-RWSR network, weights perturbed, float32, batch 2 of 160x160):\n")
        print(markdown_table(["quantity", "shape", "max |ours - authors'|", "max |authors'|"], rows), flush=True)
    if args.skip_speed:
        return
    rows = []
    for kind, batch, crop in (("step", 8, 160), ("step", 16, 64), ("translation", 1, 256)):
        authors_seconds = None
        for code, bf16 in (("authors", False), ("ours", False), ("ours", True)):
            seconds, peak = in_fresh_process(_measure, str(reference), code, kind, batch, crop, bf16, args.threads, args.repeats)
            authors_seconds = authors_seconds or seconds
            rows.append([f"{kind} {batch} x {crop}x{crop}", code, "bf16 autocast" if bf16 else "fp32",
                         f"{seconds:.2f}", f"{authors_seconds / seconds:.2f}x", f"{peak:.1f}"])
            print(" | ".join(rows[-1]), flush=True)
    print(f"\nSpeed ({args.threads} threads, mean of {args.repeats} after a warm-up; torch {torch.__version__}):\n")
    print(markdown_table(["what", "code", "precision", "seconds", "speed-up", "peak memory (GiB)"], rows))


if __name__ == "__main__":
    main()
