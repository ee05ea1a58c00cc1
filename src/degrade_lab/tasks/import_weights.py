"""``degrade-lab import KIND FILE output=MODEL.ckpt``: an authors' released weight file as a degrade_lab model file.

KIND is one of :data:`KINDS`. The file is read without running code from it (``torch.load(weights_only=True)``),
its layout and settings (depth, channels, scale, grey or colour) are read from its key names and shapes, the
weights are mapped onto our network and loaded strictly (a wrong file stops naming the missing, unexpected and
wrongly shaped keys), and the result is written as an ordinary checkpoint with its config (or a ``.safetensors``
file), so that ``restore``, ``evaluate``, ``synthesize``, ``info``, ``model.init_from=`` and the Python API take
it. The record says where it came from (kind, file, SHA-256). DeFlow's networks have settings the weights do not
show, nor do LUD-VAE's pre-noise levels: give the preset they were trained with (``experiment=deflow_aim19``,
``ludvae_sidd``, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.common import key_values

#: KIND -> (importer module, function, what it reads)
KINDS = {
    "dncnn": ("degrade_lab.importers.kair", "dncnn", "KAIR's DnCNN: dncnn_color_blind.pth, dncnn_15/25/50.pth, ..."),
    "ffdnet": ("degrade_lab.importers.kair", "ffdnet", "KAIR's FFDNet: ffdnet_color.pth, ffdnet_gray.pth"),
    "drunet": ("degrade_lab.importers.kair", "drunet", "KAIR's DRUNet: drunet_color.pth, drunet_gray.pth"),
    "esrgan": ("degrade_lab.importers.esrgan", "rrdbnet",
               "ESRGAN / Real-ESRGAN RRDBNet: RRDB_ESRGAN_x4.pth, RRDB_PSNR_x4.pth, RealESRGAN_x4plus.pth, "
               "RealESRGAN_x2plus.pth (all three key layouts)"),
    "deflow": ("degrade_lab.importers.deflow", "plan", "DeFlow's RRDBGlowNet (the authors' SRFlow layout); "
               "needs experiment=deflow_aim19 | deflow_ntire20 | deflow_dped"),
    "ludvae": ("degrade_lab.importers.ludvae", "plan", "LUD-VAE's network_ludvae.py LUDVAE (the five released "
               "ludvae.pth); needs experiment=ludvae_aim19 | ludvae_ntire20 | ludvae_sidd | ludvae_dnd | ludvae_lol"),
}
#: the kinds whose data-set settings are not in the weights: the preset they were trained with is needed
NEEDS_PRESET = {"deflow": "deflow_aim19, deflow_ntire20 or deflow_dped (DeFlow's settings are not all visible in "
                          "its weights)",
                "ludvae": "ludvae_aim19, ludvae_ntire20, ludvae_sidd, ludvae_dnd or ludvae_lol (the pre-noise levels "
                          "and AIM19's colour normalisation are not in the weights)"}


def model_config(model: str, scale: int, experiment: str | None) -> tuple[dict, int]:
    """The resolved ``model`` node that ``degrade-lab train model=MODEL data.scale=SCALE`` (or the experiment)
    composes, and its data scale."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from degrade_lab import resolvers  # noqa: F401  (the ${dl.*} resolvers)
    from degrade_lab.paths import config_dir

    overrides = [f"experiment={experiment}"] if experiment else [f"model={model}", f"data.scale={scale}"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    if experiment and OmegaConf.select(cfg, "model._target_", default="").rsplit(".", 1)[-1].lower() \
            != f"{model}module":
        raise UserInputError(f"experiment={experiment} trains {cfg.model._target_}, not a {model} model.")
    return OmegaConf.to_container(cfg.model, resolve=True), int(OmegaConf.select(cfg, "data.scale", default=1) or 1)


def import_weights(kind: str, file: str | Path, output: str | Path, experiment: str | None = None) -> Path:
    """Convert ``file`` (an authors' ``kind`` weights) into the degrade_lab model file ``output``; returns it."""
    from importlib import import_module

    from degrade_lab.importers.checks import load_converted, unwrap
    from degrade_lab.lit.base import instantiate_model
    from degrade_lab.utils.checkpoint import is_model_file, load_file, save_model_file
    from degrade_lab.utils.io import sha256_file
    from degrade_lab.utils.runs import package_versions

    if kind not in KINDS:
        raise UserInputError(f"unknown kind '{kind}'; choose one of: {', '.join(KINDS)}.")
    file, output = Path(file).expanduser(), Path(output).expanduser()
    if not is_model_file(output):
        raise UserInputError(f"output '{output}' must end in .ckpt or .safetensors.")
    module_name, function, what = KINDS[kind]
    if kind in NEEDS_PRESET and not experiment:
        raise UserInputError(f"import {kind} needs the preset the weights were trained with: experiment="
                             f"{NEEDS_PRESET[kind]}.")
    try:
        state = unwrap(load_file(file))
    except UserInputError as err:
        raise UserInputError(f"'{file}': {err}") from None
    try:
        plan = getattr(import_module(module_name), function)(state)
    except UserInputError as err:
        raise UserInputError(f"'{file}' is not {what}: {err}") from None
    config, scale = model_config(plan.model, plan.scale, experiment)
    if plan.net is not None:  # the file's shapes decide; the preset's other network settings stay
        same = config.get("net", {}).get("_target_") == plan.net["_target_"]
        config["net"] = {**config["net"], **plan.net} if same else plan.net
    if config.get("val_lpips"):
        config["val_lpips"] = None  # a training-time metric; its backbone is not needed to restore
    module = instantiate_model(config)
    try:
        load_converted(module.net, plan.convert(module.net), plan.layout)
    except UserInputError as err:
        raise UserInputError(f"'{file}': {err}") from None
    record = {"config": {"model": config, "data": {"scale": scale}, "experiment_name": f"import {kind}"},
              "seed": None, "versions": package_versions(), "global_step": 0,
              "imported_from": {"kind": kind, "file": str(file.resolve()), "sha256": sha256_file(file)}}
    save_model_file(output, module.state_dict(), record)
    return output


def main(argv: list[str]) -> int:
    kinds = "\n".join(f"  {name:<8} {text[2]}" for name, text in KINDS.items())
    parser = argparse.ArgumentParser(
        prog="degrade-lab import", usage="degrade-lab import KIND FILE output=MODEL.ckpt [experiment=NAME]",
        description=__doc__.splitlines()[0], epilog=f"kinds:\n{kinds}", formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("kind", choices=sorted(KINDS), metavar="KIND")
    parser.add_argument("file", metavar="FILE", help="the authors' weight file (.pth)")
    parser.add_argument("args", nargs="*", metavar="key=value", help="output=MODEL.ckpt (required), experiment=NAME")
    args = parser.parse_args(argv)
    try:
        values = key_values(args.args, ("output", "experiment"), "import")
        if "output" not in values:
            raise UserInputError("import needs output=MODEL.ckpt (or .safetensors).")
        path = import_weights(args.kind, args.file, values["output"], values.get("experiment"))
    except UserInputError as err:
        print(f"degrade-lab import: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0
