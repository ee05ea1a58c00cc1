"""``degrade-lab prepare``: the papers' preprocessing of SIDD, DIV2K and DND on miniature copies of their real
layouts: the crops are the source pixels at the windows their names give, files are written atomically with a
manifest, a rerun writes nothing, a killed run completes, other settings into the same folder are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from degrade_lab.data.div2k import div2k
from degrade_lab.degradations.resize import imresize
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.prepare import prepare
from degrade_lab.utils.io import read_image
from test_cli import cli, last_line
from test_dnd import write_dnd
from test_named_sets import write_div2k
from test_sidd import SCENES, write_sidd


def _prepare(compose, recipe, root, output, *overrides):
    return prepare(compose("prepare", [f"recipe={recipe}", f"data.root={root}", f"output={output}", "progress=false",
                                       *overrides]))


def _window(name: str) -> tuple[int, int]:
    top, left = name.rsplit("_", 2)[-2:]
    return int(top), int(left)


def test_sidd_grid_crops_are_the_source_tiles_and_resume(compose, tmp_path):
    write_sidd(tmp_path / "SIDD", medium=False, validation=False, benchmark=False)  # 48 x 64 photos
    out = tmp_path / "crops"
    summary = _prepare(compose, "sidd", tmp_path / "SIDD", out, "options.crop_size=32", "options.stride=16")
    per_pair = 2 * 3  # tops 0, 16; lefts 0, 16, 32
    assert summary["files"] == 2 * per_pair * len(SCENES) and summary["written_now"] == summary["files"]
    clean = sorted((out / "clean").iterdir())
    assert len(clean) == per_pair * len(SCENES) and {p.name for p in clean} == {p.name for p in (out / "degraded").iterdir()}
    first = clean[0]
    top, left = _window(first.stem)
    scene = next(s for s in SCENES if first.name.startswith(s))
    source = read_image(tmp_path / "SIDD" / "SIDD_Small_sRGB_Only" / "Data" / scene / "GT_SRGB_010.PNG")
    assert torch.equal(read_image(first), source[:, top : top + 32, left : left + 32])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"] == {"recipe": "sidd", "options": {"crop_size": 32, "stride": 16}, "seed": 0}
    assert len(manifest["files"]) == summary["files"] and manifest["files"][f"clean/{first.name}"]["size"] == [32, 32]
    # a rerun writes nothing; a run killed part-way (files and their entries lost) is completed
    assert _prepare(compose, "sidd", tmp_path / "SIDD", out, "options.crop_size=32", "options.stride=16")["written_now"] == 0
    for path in clean[:4]:
        path.unlink()
    again = _prepare(compose, "sidd", tmp_path / "SIDD", out, "options.crop_size=32", "options.stride=16")
    assert again["written_now"] == 2 * per_pair and all(p.is_file() for p in clean[:4])
    with pytest.raises(UserInputError, match="other settings"):
        _prepare(compose, "sidd", tmp_path / "SIDD", out, "options.crop_size=16")
    with pytest.raises(UserInputError, match="outputs must never overlap inputs"):
        _prepare(compose, "sidd", tmp_path / "SIDD", tmp_path / "SIDD" / "crops")


def test_senmvae_random_crops_are_seeded_and_aligned(compose, tmp_path):
    write_sidd(tmp_path / "SIDD", small=False, validation=False, benchmark=False)
    options = ["options.crop_size=16", "options.crops_per_image=5"]
    first = _prepare(compose, "sidd_senmvae", tmp_path / "SIDD", tmp_path / "a", *options)
    _prepare(compose, "sidd_senmvae", tmp_path / "SIDD", tmp_path / "b", *options)
    names = sorted(p.name for p in (tmp_path / "a" / "clean").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b" / "clean").iterdir())
    assert 2 * len(SCENES) * 4 <= len(names) <= 2 * len(SCENES) * 5 and first["sources"] == 2 * len(SCENES)
    assert len({_window(Path(n).stem) for n in names}) > 5  # random windows, not a grid
    other = _prepare(compose, "sidd_senmvae", tmp_path / "SIDD", tmp_path / "c", *options, "seed=1")
    assert sorted(p.name for p in (tmp_path / "c" / "clean").iterdir()) != names and other["files"] > 0
    name = names[0]
    scene = name[: len(SCENES[0])]
    shot = name[len(scene) + 1 : len(scene) + 4]
    top, left = _window(Path(name).stem)
    folder = tmp_path / "SIDD" / "SIDD_Medium_Srgb" / "Data" / scene
    noisy = read_image(folder / f"{scene[:4]}_NOISY_SRGB_{shot}.PNG")
    assert torch.equal(read_image(tmp_path / "a" / "degraded" / name), noisy[:, top : top + 16, left : left + 16])


def test_div2k_bicubic_copies_feed_data_div2k(compose, tmp_path):
    root = write_div2k(tmp_path / "DIV2K")
    for folder in root.glob("DIV2K_*_LR_bicubic"):  # as if only the HR images were downloaded
        for file in folder.rglob("*.png"):
            file.unlink()
    out = tmp_path / "lr"
    summary = _prepare(compose, "div2k", root, out)
    assert summary["files"] == 8
    hr = read_image(root / "DIV2K_valid_HR" / "0801.png")
    lr = read_image(out / "DIV2K_valid_LR_bicubic" / "X4" / "0801x4.png")
    expected = (imresize(hr[None], 1 / 4).clamp(0, 1)[0] * 255).round() / 255
    assert torch.equal(lr, expected)
    assert len(div2k(kind="test", root=[str(root), str(out)])) == 3  # both folders as the data set's root


def test_dnd_crops_keep_16_bits(compose, tmp_path):
    photos, boxes = write_dnd(tmp_path / "DND")
    out = tmp_path / "dnd_png"
    assert _prepare(compose, "dnd", tmp_path / "DND", out)["files"] == boxes.shape[0] * boxes.shape[1]
    top, left, bottom, right = boxes[1, 2]
    crop = read_image(out / "dnd" / "0002_03.png")
    expected = torch.from_numpy(photos[1][top - 1 : bottom, left - 1 : right]).permute(2, 0, 1)
    assert (crop - expected).abs().max() <= 0.5 / 65535 + 1e-7


def test_the_command_line_takes_the_recipe_as_its_first_word(tmp_path):
    write_sidd(tmp_path / "SIDD", medium=False, validation=False, benchmark=False)
    result = cli("prepare", "sidd", f"data.root={tmp_path / 'SIDD'}", f"output={tmp_path / 'out'}",
                 "options.crop_size=32", "progress=false")
    run = last_line(result)
    assert "prepare sidd: wrote" in result.stdout and (run / "summary.json").is_file()
    assert len(list((tmp_path / "out" / "clean").iterdir())) == 2 * len(SCENES)  # 48 x 64: one row of two tiles
    bad = cli("prepare", "sidd_crops", f"data.root={tmp_path / 'SIDD'}", f"output={tmp_path / 'x'}")
    assert bad.returncode == 2 and "sidd_senmvae" in bad.stderr


def test_luma_is_matlab_rgb2ycbcr_and_a_grey_jpeg_is_the_rgb_one_of_equal_channels(compose, tmp_path):
    """``luma``: a colour image becomes round(16 + (65.481 R + 128.553 G + 24.966 B) / 255) (MATLAB's rgb2ycbcr on
    uint8, written out by hand here), a grey image stays as it is. And the premise of the Y-channel protocol without a
    grey data path: libjpeg's RGB encoding of an image whose channels are equal decodes to exactly its grey encoding."""
    import io

    import numpy as np
    from PIL import Image

    from conftest import save_rgb, smooth_image
    from degrade_lab.degradations.jpeg import JPEG

    rng = np.random.default_rng(3)
    colour, grey = smooth_image(rng, 40, 48), smooth_image(rng, 40, 48)[..., 0]
    save_rgb(tmp_path / "set" / "colour.png", colour)
    (tmp_path / "set" / "sub").mkdir()
    Image.fromarray(grey).save(tmp_path / "set" / "sub" / "grey.bmp")
    out = tmp_path / "luma"
    assert _prepare(compose, "luma", tmp_path / "set", out)["files"] == 2
    rgb = colour.astype(np.float64)
    expected = np.round(16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255)
    y = read_image(out / "colour.png")
    assert torch.equal(y[0], y[2]) and np.array_equal(np.round(y[0].numpy() * 255), expected)
    assert np.array_equal(np.round(read_image(out / "sub" / "grey.png")[1].numpy() * 255), grey)
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="JPEG", quality=20)
    grey_jpeg = np.array(Image.open(buffer))
    ours = JPEG(quality=20)(torch.from_numpy(grey).float().div(255).expand(1, 3, -1, -1))
    assert torch.equal(ours[0, 0].mul(255).round(), torch.from_numpy(grey_jpeg).float())
    assert torch.equal(ours[0, 0], ours[0, 1]) and torch.equal(ours[0, 1], ours[0, 2])
