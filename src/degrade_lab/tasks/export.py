"""``degrade-lab export ckpt=RUN/checkpoints/best.ckpt output=MODEL.safetensors``: a model file that holds tensors
only.

The weights go into a safetensors file and the run record (the model config, seed, versions, training step,
calibration, import source) into its metadata as JSON (key ``degrade_lab``), so the file alone rebuilds the model
and every command that takes ``ckpt=`` (and ``degrade_lab.load_restorer`` / ``load_degrader``) accepts it. Reading a
safetensors file cannot run code. Training state (optimizer moments, loop counters) is left out: an exported
model is for inference and for starting new runs (``model.init_from=``), not for ``resume=``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import key_values
from degrade_lab.tasks.info import recorded_metrics
from degrade_lab.utils.checkpoint import read_checkpoint, save_model_file


def export_safetensors(ckpt: str | Path, output: str | Path) -> Path:
    """Write ``ckpt``'s weights and run record to ``output`` (``.safetensors``) atomically; returns the path."""
    output = Path(output).expanduser()
    if output.suffix.lower() != ".safetensors":
        raise UserInputError(f"output '{output}' must end in .safetensors.")
    if output.resolve() == Path(ckpt).expanduser().resolve():
        raise UserInputError(f"output '{output}' is the checkpoint itself; choose another file.")
    checkpoint = read_checkpoint(ckpt)
    record = dict(checkpoint["degrade_lab"])
    record.setdefault("global_step", checkpoint.get("global_step"))
    record["exported_from"] = str(Path(ckpt).expanduser().resolve())
    record.setdefault("metrics", recorded_metrics(ckpt, checkpoint))
    try:
        save_model_file(output, checkpoint["state_dict"], record)
    except UserInputError as err:
        raise UserInputError(f"checkpoint '{ckpt}': {err}") from None
    return output


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="degrade-lab export", description=__doc__.splitlines()[0],
                                     usage="degrade-lab export ckpt=CKPT output=MODEL.safetensors")
    parser.add_argument("args", nargs="*", metavar="key=value")
    try:
        values = key_values(parser.parse_args(argv).args, ("ckpt", "output"), "export")
        if "ckpt" not in values or "output" not in values:
            raise UserInputError("export needs ckpt=CKPT output=MODEL.safetensors.")
        path = export_safetensors(values["ckpt"], values["output"])
    except UserInputError as err:
        print(f"degrade-lab export: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
