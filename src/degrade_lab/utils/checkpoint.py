"""Checkpoints: atomic saving, safe reading, and rebuilding a model from a checkpoint file alone.

Reading never runs code from the file: ``torch.load(weights_only=True)`` accepts tensors and plain
containers only (what degrade_lab and Lightning store), and the stored config is checked against
:mod:`degrade_lab.utils.trusted_targets` before Hydra instantiates anything from it.

A model file is either a Lightning checkpoint (``.ckpt``) or a safetensors file (``.safetensors``, from
``degrade-lab export``): the weights as tensors and the run record (config, seed, versions, calibration) as
JSON metadata under ``degrade_lab``; it reads into the same ``{"state_dict", "degrade_lab"}`` dict.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import atomic_write
from degrade_lab.utils.trusted_targets import check_config, get_class, instantiate, loading


def save_file(checkpoint: dict, path: str | Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (:func:`~degrade_lab.utils.io.atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(checkpoint, handle))


def store_calibration(path: str | Path, calibration: dict) -> None:
    """Record a degrader's calibration (:mod:`degrade_lab.degradations.calibration`) in the model file at
    ``path`` (a checkpoint, or a ``.safetensors`` file's metadata), rewritten atomically; the weights and everything
    else stay as they were."""
    checkpoint = read_checkpoint(path)
    checkpoint["degrade_lab"]["calibration"] = calibration
    if Path(path).suffix.lower() == ".safetensors":
        save_model_file(path, checkpoint["state_dict"], checkpoint["degrade_lab"])
        return
    save_file(checkpoint, path)


def save_model_file(path: str | Path, state_dict: dict, record: dict) -> None:
    """Write a model file that every command reads, atomically: the weights and the run ``record`` (config, seed,
    versions, ...) as a checkpoint (``.ckpt``) or a safetensors file (``.safetensors``)."""
    if Path(path).suffix.lower() == ".safetensors":
        data = safetensors_bytes(state_dict, record)
        atomic_write(path, lambda handle: handle.write(data))
    else:
        save_file({"state_dict": state_dict, "global_step": record.get("global_step") or 0, "degrade_lab": record},
                  path)


def safetensors_bytes(state_dict: dict, record: dict) -> bytes:
    """A safetensors model file: the tensors (copied: safetensors refuses shared storage) and the run ``record`` as
    JSON metadata under :data:`SAFETENSORS_KEY`."""
    from safetensors.torch import save

    tensors = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise UserInputError(f"state_dict entry '{key}' is a {type(value).__name__}, not a tensor; it cannot go "
                                 "into a safetensors file.")
        tensors[key] = value.detach().cpu().contiguous().clone()
    try:
        metadata = {SAFETENSORS_KEY: json.dumps(record, allow_nan=False), "format": "pt"}
    except (TypeError, ValueError) as err:
        raise UserInputError(f"the run record is not plain JSON data ({err}).") from err
    return save(tensors, metadata=metadata)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but written to a temp file and renamed into place, so a run
    killed mid-save never leaves a truncated ``last.ckpt`` (the orphaned temp file is removed when the
    run resumes), and read without running code from the file (``resume=`` included)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        save_file(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return load_file(path)


#: the suffixes of model files that every command accepts as ``ckpt=``
MODEL_SUFFIXES = (".ckpt", ".safetensors")
#: the metadata key of a safetensors model file that holds the run record (JSON)
SAFETENSORS_KEY = "degrade_lab"


def is_model_file(path: str | Path) -> bool:
    """Whether ``path`` names a model file by its suffix (``.ckpt`` or ``.safetensors``)."""
    return str(path).lower().endswith(MODEL_SUFFIXES)


def _load_safetensors(path: Path) -> dict:
    """A ``degrade-lab export`` file as a checkpoint dict: safetensors holds tensors and string metadata only,
    so reading it cannot run code."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            state_dict = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as err:
        raise UserInputError(f"model file '{path}' cannot be read as safetensors ({err}).") from err
    if SAFETENSORS_KEY not in metadata:
        raise UserInputError(
            f"model file '{path}' holds weights without degrade_lab's record (metadata '{SAFETENSORS_KEY}': the "
            f"model config): it was not written by degrade-lab export. Found metadata keys: "
            f"{sorted(metadata) or 'none'}; authors' weights convert with degrade-lab import.")
    try:
        record = json.loads(metadata[SAFETENSORS_KEY])
    except ValueError as err:
        raise UserInputError(f"model file '{path}': its '{SAFETENSORS_KEY}' metadata is not JSON ({err}).") from err
    return {"state_dict": state_dict, SAFETENSORS_KEY: record}


def load_file(path: str | Path) -> dict:
    """The contents of a checkpoint file, read with ``weights_only=True``: a file holding anything but
    tensors and plain data (pickled code, foreign objects) is refused as possibly unsafe. A ``.safetensors``
    file (``degrade-lab export``) reads into the same layout."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"checkpoint '{path}' does not exist.")
    if path.suffix.lower() == ".safetensors":
        return _load_safetensors(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise UserInputError(f"checkpoint '{path}' cannot be read ({type(err).__name__}: {err}).") from err
        detail = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line
                       or "Unsupported operand" in line), "it stores objects other than tensors and plain data")
        raise UserInputError(
            f"checkpoint '{path}' may be unsafe and was not loaded: {detail}. degrade_lab's checkpoints hold "
            "tensors and plain data only; only load model files from sources you trust."
        ) from None
    except Exception as err:
        raise UserInputError(f"checkpoint '{path}' cannot be read ({type(err).__name__}: {err}).") from err
    if not isinstance(checkpoint, dict):
        raise UserInputError(f"checkpoint '{path}' holds a {type(checkpoint).__name__}, not a checkpoint.")
    return checkpoint


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by ``degrade-lab train`` (safely read, its stored config checked)."""
    checkpoint = load_file(path)
    record = checkpoint.get("degrade_lab")
    if not isinstance(record, dict) or "state_dict" not in checkpoint or not isinstance(record.get("config"), dict):
        raise UserInputError(f"checkpoint '{path}' was not written by degrade-lab train (no stored config).")
    model = record["config"].get("model")
    if not isinstance(model, dict) or "_target_" not in model:
        raise UserInputError(f"checkpoint '{path}' has no model config (config.model._target_).")
    # every section, whichever a command instantiates; not Hydra's own record of how it ran (``hydra:``, stored by
    # configs composed with it), which nothing builds: instantiate() would check it first if anything did
    check_config({k: v for k, v in record["config"].items() if k != "hydra"}, path, "config")
    import pytorch_lightning as pl

    if not issubclass(get_class(model["_target_"], origin=path), pl.LightningModule):
        raise UserInputError(f"checkpoint '{path}' has no model: its config.model names {model['_target_']!r}, not a "
                             "training module (a file of `degrade-lab train`, `export` or `import` names one).")
    return checkpoint


def load_model(path: str | Path):
    """Rebuild the LightningModule of a checkpoint from its stored config and load its weights.

    Returns ``(module, record)`` where ``record`` holds the run's ``config``, ``seed`` and ``versions``.
    The module is in eval mode on the CPU.
    """
    with loading(path):  # a model file that names itself (a learned degrader's ckpt:) is refused, not followed
        checkpoint = read_checkpoint(path)
        record = checkpoint["degrade_lab"]
        config = dict(record["config"]["model"])
        if config.get("val_lpips"):
            config["val_lpips"] = None  # a validation-only metric: inference does not need its backbone
        config.pop("compile", None)  # a training choice (model.compile); inference compiles nothing by default
        module = instantiate(config, origin=path)  # a LightningModule: read_checkpoint checked the class
    module.load_state_dict(checkpoint["state_dict"])
    module.calibration = record.get("calibration")  # degrade-lab calibrate's result, if any
    return module.eval(), record


def load_model_of(path: str | Path | None, class_path: str, name: str):
    """The LightningModule of checkpoint ``path`` (eval mode), which must be a ``class_path`` (dotted name):
    a learned degrader named ``name`` (``degrader=name``) refuses a missing path and other models'
    checkpoints with a clear message."""
    if not path:
        raise UserInputError(
            f"degrader '{name}' needs a checkpoint: degrader.ckpt=RUN/checkpoints/last.ckpt "
            "(for training pairs on the fly: data.degrader=RUN/checkpoints/last.ckpt)."
        )
    module, record = load_model(path)
    if f"{type(module).__module__}.{type(module).__qualname__}" != class_path:
        target = record["config"]["model"].get("_target_", type(module).__name__)
        raise UserInputError(
            f"checkpoint '{path}' holds a {type(module).__name__} model ({target}), but degrader '{name}' needs a "
            f"{class_path.rsplit('.', 1)[-1]} checkpoint (from `degrade-lab train model={name}`)."
        )
    return module
