"""Random crops and the eight flip/rotation modes, applied identically to aligned images."""

from __future__ import annotations

import torch

from degrade_lab.errors import UserInputError


def augment(images: list[torch.Tensor], mode: int) -> list[torch.Tensor]:
    """Apply one of the 8 dihedral transforms (mode 0 = identity) to every ``C x H x W`` image."""
    out = []
    for image in images:
        if mode & 1:
            image = image.flip(-1)
        if mode & 2:
            image = image.flip(-2)
        if mode & 4:
            image = image.transpose(-1, -2)
        out.append(image.contiguous())
    return out


def center_offset(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the centred ``size x size`` window of a ``height x width`` image (0 where it is smaller)."""
    return max((height - size) // 2, 0), max((width - size) // 2, 0)


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The centred ``size x size`` window of ``... x H x W`` images (the whole side where it is smaller)."""
    top, left = center_offset(*image.shape[-2:], size)
    return image[..., top : top + size, left : left + size]


def random_augment(images: list[torch.Tensor], generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """One of the 8 modes, drawn from ``generator`` (the global stream when ``None``)."""
    return augment(images, int(torch.randint(8, (1,), generator=generator)))


def crop_offsets(height: int, width: int, size: int, name: str = "image",
                 generator: torch.Generator | None = None) -> tuple[int, int]:
    """(top, left) of a random ``size x size`` window of a ``height x width`` image, drawn from ``generator``."""
    if height < size or width < size:
        raise UserInputError(f"{name} is {height}x{width}, smaller than the {size}x{size} crop; lower the crop size.")
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    return top, left


def random_crop(image: torch.Tensor, size: int, name: str = "image",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A random ``size x size`` window of ``... x H x W`` images."""
    top, left = crop_offsets(*image.shape[-2:], size, name, generator)
    return image[..., top : top + size, left : left + size]


def random_crop_pair(
    clean: torch.Tensor, degraded: torch.Tensor, size: int, scale: int = 1, name: str = "pair",
    generator: torch.Generator | None = None, channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned crops: ``size`` on the clean side, ``size / scale`` on the degraded side.

    The degraded crop starts at ``(top, left)`` and the clean one at ``(top * scale, left * scale)``,
    so both show the same scene region for SR pairs. ``channels_last``: the images are ``H x W x C`` arrays
    (decoded pixels, cropped before conversion) instead of ``C x H x W`` tensors.
    """
    if size % scale:
        raise UserInputError(f"crop size {size} is not divisible by the scale {scale}.")
    lr_size = size // scale
    height, width = degraded.shape[:2] if channels_last else degraded.shape[-2:]
    if height < lr_size or width < lr_size:
        raise UserInputError(
            f"{name}: degraded image is {height}x{width}, smaller than the {lr_size}x{lr_size} crop; "
            "lower the crop size."
        )
    top, left = crop_offsets(height, width, lr_size, name, generator)
    rows, columns = slice(top, top + lr_size), slice(left, left + lr_size)
    hr_rows, hr_columns = slice(top * scale, top * scale + size), slice(left * scale, left * scale + size)
    if channels_last:
        return clean[hr_rows, hr_columns], degraded[rows, columns]
    return clean[..., hr_rows, hr_columns], degraded[..., rows, columns]
