"""Which classes a model file's stored config may name, so that loading a checkpoint runs no code from it.

A checkpoint is read with ``torch.load(weights_only=True)`` (no pickled code), but its stored config
is then *instantiated* by Hydra: every ``_target_`` string there is imported and called. A file that is
plain data could therefore still name any callable (``os.system``, ``degrade_lab.utils.io.atomic_write_text``).
:func:`check_config` accepts only the explicit list below: degrade_lab's own models, networks,
degraders and losses, and torch's optimizers and schedulers. A new model adds its classes here (the
test ``test_every_shipped_config_target_is_trusted`` fails until it does).
"""

from __future__ import annotations

from pathlib import Path

from degrade_lab.errors import UserInputError

LIGHTNING_MODULES = (
    "degrade_lab.lit.restoration.RestorationModule",
    "degrade_lab.lit.esrgan.ESRGANModule",
    "degrade_lab.lit.vdir.VDIRModule",
    "degrade_lab.lit.ludvae.LUDVAEModule",
    "degrade_lab.lit.senmvae.SeNMVAEModule",
)
NETWORKS = (
    "degrade_lab.archs.dncnn.DnCNN",
    "degrade_lab.archs.drunet.DRUNet",
    "degrade_lab.archs.rrdbnet.RRDBNet",
    "degrade_lab.archs.vdir.VDIR",
    "degrade_lab.archs.ludvae.LUDVAE",
    "degrade_lab.archs.senmvae.SeNMVAE",
    "degrade_lab.archs.senmvae.NoiseLevelNet",
    "degrade_lab.archs.discriminators.VGGStyleDiscriminator",
    "degrade_lab.archs.discriminators.PatchDiscriminator",
    "degrade_lab.archs.discriminators.NLayerDiscriminator",
)
DEGRADERS = (
    "degrade_lab.degradations.base.Identity",
    "degrade_lab.degradations.noise.AWGN",
    "degrade_lab.degradations.noise.PoissonGaussian",
    "degrade_lab.degradations.blur.GaussianBlur",
    "degrade_lab.degradations.jpeg.JPEG",
    "degrade_lab.degradations.resize.Bicubic",
    "degrade_lab.degradations.resize.Decimate",
    "degrade_lab.degradations.lowlight.LowLight",
    "degrade_lab.degradations.camera.CameraPipeline",
    "degrade_lab.degradations.second_order.SecondOrder",
    "degrade_lab.degradations.compose.Compose",
    "degrade_lab.degradations.ludvae.LUDVAEDegrader",
    "degrade_lab.degradations.senmvae.SeNMVAEDegrader",
)
LOSSES = (
    "degrade_lab.losses.perceptual.VGGPerceptualLoss",
    "degrade_lab.losses.perceptual.LPIPSLoss",
)
OPTIMIZERS = tuple(
    f"torch.optim.{name}"
    for name in ("Adam", "AdamW", "Adamax", "Adadelta", "Adagrad", "NAdam", "RAdam", "RMSprop", "SGD")
)
SCHEDULERS = tuple(
    f"torch.optim.lr_scheduler.{name}"
    for name in ("MultiStepLR", "StepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                 "OneCycleLR", "LinearLR", "ConstantLR", "PolynomialLR")
)
TRUSTED_TARGETS = frozenset(LIGHTNING_MODULES + NETWORKS + DEGRADERS + LOSSES + OPTIMIZERS + SCHEDULERS)


def _walk(node, where: str):
    """Yield ``(key path, value)`` for every dict entry and list item under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            yield path, key, value
            yield from _walk(value, path)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            path = f"{where}[{index}]"
            yield path, None, value
            yield from _walk(value, path)


def check_config(config, source: str | Path, where: str = "") -> None:
    """Refuse a stored config (plain dicts and lists) that names anything outside :data:`TRUSTED_TARGETS`
    or holds OmegaConf interpolations (``${...}`` resolvers run code too): the file may be unsafe."""
    for path, key, value in _walk(config, where):
        if key == "_target_" and (not isinstance(value, str) or value not in TRUSTED_TARGETS):
            raise UserInputError(
                f"model file '{source}' may be unsafe: its stored config names {value!r} at '{path}', which "
                "is not one of degrade_lab's models, networks, degraders, losses, optimizers or schedulers; it "
                "was not loaded. Only load model files from sources you trust."
            )
        if isinstance(value, str) and "${" in value:
            raise UserInputError(
                f"model file '{source}' may be unsafe: its stored config holds the interpolation {value!r} at "
                f"'{path}' (degrade_lab stores resolved configs); it was not loaded."
            )
