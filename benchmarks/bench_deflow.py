"""DeFlow speed and memory: a training step (both domains' NLL, eq. 7) and the time per 256x256 translation.

Sizes: the authors' NTIRE-RWSR network (23 RRDB blocks, K = 16, hidden 64; 39,455,813 parameters here, the
authors' 39,741,641 less what their code registers and never runs) and the CPU preset of ``make train-deflow``
(experiment=deflow_cpu). Steps: batch 8 of 160x160 (the authors' GT crop) and batch 16 of 64x64; one domain
per batch, as training draws them; fp32 and bf16 autocast (the model's channels-last weights in both). Each figure runs
in a fresh process so that its peak resident memory (``ru_maxrss``; a flow keeps every activation for the
backward pass) is its own.

Figures from the issue (this kind of machine, 2 threads, fp32, the authors' network): 30.0 s per training step
(batch 8, 160x160), 8.85 s at batch 16 of 64x64, 4.65 s per 256x256 X->Y translation.

Usage: python benchmarks/bench_deflow.py [--threads 2] [--repeats 2] [--cpu-only | --paper-only] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib

import torch
from _fresh import in_fresh_process, peak_gib, seconds_per_call

from degrade_lab.tasks.common import markdown_table

SIZES = {
    "NTIRE-RWSR (authors')": {},
    "CPU preset (deflow_cpu)": {"steps": 4, "hidden": 32, "features": 32, "blocks": 4, "growth": 16,
                                "stack_blocks": (0, 1, 2, 3)},
}


def _measure(size: dict, kind: str, batch: int, crop: int, bf16: bool, threads: int, repeats: int, queue) -> None:
    from degrade_lab.archs.deflow import DeFlow
    from degrade_lab.lit.deflow import DeFlowModule

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    module = DeFlowModule(DeFlow(**size))
    params = sum(p.numel() for p in module.net.parameters())
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, crop, crop, generator=generator)
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    if kind == "step":
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-5)
        with torch.no_grad():
            module.loss_terms({"clean": image})  # ActNorm initialisation, as the first batch does

        def run(index: int):
            optimizer.zero_grad(set_to_none=True)
            with cast:
                loss = module.loss_terms({"clean": image} if index % 2 == 0 else {"degraded": image})["loss"]
            loss.backward()
            optimizer.step()
    else:
        module.eval()

        @torch.inference_mode()
        def run(index: int):
            with cast:
                module.net.synthesize(image, [index])

    queue.put((params, seconds_per_call(run, repeats), peak_gib()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fp32 only, one repeat")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--paper-only", action="store_true")
    group.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    sizes = {k: v for k, v in SIZES.items()
             if not (args.paper_only and "CPU" in k) and not (args.cpu_only and "CPU" not in k)}
    rows = []
    for name, size in sizes.items():
        for bf16 in (False,) if args.quick else (False, True):
            for kind, batch, crop in (("step", 8, 160), ("step", 16, 64), ("translation", 1, 256)):
                params, seconds, peak = in_fresh_process(_measure, size, kind, batch, crop, bf16, args.threads, repeats)
                rows.append([name, f"{params:,}", "bf16" if bf16 else "fp32",
                             f"{kind} {batch} x {crop}x{crop}", f"{seconds:.2f}", f"{peak:.1f}"])
                print(" | ".join(rows[-1]), flush=True)
    rows += [["authors' code (issue)", "39,741,641", "fp32", "step 8 x 160x160", "30.0", ""],
             ["authors' code (issue)", "39,741,641", "fp32", "step 16 x 64x64", "8.85", ""],
             ["authors' code (issue)", "39,741,641", "fp32", "translation 1 x 256x256", "4.65", ""]]
    print(markdown_table(["network", "parameters", "precision", "what", "seconds", "peak memory (GiB)"], rows))


if __name__ == "__main__":
    main()
