"""What a hostile or careless user can do (issue 36): model files that run no code anywhere, outputs that never
reach outside their folder, inputs read as users have them, every bad value named in one line."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli_in_process, smooth_image, tree_hashes
from degrade_lab.errors import UserInputError
from degrade_lab.utils.checkpoint import load_model, save_model_file
from degrade_lab.utils.trusted_targets import check_config, loading
from test_cli import cli
from test_safety import _failure

SRC = Path(__file__).parents[1] / "src" / "degrade_lab"
DNCNN = {"_target_": "degrade_lab.lit.restoration.RestorationModule",
         "net": {"_target_": "degrade_lab.archs.dncnn.DnCNN", "channels": 4, "depth": 3}}
BASIC_CONFIG = {"_target_": "logging.basicConfig", "force": True, "filemode": "w"}


def _record(config: dict) -> dict:
    return {"config": config, "seed": 0, "versions": {}, "global_step": 0}


def _weights() -> dict:
    from degrade_lab.lit.base import instantiate_model

    return instantiate_model(DNCNN).state_dict()


# ---- 1. one loader for every stored config ---------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".ckpt", ".safetensors"])
def test_calibrate_never_builds_a_stored_data_section(tiny_folders, tmp_path, suffix):
    """The stored ``config.data`` used to be instantiated unchecked: ``logging.basicConfig`` truncated a file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    crafted = tmp_path / f"crafted{suffix}"
    save_model_file(crafted, _weights(), _record({"model": DNCNN, "data": {**BASIC_CONFIG, "filename": str(victim)}}))
    result = cli("calibrate", f"ckpt={crafted}")
    assert result.returncode == 2 and "may be unsafe" in result.stderr and "logging.basicConfig" in result.stderr
    assert "Traceback" not in result.stderr and victim.read_text() == "precious"
    for section in ("trainer", "callbacks", "logger", "anything_later"):  # every section, not only those used today
        with pytest.raises(UserInputError, match="may be unsafe"):
            check_config({"model": DNCNN, section: {"x": BASIC_CONFIG}}, "f.ckpt", "config")


def test_every_section_a_shipped_run_stores_is_trusted(tiny_folders):
    """What degrade_lab itself stores (trainer, callbacks, loggers, a data set's factory) still loads."""
    from test_cli import TINY, last_line

    run = last_line(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=1",
                        "logger=many"))
    module, record = load_model(run / "checkpoints" / "last.ckpt")
    assert {"trainer", "callbacks", "data", "logger"} <= set(record["config"])


def test_a_model_file_that_names_itself_is_refused_not_followed(tiny_folders, tmp_path):
    """A trusted degrader whose ``ckpt:`` is the file itself used to load itself without end (23 GB, then killed)."""
    looping = tmp_path / "loop.ckpt"
    save_model_file(looping, {}, _record({"model": {"_target_": "degrade_lab.degradations.ludvae.LUDVAEDegrader",
                                                    "ckpt": str(looping)}}))
    for command in (["info", str(looping)], ["restore", f"ckpt={looping}", f"input={tiny_folders / 'source'}",
                                                     f"output={tmp_path}/o"]):
        result = cli(*command, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "not a training module" in result.stderr
    # the loader's own guard, for any reference from one model file to another
    a, b, c = (tmp_path / f"{n}.ckpt" for n in "abc")
    with loading(a), pytest.raises(UserInputError, match="refers back to itself"), loading(a):
        pass
    with loading(a), loading(b), pytest.raises(UserInputError, match="one other model file at most"), loading(c):
        pass


def test_a_stored_key_that_interpolates_is_failure():
    with pytest.raises(UserInputError, match="interpolation"):
        check_config({"model": {**DNCNN, "${oc.env:HOME}": 1}}, "f.ckpt")


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield node, name, ast.unparse(func)


def test_nothing_is_instantiated_except_through_the_one_loader():
    """Hydra's ``instantiate`` / ``get_class`` / ``get_object`` / ``call`` / ``_locate`` are called in one module only,
    and every call of the loader states where its config comes from (``origin=``)."""
    loader = SRC / "utils" / "trusted_targets.py"
    hydra_names = {"instantiate", "get_class", "get_object", "get_method", "call", "_locate"}
    foreign, unstated = [], []
    for file in sorted(SRC.rglob("*.py")):
        tree = ast.parse(file.read_text())
        imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("hydra") for alias in node.names}
        for node, name, text in _calls(tree):
            from_hydra = text.startswith("hydra.") or name in imported
            if name in hydra_names and from_hydra and file != loader:
                foreign.append(f"{file.relative_to(SRC)}:{node.lineno} {text}")
            if name in ("instantiate", "get_class") and not from_hydra and file != loader:
                if not any(k.arg == "origin" for k in node.keywords) and not text.endswith("instantiate_model"):
                    unstated.append(f"{file.relative_to(SRC)}:{node.lineno} {text}")
    assert not foreign, foreign
    assert not unstated, unstated
    # and the test can fail: a module that calls Hydra directly is found
    tree = ast.parse("import hydra\nhydra.utils.instantiate(cfg)\n")
    assert [text for _, name, text in _calls(tree) if name == "instantiate"] == ["hydra.utils.instantiate"]


def test_info_refuses_a_record_with_a_foreign_section(tmp_path):
    crafted = tmp_path / "c.safetensors"
    save_model_file(crafted, _weights(), _record({"model": DNCNN, "callbacks": {"a": BASIC_CONFIG}}))
    result = cli("info", str(crafted))
    assert result.returncode == 2 and "may be unsafe" in result.stderr


# ---- 2. output containment -------------------------------------------------------------------------------------
def test_a_link_inside_the_output_folder_is_never_written_through(tiny_folders, dncnn_ckpt, tmp_path):
    inputs = tmp_path / "input"
    (inputs / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        (inputs / name).write_bytes((tiny_folders / "test" / "degraded" / "v0.png").read_bytes())
    before = tree_hashes(inputs)
    out = tmp_path / "restored"
    out.mkdir()
    (out / "sub").symlink_to(inputs / "sub", target_is_directory=True)
    _failure(cli("restore", f"ckpt={dncnn_ckpt}", f"input={inputs}", f"output={out}", "overwrite=true"),
             "symbolic link", str(out / "sub"))
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "degraded").symlink_to(inputs, target_is_directory=True)
    _failure(cli("synthesize", "degrader=awgn", f"input={inputs}", f"output={pairs}", "overwrite=true"),
             "symbolic link")
    assert tree_hashes(inputs) == before


def test_a_planted_lock_file_is_refused_not_followed(tiny_folders, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "pairs"
    out.mkdir()
    (out / ".degrade_lab.lock").symlink_to(victim)
    args = ["synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}"]
    _failure(cli(*args), "lock file", "symbolic link")
    assert victim.read_text() == "precious"
    (out / ".degrade_lab.lock").unlink()
    (out / ".degrade_lab.lock").mkdir()
    _failure(cli(*args), "lock file", "a folder")


def test_a_folder_of_the_users_files_is_refused_unless_overwrite(tiny_folders, dncnn_ckpt, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "v0.png").write_bytes(b"my own picture")
    args = ["restore", f"ckpt={dncnn_ckpt}", f"input={tiny_folders / 'test' / 'degraded'}", f"output={out}"]
    _failure(cli(*args), str(out / "v0.png"), "overwrite=true")
    assert (out / "v0.png").read_bytes() == b"my own picture" and not (out / "manifest.json").exists()
    pairs = tmp_path / "pairs"
    (pairs / "clean").mkdir(parents=True)
    (pairs / "clean" / "notes.txt").write_text("mine")
    _failure(cli("synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={pairs}"), "notes.txt")
    result = cli(*args, "overwrite=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "v0.png").read_bytes()[:4] == b"\x89PNG"
    assert cli(*args).returncode == 0  # now it holds a manifest of ours: a rerun completes it


def test_only_the_temporaries_a_killed_run_recorded_are_removed(tiny_folders, tmp_path):
    from degrade_lab.utils.io import OWN_FILES

    out = tmp_path / "pairs"
    args = ["synthesize", "degrader=awgn", f"input={tiny_folders / 'source'}", f"output={out}"]
    assert cli(*args).returncode == 0
    tag = "0123456789abcdef"
    theirs = out / "degraded" / f".s1.png.{tag}-k2j4x9_q.tmp"  # what a killed run with that tag left
    mine = [out / "degraded" / ".s1.png.k2j4x9_q.tmp", out / ".notes.abcdefgh.tmp",  # a user's look-alikes
            out / "degraded" / ".x.png.fedcba9876543210-k2j4x9_q.tmp"]  # another run's, not recorded
    for path in (theirs, *mine):
        path.write_bytes(b"half a png")
    (out / ".degrade_lab.lock").write_text(json.dumps({"pid": 1, "host": "h", "temporaries": tag}))  # stale
    (out / "degraded" / "s1.png").unlink()
    result = cli(*args)
    assert result.returncode == 0 and "taking it over" in result.stdout + result.stderr
    assert not theirs.exists() and all(path.read_bytes() == b"half a png" for path in mine)
    assert (out / "degraded" / "s1.png").is_file() and OWN_FILES.match(theirs.name)


def _run_folder(tiny_folders):
    from test_cli import TINY, last_line

    return last_line(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=1"))


def test_resume_takes_only_a_training_run_folder(tiny_folders, tmp_path):
    from test_cli import TINY

    run = _run_folder(tiny_folders)
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir(parents=True)
    (downloads / "model.ckpt").write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    (tmp_path / "home" / "summary.json").write_text("mine")
    (tmp_path / "home" / ".x.abcdefgh.tmp").write_text("mine")
    base = ["train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=2"]
    before = tree_hashes(tmp_path / "home")
    _failure(cli(*base, f"resume={downloads / 'model.ckpt'}"), "resume= takes a training run folder")
    exported = downloads / "checkpoints" / "model.safetensors"
    exported.parent.mkdir()
    assert cli("export", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"output={exported}").returncode == 0
    before = tree_hashes(tmp_path / "home")
    _failure(cli(*base, f"resume={exported}"), "resume= takes a training run folder")
    _failure(cli(*base, f"resume={downloads}"), "does not exist")
    assert tree_hashes(tmp_path / "home") == before
    # a resume with another model is refused before Hydra rewrites the run's .hydra/ or its log
    hydra_before = tree_hashes(run)
    _failure(cli(*base, "model.net.channels=16", f"resume={run}"), "different model", "model.net.channels")
    assert tree_hashes(run) == hydra_before
    # a link planted in a run folder is never written through by the resumed run
    (run / "csv").rename(tmp_path / "csv_elsewhere")
    (run / "csv").symlink_to(tmp_path / "home", target_is_directory=True)
    _failure(cli(*base, f"resume={run}"), "symbolic link", str(run / "csv"))
    assert tree_hashes(tmp_path / "home") == before


def test_a_pipeline_name_is_a_plain_name(tmp_path):
    from degrade_lab.resolvers import plain_name

    _failure(cli("pipeline", "dncnn_demo", f"pipeline.name=../../../..{tmp_path}/elsewhere"), "not a plain name")
    assert not (tmp_path / "elsewhere").exists()
    assert plain_name("dncnn_demo.v2-b") == "dncnn_demo.v2-b"
    for bad in ("..", "a/b", "", ".hidden", "a..b"):
        with pytest.raises(UserInputError):
            plain_name(bad)


# ---- 3. inputs as users have them --------------------------------------------------------------------------------
def _phone_photo(path: Path, orientation: int = 6) -> np.ndarray:
    """A JPEG stored on its side with EXIF orientation ``orientation`` (a phone held upright); returns what Pillow's
    ``ImageOps.exif_transpose`` (the reference) shows."""
    from PIL import Image, ImageOps

    stored = smooth_image(np.random.default_rng(3), 24, 40)  # 24 high, 40 wide as stored
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95, exif=exif)
    with Image.open(path) as opened:
        return np.asarray(ImageOps.exif_transpose(opened))


def test_exif_orientation_is_applied_and_said(tiny_folders, dncnn_ckpt, tmp_path):
    from PIL import Image

    from degrade_lab.utils.io import image_size, orient, read_pixels

    upright = _phone_photo(tmp_path / "phone" / "IMG_0001.jpg")
    assert upright.shape[:2] == (40, 24)
    assert image_size(tmp_path / "phone" / "IMG_0001.jpg") == (40, 24)
    assert np.array_equal(read_pixels(tmp_path / "phone" / "IMG_0001.jpg"), upright)
    result = cli("synthesize", "degrader=identity", f"input={tmp_path / 'phone'}", f"output={tmp_path / 'pairs'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "pairs" / "clean" / "IMG_0001.png")), upright)
    manifest = json.loads((tmp_path / "pairs" / "manifest.json").read_text())
    assert manifest["files"]["IMG_0001"]["exif_orientation"] == 6 and "EXIF" in manifest["orientation"]
    result = cli("restore", f"ckpt={dncnn_ckpt}", f"input={tmp_path / 'phone'}", f"output={tmp_path / 'restored'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "restored" / "IMG_0001.png").size == (24, 40)  # (width, height): upright
    manifest = json.loads((tmp_path / "restored" / "manifest.json").read_text())
    assert manifest["files"]["IMG_0001.png"]["exif_orientation"] == 6
    # every orientation against Pillow's exif_transpose
    for value in range(1, 9):
        reference = _phone_photo(tmp_path / f"o{value}.jpg", value)
        with Image.open(tmp_path / f"o{value}.jpg") as stored:
            assert np.array_equal(orient(np.asarray(stored), value), reference), value


def test_two_files_of_one_stem_are_refused_everywhere(tiny_folders, tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    source = tiny_folders / "source" / "s0.png"
    (folder / "a.png").write_bytes(source.read_bytes())
    from PIL import Image

    Image.open(source).save(folder / "a.jpg")
    _failure(cli("synthesize", "degrader=awgn", f"input={folder}", f"output={tmp_path / 'pairs'}"),
             "a.png", "a.jpg")
    assert not (tmp_path / "pairs").exists()
    _failure(cli("prepare", "luma", f"data.root={folder}", f"output={tmp_path / 'luma'}"), "a.png", "a.jpg")


def test_an_animation_says_which_frame_it_uses(tmp_path, caplog):
    from PIL import Image

    from degrade_lab.utils.io import read_image

    frames = [Image.fromarray(np.full((8, 8, 3), value, np.uint8)) for value in (10, 200)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    with caplog.at_level("WARNING"):
        image = read_image(tmp_path / "anim.webp")
    assert "holds 2 frames" in caplog.text and "first frame" in caplog.text
    assert abs(float(image.mean()) * 255 - 10) < 1.5


# ---- 4. every value checked before work starts -----------------------------------------------------------------
BAD_VALUES = [
    ("train", ["data.batch_size=-1"], "data.batch_size=-1: expected an integer >= 1"),
    ("train", ["data.crop_size=0"], "data.crop_size=0"),
    ("train", ["seed=-5"], "seed=-5"),
    ("train", ["model.optimizer.lr=fast"], "model.optimizer.lr='fast'"),
    ("train", ["trainer.max_steps=-7"], "trainer.max_steps=-7: expected an integer >= -1"),
    ("train", ["+model.net.foo=1"], "unknown setting 'model.net.foo'"),
    ("train", ["model.net.chanels=3"], "did you mean 'model.net.channels'"),
    ("train", ["data.batch_sise=3"], "did you mean 'data.batch_size'"),
    ("train", ["model=dncnx"], "did you mean model=dncnn"),
    ("train", ["hardware=gpu"], "no CUDA GPU"),
    ("synthesize", ["degrader.sigma=abc"], "degrader.sigma='abc': expected a number or a list of numbers"),
    ("synthesize", ["hardware=gpu"], "no CUDA GPU"),
    ("restore", ["tile=big"], "tile='big': expected auto or an integer >= 0"),
    ("restore", ["tile=32", "tile_margin=-5"], "tile_margin=-5"),
    ("restore", ["hardware=gpu"], "no CUDA GPU"),
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="hardware=gpu is refused only where no GPU is visible")
def test_every_bad_value_is_named_in_one_line_before_any_work(tiny_folders, dncnn_ckpt, tmp_path):
    from test_cli import TINY

    given = {"train": [*TINY, f"data.paired={tiny_folders / 'paired'}"],
             "synthesize": ["degrader=awgn", f"input={tiny_folders / 'source'}"],
             "restore": [f"ckpt={dncnn_ckpt}", f"input={tiny_folders / 'test' / 'degraded'}"]}
    for number, (task, values, needle) in enumerate(BAD_VALUES):
        out = tmp_path / f"out{number}"
        extra = [] if task == "train" else [f"output={out}"]
        code, stderr = cli_in_process([task, *given[task], *extra, *values])
        assert code == 2 and needle in stderr and "Traceback" not in stderr, (values, stderr[-2000:])
        assert len(stderr.strip().splitlines()) == 1, stderr  # one line
        assert not out.exists(), (values, sorted(out.rglob("*")))  # nothing written (no manifest.json)
    result = cli("train", *given["train"], "data.batch_size=-1")  # and so in a process of its own
    _failure(result, "data.batch_size=-1: expected an integer >= 1")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ---- after training: calibration fits any size, and a failure there never costs the run its summary ---------------
def test_a_finished_training_ends_with_its_summary_whatever_the_image_sizes(compose, tiny_folders, tmp_path,
                                                                             monkeypatch):
    """A clean image of 51x46 (not a multiple of DeFlow's scale 4) used to stop the end-of-training calibration with
    'image size ... is not divisible by the scale 4', exit 1 and no summary.json."""
    from PIL import Image

    from degrade_lab.tasks import calibrate as calibrate_task
    from degrade_lab.tasks.train import train
    from test_deflow import TINY as TINY_DEFLOW

    source = tmp_path / "source"
    source.mkdir()
    for index, file in enumerate(sorted((tiny_folders / "source").glob("*.png"))):
        image = Image.open(file)
        (image.resize((51, 46)) if index == 0 else image).save(source / file.name)
    overrides = [*TINY_DEFLOW, f"data.source={source}", f"data.target={tiny_folders / 'target'}",
                 f"data.test={tiny_folders / 'test'}", "trainer.max_steps=2"]
    cfg = compose("train", overrides, run_dir=tmp_path / "run")
    metrics = train(cfg)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "failed_after_training" not in summary and metrics["calibrated_temperature_last"] > 0

    def broken(*args, **kwargs):
        raise RuntimeError("something unforeseen after the last checkpoint")

    monkeypatch.setattr(calibrate_task, "calibrate_checkpoint", broken)
    train(compose("train", overrides, run_dir=tmp_path / "run2"))
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["global_step"] == 2 and "unforeseen" in summary["failed_after_training"]["calibration of last.ckpt"]
    assert (tmp_path / "run2" / "checkpoints" / "last.ckpt").is_file()


def test_a_tile_margin_narrower_than_the_receptive_field_is_warned_with_its_error(tiny_folders, dncnn_ckpt, tmp_path):
    """TINY_DNCNN has 3 layers of 3x3 convolutions: its receptive-field radius is 3 px (closed form). A margin of 1
    warns with the measured difference; a margin of 3 gives exactly the whole-image result, without a word."""
    import degrade_lab
    from degrade_lab.utils.tiling import receptive_radius

    restorer = degrade_lab.load_restorer(dncnn_ckpt, device="cpu")
    assert receptive_radius(restorer.network()) == (3, False)
    photos = tiny_folders / "test" / "degraded"
    runs = {}
    for name, options in {"whole": ["tile=0"], "narrow": ["tile=16", "tile_margin=1"],
                          "enough": ["tile=16", "tile_margin=3"]}.items():
        result = cli("restore", f"ckpt={dncnn_ckpt}", f"input={photos}", f"output={tmp_path / name}", *options)
        assert result.returncode == 0, result.stderr[-2000:]
        runs[name] = result
    assert "tile_margin=1 is narrower than the network's receptive field (radius 3 px" in runs["narrow"].stderr
    assert "grey levels" in runs["narrow"].stderr and "narrower" not in runs["enough"].stderr
    for file in ("v0.png", "v1.png"):
        assert (tmp_path / "enough" / file).read_bytes() == (tmp_path / "whole" / file).read_bytes()
