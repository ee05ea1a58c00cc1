"""Reading user images robustly and writing every output atomically (temp file + rename)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from degrade_lab.errors import UserInputError

_UMASK = os.umask(0)
os.umask(_UMASK)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path, what: str = "image folder") -> list[Path]:
    """All images under ``folder`` (recursive), sorted; raises if the folder is missing or has none."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise UserInputError(f"{what} '{root}' does not exist.")
    if not root.is_dir():
        raise UserInputError(f"{what} '{root}' is not a folder.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"{what} '{root}' holds no images (looked recursively for {', '.join(IMAGE_SUFFIXES)})."
        )
    return files


def _to_float(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(array.astype(np.float32), 0.0, 1.0)
    raise UserInputError(f"image '{path}' has unsupported pixel type {array.dtype}.")


def _to_rgb(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise UserInputError(f"image '{path}' has shape {array.shape}; expected H x W (x C).")
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels == 2:  # grey + alpha
        return np.repeat(array[..., :1], 3, axis=2)
    if channels >= 3:  # RGBA and extra channels: keep colour, drop alpha
        return array[..., :3]
    raise UserInputError(f"image '{path}' has {channels} channels.")


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image as a float32 RGB tensor ``3 x H x W`` in [0, 1].

    8- and 16-bit PNG/TIFF, JPEG, BMP, WebP; greyscale is repeated to RGB and alpha dropped.
    Any failure raises :class:`UserInputError` naming the file.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UserInputError(f"image '{path}' is an empty file (0 bytes).")
    except FileNotFoundError as err:
        raise UserInputError(f"image '{path}' does not exist.") from err
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
            if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
                array = np.moveaxis(array, 0, -1)  # planar TIFF
        else:
            with Image.open(path) as im:
                im.load()
                if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                    im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
                if im.mode.startswith("I"):  # 16-bit files ("I;16*", or "I" in some Pillow versions)
                    array = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
                else:
                    array = np.asarray(im)
    except UserInputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UserInputError(f"image '{path}' cannot be read ({type(err).__name__}: {err}).") from err
    array = _to_rgb(_to_float(np.asarray(array), path), path)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UserInputError(f"image '{path}' has zero size {array.shape[:2]}.")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """Float images rounded to 8 bits and clipped to [0, 1], as a saved PNG would hold them."""
    return image.float().clamp(0, 1).mul(255).round().div(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``3 x H x W`` float tensor in [0, 1] -> ``H x W x 3`` uint8 array (rounded, clipped)."""
    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return array.transpose(1, 2, 0)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | Path, rows: list[dict], fieldnames: list[str]) -> None:
    """Rows of dicts as a CSV file with a header, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def png_bytes(image: torch.Tensor) -> bytes:
    """A ``3 x H x W`` [0, 1] tensor encoded as an 8-bit PNG."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_png(path: str | Path, image: torch.Tensor) -> bytes:
    """Write a ``3 x H x W`` [0, 1] tensor as an 8-bit PNG atomically; returns the bytes written."""
    data = png_bytes(image)
    atomic_write_bytes(path, data)
    return data


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def relative_stems(files: Iterable[Path], root: Path) -> dict[str, Path]:
    """Map each file's path relative to ``root`` without suffix (``sub/name``) to the file.

    Two files with the same stem in one folder (``a.png`` and ``a.jpg``) are ambiguous: error.
    """
    stems: dict[str, Path] = {}
    for file in files:
        key = file.relative_to(root).with_suffix("").as_posix()
        if key in stems:
            raise UserInputError(
                f"'{stems[key]}' and '{file}' have the same name stem '{key}'; pairs are matched by stem, "
                "so keep one of them."
            )
        stems[key] = file
    return stems


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UserInputError(f"image '{path}' is an empty file (0 bytes).")
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
            if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
                return int(shape[1]), int(shape[2])
            return int(shape[0]), int(shape[1])
        with Image.open(path) as im:
            width, height = im.size
        return height, width
    except UserInputError:
        raise
    except FileNotFoundError as err:
        raise UserInputError(f"image '{path}' does not exist.") from err
    except Exception as err:  # any decoder error means the same thing to the user
        raise UserInputError(f"image '{path}' cannot be read ({type(err).__name__}: {err}).") from err
