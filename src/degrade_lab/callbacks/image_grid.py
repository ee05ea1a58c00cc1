"""Saves (and logs) a grid of the first validation images: degraded | restored | clean for restorers,
or whatever panels a model returns as ``{"grid": [tensors], "caption": str}`` (degradation models:
T(clean) | real degraded | synthetic)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from degrade_lab.data.transforms import center_crop
from degrade_lab.utils.io import write_png


class ImageGrid(pl.Callback):
    """After each validation, writes ``samples/step_<global step>.png`` (one row per image: degraded,
    restored, clean) in the run folder and sends it to TensorBoard / wandb when those loggers are on."""

    def __init__(self, max_images: int = 4, size: int = 128, folder: str = "samples"):
        self.max_images, self.size, self.folder = max_images, size, folder
        self.rows: list[torch.Tensor] = []
        self.ncols, self.caption = 3, ""

    def on_validation_epoch_start(self, trainer, pl_module):
        self.rows = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if len(self.rows) >= self.max_images or not isinstance(outputs, dict):
            return
        if "grid" in outputs:
            panels = [panel[:1].float() for panel in outputs["grid"]]
            self.caption = outputs.get("caption", "")
        elif "restored" in outputs:
            panels = [batch["degraded"][:1].float(), outputs["restored"][:1].float(), batch["clean"][:1].float()]
            self.caption = "degraded | restored | clean"
        else:
            return
        height, width = max(p.shape[-2] for p in panels), max(p.shape[-1] for p in panels)
        panels = [F.interpolate(p, size=(height, width), mode="nearest") for p in panels]
        row = torch.cat(panels).clamp(0, 1)
        self.rows.append(center_crop(row, self.size).cpu())

    def on_validation_epoch_end(self, trainer, pl_module):
        if not self.rows or trainer.sanity_checking or not trainer.is_global_zero:
            return
        # rows may differ in length (a degradation model shows extra samples for its first image)
        self.ncols = max(len(row) for row in self.rows)
        rows = [torch.cat([row, row.new_ones(self.ncols - len(row), *row.shape[1:])]) for row in self.rows]
        grid = make_grid(torch.cat(rows), nrow=self.ncols, padding=2, pad_value=1.0)
        step = trainer.global_step
        write_png(Path(trainer.default_root_dir) / self.folder / f"step_{step:07d}.png", grid)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image("val/samples", grid, step)
            elif type(logger).__name__ == "WandbLogger":
                logger.log_image("val/samples", [grid], step=step, caption=[self.caption])
