"""DND (Plötz & Roth, CVPR 2017), sRGB, read as its authors ship it: ``info.mat`` and ``images_srgb/NNNN.mat``.

DND has no public ground truth: its 50 noisy photos each carry 20 bounding boxes of 512 x 512 that are denoised
and sent, bundled per image, to the benchmark server. Both files are MATLAB v7.3 (HDF5, read with h5py, the
``datasets`` extra): ``info.mat`` holds the struct ``info`` whose field ``boundingboxes`` references, per image, a
20 x 4 array of 1-based inclusive ``[top, left, bottom, right]`` pixel boxes; ``images_srgb/0001.mat`` holds
``InoisySRGB``, the H x W x 3 noisy image in [0, 1] (float32). :class:`DndCrops` gives the 1000 noisy crops
(``{"degraded", "name"}``, names ``IIII_BB`` counted from 1 as the benchmark names them) and
:func:`write_bundle` writes the server's ``bundled/NNNN.mat`` files (``Idenoised``: a 1 x 20 cell of the crops,
``israw`` false, ``eval_version`` "1.0"), atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import atomic_write, find_file
from degrade_lab.utils.matfile import import_h5py, read_mat


def find_dnd(root: str | Path) -> tuple[Path, Path]:
    """``(info.mat, images_srgb folder)`` under ``root``, wherever DND was unpacked; a missing part stops with what
    was expected."""
    root = Path(root).expanduser() if root else None
    if root is None or not root.is_dir():
        raise UserInputError(f"data.root='{root}' is not a folder: set it to where DND was unpacked.")
    info = find_file(root, "info.mat")
    images = info.parent / "images_srgb" if info is not None else None
    if info is None or not images.is_dir():
        raise UserInputError(f"no DND under '{root}': expected info.mat next to a folder images_srgb/ holding "
                             f"0001.mat ... 0050.mat (found info.mat: {info or 'none'}).")
    return info, images


def read_boxes(info: str | Path) -> np.ndarray:
    """The bounding boxes of ``info.mat``: ``images x boxes x 4`` int64, 1-based inclusive top, left, bottom, right."""
    h5py = import_h5py(Path(info))
    with h5py.File(info, "r") as file:
        if "info" not in file or "boundingboxes" not in file["info"]:
            raise UserInputError(f"'{info}' has no info.boundingboxes (DND's info.mat holds the struct 'info').")
        references = np.asarray(file["info"]["boundingboxes"]).reshape(-1)
        boxes = [np.asarray(file[ref]).transpose() for ref in references]
    shapes = {b.shape for b in boxes}
    if len(shapes) != 1 or next(iter(shapes))[1] != 4:
        raise UserInputError(f"'{info}': bounding boxes of shapes {sorted(shapes)}, expected boxes x 4 per image.")
    return np.stack(boxes).astype(np.int64)


class DndCrops(Dataset):
    """The noisy 512 x 512 crops of DND, ``{"degraded": 3 x H x W in [0, 1], "name": "IIII_BB"}``, in the order the
    benchmark bundles them; each photo is read once for its 20 crops (iterate in order)."""

    def __init__(self, root: str | Path):
        self.info, self.images = find_dnd(root)
        self.boxes = read_boxes(self.info)
        self.files = [self.images / f"{i + 1:04d}.mat" for i in range(len(self.boxes))]
        missing = [f.name for f in self.files if not f.is_file()]
        if missing:
            raise UserInputError(f"DND under '{self.images}' lacks {', '.join(missing[:5])}"
                                 f"{' ...' if len(missing) > 5 else ''} ({len(self.boxes)} images in info.mat).")
        self._cached: tuple[int, np.ndarray] | None = None

    #: no ground truth: ``evaluate`` restores the crops and writes the benchmark's submission
    ground_truth = False

    def submission(self, folder: str | Path) -> DndSubmission:
        """A writer of the restored crops into ``folder/bundled/`` (see :class:`DndSubmission`)."""
        return DndSubmission(Path(folder), self.boxes.shape[1])

    def __len__(self):
        return self.boxes.shape[0] * self.boxes.shape[1]

    def photo(self, image: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != image:
            array = read_mat(self.files[image], "InoisySRGB")
            if array.ndim != 3 or array.shape[-1] != 3:
                raise UserInputError(f"'{self.files[image]}': InoisySRGB has shape {array.shape}, expected H x W x 3.")
            self._cached = (image, array)
        return self._cached[1]

    def __getitem__(self, index):
        image, box = divmod(index, self.boxes.shape[1])
        top, left, bottom, right = (int(v) for v in self.boxes[image, box])
        crop = self.photo(image)[top - 1 : bottom, left - 1 : right]
        tensor = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)).permute(2, 0, 1)
        return {"degraded": tensor, "name": f"{image + 1:04d}_{box + 1:02d}"}


class DndSubmission:
    """Restored crops given one at a time (``add(name, crop)``) in the benchmark's order; each photo's bundle is written
    as soon as its crops are all there, so the 1000 crops are never all held in memory."""

    def __init__(self, folder: Path, boxes: int):
        self.folder, self.boxes = folder, boxes
        self.pending: dict[int, dict[str, torch.Tensor]] = {}

    def add(self, name: str, crop: torch.Tensor) -> None:
        photo = int(name.split("_")[0])
        self.pending.setdefault(photo, {})[name] = crop.detach().float().cpu().clamp(0, 1)
        if len(self.pending[photo]) == self.boxes:
            write_bundle(self.folder, self.pending.pop(photo), self.boxes)

    def close(self, seconds_per_megapixel: float) -> Path:
        """Every photo must be complete; returns the folder to upload (``bundled/``)."""
        if self.pending:
            photo, crops = next(iter(self.pending.items()))
            raise UserInputError(f"DND submission: photo {photo:04d} has {len(crops)} of its {self.boxes} crops restored.")
        return self.folder / "bundled"


def write_bundle(folder: str | Path, denoised: dict[str, torch.Tensor | np.ndarray], boxes: int = 20) -> list[Path]:
    """DND's submission: ``folder/bundled/NNNN.mat`` per photo from ``denoised`` crops keyed by name (``IIII_BB``;
    tensors 3 x H x W or arrays H x W x 3 in [0, 1]). Every photo needs all its ``boxes`` crops."""
    from scipy.io import savemat

    photos: dict[int, dict[int, np.ndarray]] = {}
    for name, crop in denoised.items():
        image, box = (int(part) for part in name.split("_"))
        if isinstance(crop, torch.Tensor):
            crop = crop.detach().float().cpu().permute(1, 2, 0).numpy()
        photos.setdefault(image, {})[box] = np.asarray(crop, dtype=np.float32)
    written = []
    for image in sorted(photos):
        missing = sorted(set(range(1, boxes + 1)) - set(photos[image]))
        if missing:
            raise UserInputError(f"DND bundle: photo {image:04d} lacks crops {missing}; every photo needs {boxes}.")
        cells = np.empty((1, boxes), dtype=object)
        for box in range(boxes):
            cells[0, box] = photos[image][box + 1]
        path = Path(folder) / "bundled" / f"{image:04d}.mat"
        payload = {"Idenoised": cells, "israw": False, "eval_version": "1.0"}
        atomic_write(path, lambda file, payload=payload: savemat(file, payload))
        written.append(path)
    return written


def dnd(kind: str = "test", root=None, **unused):
    """``data=dnd data.root=DIR``: the 1000 noisy crops for ``evaluate``, which restores them and writes the
    submission bundle (DND has no public ground truth). Nothing to train on: ``degrade-lab prepare dnd`` writes the
    crops as a degraded folder for an unpaired model (``data.target``)."""
    if kind != "test":
        raise UserInputError(
            "data=dnd has no ground truth and no training split: it is for evaluate (a restorer's submission). To "
            "learn DND's noise, write its crops as a folder, degrade-lab prepare dnd data.root=DND output=DIR, and "
            "train on data=folders data.target=DIR/dnd.")
    return DndCrops(root)
