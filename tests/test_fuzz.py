"""Property-based fuzzing of the commands that touch users' files (issue 36): random file trees (names, formats,
sizes, broken files, links inside and out, prepared output folders) and random overrides against ``synthesize``,
``restore`` and ``evaluate``, run in-process through the CLI's own entry point. Whatever the case:

* the command ends with exit status 0 or 2 (a named refusal), never a traceback;
* nothing outside the output folder changed: every file, folder and link of the sandbox (inputs, a victim folder,
  links pointing out) hashed before and after, links read, never followed.

``make test`` runs a seeded, bounded number of cases (:data:`EXAMPLES`, about a minute);
``DEGRADE_LAB_FUZZ_EXAMPLES=10000`` runs a longer search (Hypothesis, derandomized so a failure repeats).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import cli_in_process, tree_hashes

EXAMPLES = int(os.environ.get("DEGRADE_LAB_FUZZ_EXAMPLES", "100"))

NAMES = ["a", "b c", "ünï", "-x", ".hidden", "sub/a", "sub/deep/b", "A", "x" * 80, "sub/c", "a.b"]
# repeated entries weight the draw: mostly cases that get as far as writing, some that must be refused
SUFFIXES = [".png"] * 4 + [".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".PNG", ".txt", ""]
KINDS = (["rgb"] * 8 + ["grey", "rgba", "grey16", "rgb16", "exif", "exif", "animated"]
         + ["empty", "garbage", "truncated", "link_inside", "link_outside", "dangling", "dir_link_outside", "loop"])
OUTPUT_STATES = (["absent"] * 3 + ["empty", "user_file", "link_sub_to_input", "link_sub_to_input", "lock_link",
                                     "lock_dir", "is_a_file", "user_tmp", "inside_input"])

side = st.one_of(st.integers(11, 40), st.integers(11, 40), st.integers(1, 40))  # SSIM needs 11 px: mostly
entry = st.tuples(st.sampled_from(NAMES), st.sampled_from(SUFFIXES), st.sampled_from(KINDS), side, side)
OVERRIDES = {  # the first value of each is the default or a valid one, drawn most often (see _value)
    "synthesize": {"degrader": ["awgn", "identity", "jpeg", "camera", "bicubic", "blur", "nonsense"],
                   "seed": ["0", "7", "-1", "abc"], "samples": ["1", "2", "0", "x"],
                   "bit_depth": ["auto", "8", "16", "12"], "max_pixels": ["120000000", "100", "0"],
                   "degrader.sigma": ["10", "[5,50]", "abc"],
                   "io_threads": ["1", "2", "0", "-1"], "hardware": ["cpu", "gpu"]},
    "restore": {"tile": ["auto", "0", "16", "5", "big"], "tile_margin": ["4", "0", "-1"],
                "self_ensemble": ["true", "false"], "bit_depth": ["auto", "8", "16", "3"],
                "skip_bad": ["true", "false"], "precision": ["auto", "32", "bf16", "x"], "noise_level": ["null", "10"],
                "max_pixels": ["120000000", "1000000", "9", "100"], "seed": ["0", "5", "-3"]},
    "evaluate": {"tile": ["0", "16", "auto", "x"], "seed": ["0", "3", "-1"], "max_pixels": ["120000000", "1000000", "9", "100"],
                 "data.scale": ["1", "1", "4", "0"], "metrics.ssim": ["torchmetrics", "matlab", "true"],
                 "self_ensemble": ["false", "true"]},
}


def _value(data, key: str, values: list[str]) -> str:
    """A value of ``key``: one of the first two (valid) three times in four, else any."""
    valid = st.sampled_from(values[:2])
    return data.draw(st.one_of(valid, valid, valid, st.sampled_from(values)), label=key)


def _image(path: Path, kind: str, height: int, width: int, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF"}.get(path.suffix.lower(),
                                                                                              "PNG")
    if kind == "grey":
        Image.fromarray(pixels[..., 0]).save(path, format=fmt)
    elif kind == "rgba" and fmt in ("PNG", "WEBP", "TIFF"):
        Image.fromarray(np.dstack([pixels, pixels[..., :1]])).save(path, format=fmt)
    elif kind in ("grey16", "rgb16") and fmt == "PNG":
        import imagecodecs

        deep = (pixels.astype(np.uint16) * 257)[..., 0 if kind == "grey16" else slice(None)]
        path.write_bytes(bytes(imagecodecs.png_encode(np.ascontiguousarray(deep))))
    elif kind == "exif" and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = int(rng.integers(1, 9))
        image.save(path, format=fmt, exif=exif)
    elif kind == "animated" and fmt in ("PNG", "WEBP", "TIFF"):
        frames = [Image.fromarray(pixels), Image.fromarray(255 - pixels)]
        frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    else:
        Image.fromarray(pixels).save(path, format=fmt)


def _build(root: Path, entries, output_state: str, paired: bool, seed: int) -> tuple[Path, Path]:
    """The sandbox: ``input/`` (the random tree; ``clean/`` + ``degraded/`` copies for evaluate), ``victim/`` (what
    links point out to), and the output folder in its prepared state."""
    rng = np.random.default_rng(seed)
    inputs, victim = root / "input", root / "victim"
    (victim / "dir").mkdir(parents=True)
    (victim / "precious.png").write_bytes(b"not to be touched")
    (victim / "dir" / "x.png").write_bytes(b"not to be touched either")
    sides = [inputs / "clean", inputs / "degraded"] if paired else [inputs]
    for side in sides:
        side.mkdir(parents=True, exist_ok=True)
    for name, suffix, kind, height, width in entries:
        for side in sides:
            path = side / f"{name}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() or path.is_symlink():
                continue
            if kind in ("rgb", "grey", "rgba", "grey16", "rgb16", "exif", "animated"):
                _image(path, kind, height, width, rng)
            elif kind == "empty":
                path.write_bytes(b"")
            elif kind == "garbage":
                path.write_bytes(rng.bytes(height * width))
            elif kind == "truncated":
                _image(path, "rgb", max(height, 8), max(width, 8), rng)
                path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])
            elif kind == "link_inside":
                path.symlink_to(sides[0] / "a.png")
            elif kind == "link_outside":
                path.symlink_to(victim / "precious.png")
            elif kind == "dangling":
                path.symlink_to(root / "nowhere.png")
            elif kind == "dir_link_outside":
                path.symlink_to(victim / "dir", target_is_directory=True)
            elif kind == "loop":
                path.symlink_to(path.parent, target_is_directory=True)
    output = root / "output"
    if output_state == "inside_input":
        output = inputs / "out"
    elif output_state != "absent":
        output.mkdir()
    if output_state == "user_file":
        (output / "a.png").write_bytes(b"the user's own file")
    elif output_state == "link_sub_to_input":
        (output / ("clean" if paired else "sub")).symlink_to(sides[0], target_is_directory=True)
        (output / "degraded").symlink_to(inputs, target_is_directory=True)
    elif output_state == "lock_link":
        (output / ".degrade_lab.lock").symlink_to(victim / "precious.png")
    elif output_state == "lock_dir":
        (output / ".degrade_lab.lock").mkdir()
    elif output_state == "is_a_file":
        output.rmdir()
        output.write_bytes(b"a file where a folder is expected")
    elif output_state == "user_tmp":
        (output / ".a.png.abcdefgh.tmp").write_bytes(b"the user's own temporary-looking file")
    return inputs, output


def _snapshot(root: Path, output: Path) -> dict[str, str]:
    """Every entry under ``root`` but inside the output folder (:func:`conftest.tree_hashes`)."""
    return tree_hashes(root, output.resolve() if output.is_dir() and not output.is_symlink() else None)


@pytest.fixture(scope="module")
def fuzz_checkpoint(tmp_path_factory) -> Path:
    """A tiny DnCNN checkpoint (3 layers) trained for 2 steps on random pairs."""
    root = tmp_path_factory.mktemp("fuzz_model")
    rng = np.random.default_rng(0)
    for side in ("clean", "degraded"):
        (root / "pairs" / side).mkdir(parents=True)
    for index in range(2):
        clean = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(clean).save(root / "pairs" / "clean" / f"p{index}.png")
        Image.fromarray(np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)).save(
            root / "pairs" / "degraded" / f"p{index}.png")
    code, stderr = cli_in_process(["train", "model=dncnn", "model.net.channels=4", "model.net.depth=3", "data=folders",
                         f"data.paired={root / 'pairs'}", "data.crop_size=16", "data.batch_size=2",
                         "data.num_workers=0", "trainer.max_steps=2", "trainer.val_check_interval=2", "logger=none",
                         "callbacks=none", "model.val_lpips=null", "hardware=cpu", "calibrate=false",
                         f"hydra.run.dir={root / 'run'}"])
    assert code == 0, stderr[-2000:]
    (checkpoint,) = (root / "run" / "checkpoints").glob("*.ckpt")
    return checkpoint


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(task=st.sampled_from(["synthesize", "restore", "evaluate"]), entries=st.lists(entry, min_size=1, max_size=6),
       output_state=st.sampled_from(OUTPUT_STATES), data=st.data())
def test_no_command_writes_outside_its_output_or_ends_in_a_traceback(fuzz_checkpoint, task, entries, output_state,
                                                                      data):
    options = OVERRIDES[task]
    keys = data.draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=3), label="keys")
    overrides = [f"{key}={_value(data, key, options[key])}" for key in keys]
    if task != "evaluate" and data.draw(st.booleans(), label="overwrite"):  # past the refusal of a foreign folder
        overrides.append("overwrite=true")
    root = Path(tempfile.mkdtemp(prefix="fuzz_"))
    try:
        inputs, output = _build(root, entries, output_state, paired=task == "evaluate", seed=len(entries))
        if task == "synthesize":
            args = ["synthesize", f"input={inputs}", f"output={output}", "progress=false", *overrides]
        elif task == "restore":
            args = ["restore", f"ckpt={fuzz_checkpoint}", f"input={inputs}", f"output={output}", "progress=false",
                    *overrides]
        else:
            ckpt = data.draw(st.sampled_from([str(fuzz_checkpoint), "identity"]), label="ckpt")
            args = ["evaluate", f"ckpt={ckpt}", "data=folders", f"data.test={inputs}", "metrics.lpips=null",
                    "progress=false", *overrides]
        before = _snapshot(root, output)
        code, stderr = cli_in_process(args)
        if os.environ.get("DEGRADE_LAB_FUZZ_LOG"):  # a long run's tally: task, exit status, the refusal
            with open(os.environ["DEGRADE_LAB_FUZZ_LOG"], "a") as tally:
                said = [line for line in stderr.splitlines() if "error:" in line]
                tally.write(f"{task}\t{output_state}\t{code}\t{said[-1][:160] if said else ''}\n")
        assert code in (0, 2), (args, stderr[-3000:])
        assert "Traceback" not in stderr, (args, stderr[-3000:])
        assert _snapshot(root, output) == before, args
    finally:
        shutil.rmtree(root, ignore_errors=True)
