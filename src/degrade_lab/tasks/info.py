"""``degrade-lab info MODEL_FILE``: what a checkpoint (``.ckpt``) or exported model (``.safetensors``) is.

The model and its network, restorer or degradation model, scale, parameters, the data it was trained on, the
training steps and seed, the metrics its run recorded (the checkpoint's best monitored value and the run's
``summary.json`` next to ``checkpoints/``), the calibration, where it was imported or exported from, and the
package versions it was made with. Reading it runs no code from the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from degrade_lab.errors import UserInputError

#: the data settings worth showing: folders and named data sets
_DATA_KEYS = ("root", "source", "target", "paired", "test", "split_from", "pairs_from", "name", "scale",
              "num_paired", "num_unpaired", "degrader")


def recorded_metrics(path: str | Path, checkpoint: dict) -> dict:
    """The metrics a model's run recorded: the record's own (exported / imported files), the best monitored
    value of the checkpoint callback, and the run's ``summary.json`` when the file sits in ``RUN/checkpoints``."""
    metrics = dict(checkpoint.get("degrade_lab", {}).get("metrics") or {})
    for name, state in (checkpoint.get("callbacks") or {}).items():
        if str(name).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor"):
            score = state.get("best_model_score")
            if score is not None:
                metrics[f"best {state['monitor']}"] = round(float(score), 4)
    folder = Path(path).expanduser().resolve().parent
    summary = folder.parent / "summary.json"
    if folder.name == "checkpoints" and summary.is_file():
        try:
            run_metrics = json.loads(summary.read_text()).get("metrics") or {}
        except (OSError, ValueError):
            run_metrics = {}
        metrics.update({k: round(v, 4) if isinstance(v, float) else v for k, v in run_metrics.items()
                        if k.startswith(("val/", "test/", "degradation/"))})
    return metrics


def describe(path: str | Path) -> dict:
    """The model card of ``path`` as a dict (what ``degrade-lab info`` prints)."""
    from degrade_lab.utils.checkpoint import load_model, read_checkpoint
    from degrade_lab.utils.runs import count_parameters

    path = Path(path).expanduser()
    checkpoint = read_checkpoint(path)
    record = checkpoint["degrade_lab"]
    config = record["config"]
    module, _ = load_model(path)
    kind = getattr(module, "data_kind", "paired")
    net = getattr(module, "net", None)
    data = config.get("data") or {}
    card = {
        "file": f"{path} ({'safetensors' if path.suffix.lower() == '.safetensors' else 'Lightning checkpoint'}, "
                f"{path.stat().st_size / 1e6:.1f} MB)",
        "model": f"{config['model']['_target_']} (network {type(net).__name__ if net is not None else '-'})",
        "kind": "restorer" if kind == "paired" else
                f"degradation model ({'semi-supervised' if kind == 'semi' else 'unpaired'}; use synthesize)",
        "scale": int(getattr(module, "scale", 1)),
        "parameters": count_parameters(module)["total"],
        "network parameters": count_parameters(net)["total"] if net is not None else None,
        "non-blind (noise level input)": bool(getattr(net, "noise_map", False)) if kind == "paired" else None,
        "trained on": {k: data[k] for k in _DATA_KEYS if data.get(k) not in (None, "", [], {})},
        "experiment": config.get("experiment_name"),
        "steps": record.get("global_step", checkpoint.get("global_step")),
        "seed": record.get("seed"),
        "metrics": recorded_metrics(path, checkpoint),
        "calibration": record.get("calibration"),
        "imported from": record.get("imported_from"),
        "exported from": record.get("exported_from"),
        "versions": record.get("versions"),
    }
    return {key: value for key, value in card.items() if value not in (None, {}, "")}


def _text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="degrade-lab info", description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL_FILE", help="a .ckpt or .safetensors model file")
    parser.add_argument("--json", action="store_true", help="print the card as JSON")
    args = parser.parse_args(argv)
    try:
        card = describe(args.model)
    except UserInputError as err:
        print(f"degrade-lab info: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(card, indent=2, default=str))
    else:
        width = max(len(key) for key in card)
        print("\n".join(f"{key:<{width}}  {_text(value)}" for key, value in card.items()))
    return 0
