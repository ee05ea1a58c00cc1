"""The Python API: trained models as plain objects for other projects' code.

.. code-block:: python

    import degrade_lab

    restorer = degrade_lab.load_restorer("runs/dncnn/checkpoints/best.ckpt")
    restored = restorer.restore(noisy)              # 3 x H x W or B x 3 x H x W float in [0, 1], or a numpy image
    restored = restorer.restore(noisy, tile=512)     # in tiles (seamless when the margin covers the receptive field)

    degrader = degrade_lab.load_degrader("runs/ludvae/checkpoints/last.ckpt", noise_level=20)
    degraded = degrader(clean_batch, torch.Generator().manual_seed(0))   # B x 3 x H x W in [0, 1]
    degrader = degrade_lab.load_degrader("camera")   # any hand-made degrader by its config name, fields as keywords

Loading never runs code from a model file (:mod:`degrade_lab.utils.checkpoint`). ``degrade-lab restore`` is
:meth:`Restorer.restore` over a folder.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from degrade_lab.errors import UserInputError

log = logging.getLogger(__name__)

#: images above this many pixels are restored in tiles when ``tile="auto"`` (whole-image activations of a
#: 64-channel network at 4 megapixels already take about 1 GB per layer in float32)
AUTO_TILE_PIXELS = 4_194_304
#: the tile size that ``tile="auto"`` uses for large images
AUTO_TILE = 1024


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 convolutions natively (CUDA with bf16, or a CPU with AVX512-BF16 / AMX,
    where oneDNN has bf16 kernels; elsewhere bf16 would be emulated and slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        from degrade_lab.resolvers import cpu_bf16_precision

        return cpu_bf16_precision() == "bf16-mixed"
    return False


def uses_bf16(device: torch.device, precision: str) -> bool:
    """Whether ``precision`` (``32``, ``bf16``, or ``auto``: bf16 where it is fast) runs bfloat16 on ``device``."""
    precision = str(precision)
    if precision not in ("auto", "32", "bf16"):
        raise UserInputError(f"precision={precision}: choose auto, 32 or bf16.")
    return precision == "bf16" or (precision == "auto" and fast_bf16(device))


def autocast_for(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (:func:`uses_bf16`)."""
    if not uses_bf16(device, precision):
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class Restorer:
    """A trained restorer (from :func:`load_restorer`): ``restore(image)`` and ``restorer(image)``.

    Attributes: ``scale`` (1 for denoising, 2 / 4 for super-resolution), ``non_blind`` (the network takes a noise
    level), ``module`` (the LightningModule), ``record`` (the run's config, seed and versions), ``path``.
    """

    def __init__(self, module, record: dict, path: Path, device: torch.device):
        self.module, self.record, self.path, self.device = module.to(device).eval(), record, path, device
        self.scale = int(getattr(module, "scale", 1))
        self.non_blind = bool(getattr(getattr(module, "net", None), "noise_map", False))
        self._trained_level = getattr(module, "noise_level", None)
        self._layout = torch.contiguous_format

    def __repr__(self) -> str:
        return (f"Restorer({type(self.module.net).__name__}, scale={self.scale}, non_blind={self.non_blind}, "
                f"path='{self.path}')")

    def to(self, device) -> Restorer:
        """Move the network to ``device`` (and run there from now on)."""
        self.device = torch.device(device)
        self.module.to(self.device)
        return self

    def __call__(self, image, **options):
        return self.restore(image, **options)

    def network(self, noise_level=None):
        """The function batch -> restored batch, with the noise level a non-blind network takes."""
        if noise_level is not None and not self.non_blind:
            raise UserInputError(
                f"noise_level={noise_level} was given, but '{self.path}' holds a blind restorer "
                f"({type(self.module.net).__name__} takes no noise level): leave noise_level out.")
        if self.non_blind:
            level = noise_level if noise_level is not None else self._trained_level
            if level is None:
                raise UserInputError(
                    f"'{self.path}' is a non-blind restorer ({type(self.module.net).__name__} takes the noise "
                    "level): give noise_level=SIGMA (0-255), or noise_level=auto for each image's estimated level.")
            if level != "auto":
                level = float(level)
            self.module.noise_level = level
        return self.module

    def restore_batch(self, batch: torch.Tensor, tile: int | str | None = "auto", tile_margin: int = 32,
                      tile_multiple: int = 8, self_ensemble: bool = False, noise_level=None,
                      precision: str = "32", channels_last: bool = True) -> torch.Tensor:
        """``B x C x H x W`` float in [0, 1] -> the restored batch (float32, on this restorer's device, not
        clipped). ``tile``: pixels per tile, 0 / None for whole images, ``auto`` for tiles of
        :data:`AUTO_TILE` above :data:`AUTO_TILE_PIXELS` pixels. ``channels_last``: NHWC memory layout, faster
        for most networks on CPU (oneDNN) and with bf16 (``benchmarks/bench_restore.py``)."""
        from degrade_lab.utils.inference import self_ensemble as ensemble
        from degrade_lab.utils.inference import tiled

        network = self.network(noise_level)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        if self._layout != layout:
            self.module.to(memory_format=layout)
            self._layout = layout
        size = self.tile_for(batch.shape[-2:], tile)

        def restore(x, base=network):
            return base(x.contiguous(memory_format=layout))

        if self_ensemble:
            def restore(x, base=restore):
                return ensemble(base, x)
        batch = batch.to(self.device, torch.float32)
        with torch.inference_mode(), autocast_for(self.device, precision):
            if size:
                out = tiled(restore, batch, size, int(tile_margin), self.scale, int(tile_multiple))
            else:
                out = restore(batch)
        return out.float()

    def seams(self, image: torch.Tensor, tile: int, tile_margin: int, tile_multiple: int = 8, noise_level=None,
              crop: int = 128) -> dict | None:
        """What tiling with ``tile_margin`` costs on ``image`` (``3 x H x W``), or None when the margin covers the
        network's receptive field (:func:`~degrade_lab.utils.tiling.receptive_radius`, from its gradient): then tiles
        give exactly the whole-image result. Else the largest difference, in 8-bit grey levels, between a centre
        crop of ``image`` restored whole and in tiles of ``min(tile, crop)`` px with that margin (fp32)."""
        from degrade_lab.utils.tiling import receptive_radius

        network = self.network(noise_level)
        self.module.to(memory_format=torch.contiguous_format)
        self._layout = torch.contiguous_format
        radius, reached = receptive_radius(network, size=97, scale=self.scale, device=self.device)
        if int(tile_margin) >= radius and not reached:
            return None
        small = max(16, min(int(tile), crop))
        height, width = image.shape[-2:]
        top, left = max(0, (height - 3 * small) // 2), max(0, (width - 3 * small) // 2)
        window = image[None, :, top : top + 3 * small, left : left + 3 * small]
        whole = self.restore_batch(window, tile=0, precision="32").clamp(0, 1)
        tiles = self.restore_batch(window, tile=small, tile_margin=int(tile_margin), tile_multiple=tile_multiple,
                                   precision="32").clamp(0, 1)
        return {"receptive_radius": radius, "at_least": reached, "tile_margin": int(tile_margin),
                "max_difference_grey_levels": round(float((whole - tiles).abs().max()) * 255, 3),
                "crop": list(window.shape[-2:]), "tile": small}

    @staticmethod
    def tile_for(size, tile) -> int:
        """The tile size (0: whole image) for an image of ``size`` (H, W) under the ``tile`` option."""
        if tile in (None, 0, "0"):
            return 0
        if str(tile) == "auto":
            return AUTO_TILE if size[0] * size[1] > AUTO_TILE_PIXELS else 0
        tile = int(tile)
        if tile < 16:
            raise UserInputError(f"tile={tile}: give at least 16 pixels, 0 for whole images or auto.")
        return tile

    def restore(self, image, **options):
        """Restore one image or a batch; the result has the input's kind.

        ``image``: a torch tensor ``3 x H x W`` or ``B x 3 x H x W`` (float in [0, 1]), or a numpy array
        ``H x W x 3`` / ``H x W`` (uint8, uint16 or float in [0, 1]; grey is restored as RGB and returned as the
        channels' mean). Tensors come back as float32 tensors clipped to [0, 1] on the input's device; numpy
        arrays as the input's dtype, rounded. ``options``: those of :meth:`restore_batch`.
        """
        if isinstance(image, torch.Tensor):
            if image.dim() not in (3, 4) or image.shape[-3] != 3:
                raise UserInputError(f"expected a 3 x H x W or B x 3 x H x W tensor, got shape {tuple(image.shape)}")
            if not image.is_floating_point():
                raise UserInputError(f"expected a float tensor in [0, 1], got {image.dtype}")
            batch = image if image.dim() == 4 else image[None]
            out = self.restore_batch(batch, **options).clamp(0, 1).to(image.device)
            return out if image.dim() == 4 else out[0]
        array = np.asarray(image)
        grey = array.ndim == 2
        if grey:
            array = np.repeat(array[..., None], 3, axis=2)
        if array.ndim != 3 or array.shape[2] != 3:
            raise UserInputError(f"expected an H x W x 3 or H x W image, got shape {np.asarray(image).shape}")
        peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype)
        if peak is None and not np.issubdtype(array.dtype, np.floating):
            raise UserInputError(f"expected uint8, uint16 or float pixels, got {array.dtype}")
        batch = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float32))[None]
        if peak is not None:
            batch = batch / peak
        out = self.restore_batch(batch, **options).clamp(0, 1)[0].cpu()
        out = out.mean(dim=0) if grey else out.permute(1, 2, 0)
        result = out.numpy()
        if peak is not None:
            return np.round(result * peak).astype(array.dtype)
        return result.astype(array.dtype)


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_restorer(ckpt: str | Path, device=None) -> Restorer:
    """The restorer of a checkpoint written by ``degrade-lab train`` (or ``import`` / ``export``), on ``device``
    (default: CUDA where available). A degradation model's checkpoint is refused with what to use instead."""
    from degrade_lab.utils.checkpoint import load_model

    path = Path(ckpt).expanduser()
    module, record = load_model(path)
    if getattr(module, "data_kind", "paired") != "paired":
        name = type(module).__module__.rsplit(".", 1)[-1]
        raise UserInputError(
            f"'{path}' holds a degradation model ({type(module).__name__}), not a restorer: it degrades clean "
            f"images (degrade-lab synthesize degrader={name} degrader.ckpt={path}, or "
            "degrade_lab.load_degrader in Python).")
    return Restorer(module, record, path, _device(device))


def load_degrader(name_or_ckpt: str | Path, device=None, **options):
    """A degrader: ``degrader(clean, generator)`` maps ``B x 3 x H x W`` in [0, 1] to the degraded batch (smaller
    by ``degrader.scale`` for down-sampling ones) and records what it drew per image in ``last_parameters``.

    ``name_or_ckpt``: a config name of ``conf/degrader`` (``awgn``, ``camera``, ``jpeg``, ...), whose fields
    ``options`` set (``load_degrader("awgn", sigma=[5, 50])``), or a trained degradation model's checkpoint
    (LUD-VAE, SeNM-VAE, DeFlow), whose degrader config ``options`` set the same way
    (``noise_level=20``, ``options={"temperature": 0.8}``).
    """
    from degrade_lab.degradations.build import build_degrader, degrader_config
    from degrade_lab.degradations.learned import model_name
    from degrade_lab.utils.checkpoint import is_model_file, read_checkpoint

    text = str(name_or_ckpt)
    if is_model_file(text):
        path = Path(text).expanduser()
        target = str(read_checkpoint(path)["degrade_lab"]["config"]["model"]["_target_"])
        name = model_name(target)
        try:
            spec = degrader_config(name)
        except UserInputError:
            raise UserInputError(f"'{path}' holds a {target} model, which is not a degradation model: load it "
                                 "with degrade_lab.load_restorer.") from None
        spec = OmegaConf.merge(spec, {"ckpt": str(path)})
    else:
        spec = degrader_config(text)
    if options:
        unknown = [key for key in options if key not in spec]
        if unknown:
            raise UserInputError(f"degrader '{text}' has no option {', '.join(unknown)}; its options: "
                                 f"{', '.join(k for k in spec if k not in ('_target_', 'ckpt', 'trained_by'))}.")
        spec = OmegaConf.merge(spec, options)
    degrader = build_degrader(OmegaConf.to_container(spec, resolve=True))
    return degrader.to(_device(device)).eval()
