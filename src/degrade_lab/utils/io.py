"""Reading user images robustly and writing every output atomically (temp file + rename)."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from degrade_lab.errors import UserInputError

log = logging.getLogger(__name__)
_UMASK = os.umask(0)
os.umask(_UMASK)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Images above this many pixels are refused from their header, before decoding (decompression bombs,
# or a photo far larger than intended): 120 MP admits every current camera (a 100 MP medium-format
# frame is 102 MP). `max_pixels=N` on any task changes it; the CLI passes it to data-loader workers
# through the environment.
DEFAULT_MAX_PIXELS = 120_000_000
_MAX_PIXELS_ENV = "DEGRADE_LAB_MAX_PIXELS"
Image.MAX_IMAGE_PIXELS = None  # our own limit (below) applies, with a message naming the file and the option
# The temporary files of atomic_write are named ``.NAME.<TAG>-<8 random characters>.tmp``. TAG is chosen once per
# run (and inherited by the processes it starts: DDP ranks), and the run's lock file records it
# (:class:`~degrade_lab.utils.lock.OutputLock`), so that a later run deletes exactly the temporaries of a killed run
# whose lock it takes over, never a user's file that happens to look like one.
_TAG_ENV = "DEGRADE_LAB_TEMP_TAG"
if not re.fullmatch(r"[0-9a-f]{16}", os.environ.get(_TAG_ENV, "")):
    os.environ[_TAG_ENV] = secrets.token_hex(8)
TEMP_TAG = os.environ[_TAG_ENV]


def _temporary_pattern(tag: str) -> re.Pattern:
    return re.compile(rf"^\..+\.{re.escape(tag)}-[a-z0-9_]{{8}}\.tmp$")


def file_mode() -> int:
    """The permissions an ordinary new file gets under this process's umask (mkstemp gives 0600)."""
    return 0o666 & ~_UMASK


def set_max_pixels(limit: int | None) -> None:
    """Set the pixel limit of :func:`image_size` / :func:`read_image` (``None``: the default)."""
    if limit is None:
        os.environ.pop(_MAX_PIXELS_ENV, None)
        return
    limit = int(limit)
    if limit <= 0:
        raise UserInputError(f"max_pixels={limit}: give a positive number of pixels.")
    os.environ[_MAX_PIXELS_ENV] = str(limit)


def max_pixels() -> int:
    return int(os.environ.get(_MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS))


def _check_pixels(path: Path, height: int, width: int) -> None:
    limit = max_pixels()
    if height * width > limit:
        raise UserInputError(
            f"image '{path}' is {height}x{width} ({height * width / 1e6:.0f} megapixels), above the limit of "
            f"{limit / 1e6:g} megapixels (a decompression bomb, or a much larger image than intended); raise the "
            f"limit with max_pixels={height * width} if it is genuine."
        )


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


def _png_bit_depth(path: Path) -> int:
    """The bit depth field of a PNG's IHDR chunk (byte 24), 0 if the file is not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(25)
    return head[24] if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" else 0


#: EXIF / TIFF orientation tag
ORIENTATION_TAG = 0x0112


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``H x W (x C)`` pixels as the camera meant them to be seen, from their stored order and EXIF ``orientation``
    (1-8, as Pillow's ``ImageOps.exif_transpose``: 6 is a phone held upright, stored rotated by 90 degrees)."""
    transpose = (1, 0, *range(2, array.ndim))
    return {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(transpose),
        6: lambda a: a.transpose(transpose)[:, ::-1],
        7: lambda a: a.transpose(transpose)[::-1, ::-1],
        8: lambda a: a.transpose(transpose)[::-1],
    }.get(int(orientation), lambda a: a)(array)


def _warn_frames(path: Path, frames: int) -> None:
    if frames > 1:
        log.warning("image '%s' holds %d frames (an animation or a multi-page file): its first frame is used", path,
                    frames)


def _decode(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            shape = page.shape
            planar = len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4)
            _check_pixels(path, *(shape[1:3] if planar else shape[:2]))
            _warn_frames(path, len(tif.pages))
            tag = page.tags.get(ORIENTATION_TAG)
            array = page.asarray()
        array = np.moveaxis(array, 0, -1) if planar else array
        return orient(array, int(tag.value) if tag is not None else 1)
    with Image.open(path) as im:
        _check_pixels(path, im.size[1], im.size[0])
        _warn_frames(path, int(getattr(im, "n_frames", 1)))
        orientation = int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
        if im.mode in ("RGB", "RGBA") and _png_bit_depth(path) == 16:
            # Pillow decodes 16-bit colour PNGs to 8 bits; libpng through imagecodecs keeps all 16
            import imagecodecs

            return orient(imagecodecs.png_decode(path.read_bytes()), orientation)
        im.load()
        if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
            im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
        if im.mode.startswith("I"):  # 16-bit greyscale ("I;16*", or "I" in some Pillow versions)
            return orient(np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16), orientation)
        return orient(np.asarray(im), orientation)


#: what a manifest says of orientation (each rotated file's entry carries its ``exif_orientation``)
ORIENTATION_NOTE = "EXIF orientation applied on read (each rotated file's entry gives its exif_orientation)"


def orientation(path: str | Path) -> int:
    """The EXIF (or TIFF) orientation of an image file, 1 (as stored) to 8, read from its header; every reader here
    applies it (:func:`read_pixels`), as Pillow's ``ImageOps.exif_transpose`` does."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                tag = tif.pages[0].tags.get(ORIENTATION_TAG)
            value = int(tag.value) if tag is not None else 1
        else:
            with Image.open(path) as im:
                value = int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # an unreadable file is named by the reader itself
        return 1
    return value if 1 <= value <= 8 else 1


def read_pixels(path: str | Path) -> np.ndarray:
    """The decoded pixels of an image file, ``H x W x 3`` in the file's own type (uint8, uint16 or float32), RGB
    (grey repeated, alpha dropped): what :func:`read_image` converts, and what the training data's decoded-image
    store keeps (a crop converted later equals the same crop of :func:`read_image`). Any failure raises
    :class:`UserInputError` naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UserInputError(f"image '{path}' is an empty file (0 bytes).")
    except FileNotFoundError as err:
        raise UserInputError(f"image '{path}' does not exist.") from err
    try:
        array = np.asarray(_decode(path))
    except UserInputError:
        raise
    except Exception as err:  # Pillow's, imagecodecs' and tifffile's decoder errors all mean the same to the user
        raise UserInputError(f"image '{path}' cannot be read ({type(err).__name__}: {err}).") from err
    if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
        raise UserInputError(f"image '{path}' has unsupported pixel type {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating) and array.dtype != np.float32:
        array = array.astype(np.float32)
    array = np.ascontiguousarray(_to_rgb(array, path))
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UserInputError(f"image '{path}' has zero size {array.shape[:2]}.")
    return array


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` pixels of :func:`read_pixels` (or a crop of them) as a float32 ``3 x H x W`` tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(_to_float(pixels, Path("?")).transpose(2, 0, 1)))


def read_image_and_depth(path: str | Path) -> tuple[torch.Tensor, int]:
    """:func:`read_image` and the file's bits per sample (8, 16, or 32 for float TIFFs)."""
    pixels = read_pixels(path)
    return pixels_to_tensor(pixels), 8 * pixels.dtype.itemsize


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image as a float32 RGB tensor ``3 x H x W`` in [0, 1].

    8- and 16-bit PNG (16-bit colour PNGs at full precision), 8/16-bit and float TIFF, JPEG, BMP, WebP;
    greyscale is repeated to RGB and alpha dropped. Images above :func:`max_pixels` are refused from
    their header. Any failure raises :class:`UserInputError` naming the file.
    """
    return read_image_and_depth(path)[0]


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """Float images rounded to 8 bits and clipped to [0, 1], as a saved PNG would hold them."""
    return image.float().clamp(0, 1).mul(255).round().div(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``3 x H x W`` float tensor in [0, 1] -> ``H x W x 3`` uint8 array (rounded, clipped)."""
    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return array.transpose(1, 2, 0)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(handle)`` on a temporary file in ``path``'s folder, then rename it into place: a reader
    never sees a half-written file, and a kill leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{TEMP_TAG}-", suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as handle:  # by name, so the handle knows its path
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        full = _disk_full(err)
        if full is not None:
            free = shutil.disk_usage(path.parent).free
            kept = "the previous version of it is intact" if path.exists() else "nothing was left of it"
            raise UserInputError(
                f"could not write '{path}': {os.strerror(full.errno)} ({free / 1e9:.2f} GB free in '{path.parent}'); "
                f"{kept}. Free some space or write elsewhere, then run the command again: synthesize and restore "
                "skip the files they finished, a training run continues with resume=RUN_FOLDER.") from err
        raise


#: the errors of a full disk or quota (and a file over the filesystem's size limit)
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _disk_full(err: BaseException) -> OSError | None:
    """The full-disk :class:`OSError` behind ``err``, if any (torch.save reports it as a RuntimeError whose context
    is the OSError)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL:
            return err
        err = err.__cause__ or err.__context__
    return None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | Path, rows: list[dict], fieldnames: list[str]) -> None:
    """Rows of dicts as a CSV file with a header, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _finite_json(obj, where: str, found: dict):
    """``obj`` with every non-finite float replaced by ``None``; ``found[key path] = "inf" | "-inf" | "nan"``."""
    if isinstance(obj, dict):
        return {k: _finite_json(v, f"{where}/{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        found[where] = str(obj)
        return None
    return obj


def atomic_write_json(path: str | Path, obj) -> None:
    """Strict JSON (no ``Infinity`` / ``NaN`` tokens): a non-finite number is written as ``null`` and named,
    with its value, under ``"non_finite"`` (a PSNR of identical images is ``inf``)."""
    found: dict[str, str] = {}
    obj = _finite_json(obj, "", found)
    if found and isinstance(obj, dict):
        obj["non_finite"] = {key: f"{value} (not representable in JSON, written as null)"
                             for key, value in found.items()}
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n")


def png_bits(option, input_bits: int) -> int:
    """Bits per sample of a written PNG under ``bit_depth=option``: ``auto`` keeps 16 bits for 16-bit (and float)
    inputs, else 8; or ``8`` / ``16``."""
    if str(option) == "auto":
        return 8 if input_bits <= 8 else 16
    if str(option) not in ("8", "16"):
        raise UserInputError(f"bit_depth={option}: choose auto, 8 or 16.")
    return int(option)


def png_bytes(image: torch.Tensor, bits: int = 8) -> bytes:
    """A ``3 x H x W`` [0, 1] tensor encoded as an 8- or 16-bit RGB PNG."""
    if bits == 16:
        import imagecodecs  # Pillow cannot write 16-bit colour PNGs

        array = image.detach().float().clamp(0, 1).mul(65535).round().cpu().numpy().astype(np.uint16)
        return bytes(imagecodecs.png_encode(np.ascontiguousarray(array.transpose(1, 2, 0)), level=1))
    if bits != 8:
        raise ValueError(f"PNG outputs have 8 or 16 bits, not {bits}")
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_png(path: str | Path, image: torch.Tensor, bits: int = 8) -> bytes:
    """Write a ``3 x H x W`` [0, 1] tensor as an 8- or 16-bit PNG atomically; returns the bytes written."""
    data = png_bytes(image, bits)
    atomic_write_bytes(path, data)
    return data


def remove_stale_temporaries(folder: str | Path, tag: str | None) -> int:
    """Delete the temporary files that a killed writer whose run tag was ``tag`` left under ``folder``
    (``.NAME.<tag>-<8 random characters>.tmp``, as :func:`atomic_write` names them; the tag read from the killed run's
    lock file); nothing else, whatever its name. :class:`~degrade_lab.utils.lock.OutputLock` calls it when it takes
    over a stale lock. Returns how many were removed."""
    root = Path(folder)
    if not tag or not re.fullmatch(r"[0-9a-f]{16}", str(tag)) or not root.is_dir():
        return 0
    pattern = _temporary_pattern(str(tag))
    stale = [p for p in root.rglob(f".*.{tag}-*.tmp") if pattern.match(p.name) and p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted run under %s", len(stale), root)
    return len(stale)


def check_separate(inputs: dict[str, str | Path], output: str | Path, what: str = "output") -> Path:
    """Refuse an ``output`` folder that is, contains or lies inside any input folder (symlinks resolved),
    so that no run ever writes into its own inputs. Returns the resolved output path."""
    target = Path(output).expanduser().resolve()
    for name, folder in inputs.items():
        source = Path(folder).expanduser().resolve()
        if target == source or source in target.parents or target in source.parents:
            relation = ("is" if target == source else "lies inside" if source in target.parents else "contains")
            raise UserInputError(
                f"{what} '{target}' {relation} {name} '{source}': outputs must never overlap inputs (the inputs "
                "would be overwritten or read back as new inputs); choose a separate folder."
            )
    return target


def contained_path(root: Path, relative: str | Path) -> Path:
    """``root / relative`` for a file a command writes into its output folder ``root``, refused unless it lies inside
    ``root`` without passing through a symbolic link: ``relative`` has no ``..`` and is not absolute, and no folder
    between ``root`` and the file is a link (or a file). A link at the file itself is replaced by the write (a
    rename), never followed. Writing through a link could reach the inputs or any other folder."""
    relative = Path(relative)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UserInputError(f"'{relative}' would be written outside the output folder '{root}'.")
    current = root
    for part in relative.parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break  # created by the write, as a real folder
        if stat.S_ISLNK(mode):
            raise UserInputError(
                f"'{current}' is a symbolic link inside the output folder '{root}': degrade_lab never writes through "
                "links (they can lead into the inputs or anywhere else); remove it or choose another output folder.")
        if not stat.S_ISDIR(mode):
            raise UserInputError(f"'{current}' is a file where the output folder '{root}' needs a folder.")
    return root / relative


#: the files of an output folder that degrade_lab itself keeps there (beside what the manifest lists)
OWN_FILES = re.compile(r"^(manifest(\.rank\d+)?\.json|\.degrade_lab\.lock|\..+\.[0-9a-f]{16}-[a-z0-9_]{8}\.tmp)$")


def check_foreign(folder: Path, overwrite: bool, what: str = "output folder") -> None:
    """Refuse a non-empty ``folder`` that holds no ``manifest.json`` of an earlier run into it (so degrade_lab did not
    fill it): its files are the user's and would be overwritten. Names the first such file; ``overwrite=true`` writes
    anyway (files of the same name are replaced, the others kept)."""
    if overwrite or not folder.is_dir() or (folder / "manifest.json").is_file():
        return
    foreign = None
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):  # a link is an entry, never entered
        links = [name for name in dirnames if os.path.islink(os.path.join(dirpath, name))]
        for name in sorted(filenames + links):
            if not OWN_FILES.match(name) or os.path.islink(os.path.join(dirpath, name)):
                entry = Path(dirpath) / name
                foreign = entry if foreign is None else min(foreign, entry)
    if foreign is not None:
        raise UserInputError(
            f"{what} '{folder}' already holds files that degrade_lab did not write there (first: '{foreign}') and "
            "no manifest.json of an earlier run: they could be overwritten. Choose an empty or new folder, or "
            "give overwrite=true to write into it anyway.")


def writable_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that files can be written in it."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{what} '{folder}' is a file, not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserInputError(f"{what} '{folder}' cannot be written ({err.strerror or err}).") from err
    return folder


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_file(root: Path, name: str) -> Path | None:
    """The file called ``name`` (any letter case) anywhere under ``root``, the shallowest if there are several: where
    a user unpacked a data set's part."""
    found = sorted((p for p in Path(root).rglob("*") if p.name.lower() == name.lower() and p.is_file()),
                   key=lambda p: (len(p.parts), str(p)))
    return found[0] if found else None


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
                tag = tif.pages[0].tags.get(ORIENTATION_TAG)
                turned = tag is not None and int(tag.value) in (5, 6, 7, 8)
            planar = len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4)
            height, width = (int(shape[1]), int(shape[2])) if planar else (int(shape[0]), int(shape[1]))
            _check_pixels(path, height, width)
        else:
            with Image.open(path) as im:
                width, height = im.size
                _check_pixels(path, height, width)  # from the header alone, before anything else is read
                try:  # a PNG may keep its EXIF after the pixels: a truncated file is named when it is decoded
                    turned = int(im.getexif().get(ORIENTATION_TAG, 1) or 1) in (5, 6, 7, 8)
                except Exception:  # noqa: BLE001
                    turned = False
        # as read (:func:`orient`): an image stored on its side (EXIF orientation 5 to 8) has height and width swapped
        return (width, height) if turned else (height, width)
    except UserInputError:
        raise
    except FileNotFoundError as err:
        raise UserInputError(f"image '{path}' does not exist.") from err
    except Exception as err:  # any decoder error means the same thing to the user
        raise UserInputError(f"image '{path}' cannot be read ({type(err).__name__}: {err}).") from err
