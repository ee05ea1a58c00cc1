"""DND read as its authors ship it, on a miniature written here: MATLAB v7.3 info.mat (the struct ``info`` whose
``boundingboxes`` references one boxes x 4 array per photo) and images_srgb/NNNN.mat (``InoisySRGB``), stored as
MATLAB stores them (column-major: axes reversed in HDF5); fewer, smaller photos and boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from degrade_lab.data.dnd import DndCrops, read_boxes, write_bundle
from degrade_lab.errors import UserInputError

h5py = pytest.importorskip("h5py")
HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


def _matlab_file(path):
    file = h5py.File(path, "w", userblock_size=512)
    return file


def _header(path):
    with open(path, "r+b") as file:
        file.write(HEADER)


def write_dnd(root, photos=2, boxes=3, size=(40, 56)):
    """DND/info.mat + DND/images_srgb/000I.mat; returns the photos (H x W x 3) and boxes (photos x boxes x 4)."""
    rng = np.random.default_rng(0)
    (root / "images_srgb").mkdir(parents=True, exist_ok=True)
    images = [rng.random((*size, 3), dtype=np.float32) for _ in range(photos)]
    all_boxes = []
    for i, image in enumerate(images):
        path = root / "images_srgb" / f"{i + 1:04d}.mat"
        with _matlab_file(path) as file:
            file.create_dataset("InoisySRGB", data=np.ascontiguousarray(image.transpose()))
        _header(path)
        tops, lefts = rng.integers(1, size[0] - 16, boxes), rng.integers(1, size[1] - 16, boxes)
        # 1-based inclusive [top, left, bottom, right] of 16 x 16 crops
        all_boxes.append(np.stack([tops, lefts, tops + 15, lefts + 15], axis=1).astype(np.float64))
    with _matlab_file(root / "info.mat") as file:
        refs = file.create_group("#refs#")
        references = []
        for i, box in enumerate(all_boxes):
            references.append(refs.create_dataset(f"b{i}", data=np.ascontiguousarray(box.transpose())).ref)
        info = file.create_group("info")
        info.create_dataset("boundingboxes", data=np.array([references], dtype=h5py.ref_dtype))
    _header(root / "info.mat")
    return images, np.stack(all_boxes).astype(np.int64)


def test_crops_are_the_boxes_of_the_noisy_photos(tmp_path):
    images, boxes = write_dnd(tmp_path / "downloads" / "dnd_2017")
    assert np.array_equal(read_boxes(tmp_path / "downloads" / "dnd_2017" / "info.mat"), boxes)
    crops = DndCrops(tmp_path)  # found under the parent
    assert len(crops) == 6
    item = crops[4]  # photo 2, box 2
    top, left, bottom, right = boxes[1, 1]
    expected = torch.from_numpy(images[1][top - 1 : bottom, left - 1 : right]).permute(2, 0, 1)
    assert item["name"] == "0002_02" and item["degraded"].shape == (3, 16, 16)
    assert torch.equal(item["degraded"], expected)


def test_bundle_holds_every_crop_per_photo(tmp_path):
    from scipy.io import loadmat

    denoised = {f"{i:04d}_{b:02d}": torch.rand(3, 16, 16) for i in (1, 2) for b in (1, 2, 3)}
    written = write_bundle(tmp_path, denoised, boxes=3)
    assert [p.name for p in written] == ["0001.mat", "0002.mat"]
    saved = loadmat(written[1])
    assert saved["Idenoised"].shape == (1, 3) and not saved["israw"].item() and saved["eval_version"][0] == "1.0"
    crop = saved["Idenoised"][0, 2]
    assert crop.dtype == np.float32 and np.array_equal(crop, denoised["0002_03"].permute(1, 2, 0).numpy())
    del denoised["0001_02"]
    with pytest.raises(UserInputError, match=r"photo 0001 lacks crops \[2\]"):
        write_bundle(tmp_path / "again", denoised, boxes=3)


def test_broken_layouts_name_what_is_missing(tmp_path):
    with pytest.raises(UserInputError, match="expected info.mat next to a folder images_srgb"):
        DndCrops(tmp_path)
    write_dnd(tmp_path / "dnd")
    (tmp_path / "dnd" / "images_srgb" / "0002.mat").unlink()
    with pytest.raises(UserInputError, match="lacks 0002.mat"):
        DndCrops(tmp_path)
