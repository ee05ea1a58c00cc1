"""A full disk while writing an output or a checkpoint: the previous file stays intact, no temporary file is left,
and the error says what happened and what to do (a patched writer fails as a full filesystem does)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.train import train
from degrade_lab.utils.checkpoint import load_file, save_file
from degrade_lab.utils.io import atomic_write_bytes


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_an_output_on_a_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    atomic_write_bytes(target, b"old contents")

    monkeypatch.setattr("degrade_lab.utils.io.os.fsync", _full)  # the data reached no disk
    with pytest.raises(UserInputError, match=r"could not write '.*out.png': No space left on device .* GB free.*"
                                             r"previous version of it is intact"):
        atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"old contents" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    with pytest.raises(UserInputError, match="nothing was left of it"):
        atomic_write_bytes(tmp_path / "new.png", b"x")
    assert not (tmp_path / "new.png").exists()


def test_other_write_errors_pass_through(tmp_path, monkeypatch):
    monkeypatch.setattr("degrade_lab.utils.io.os.fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O")))
    with pytest.raises(OSError, match="I/O"):
        atomic_write_bytes(tmp_path / "a", b"x")


def test_a_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError whose context is the OSError."""
    path = tmp_path / "last.ckpt"
    save_file({"step": 1}, path)
    real_save = torch.save

    def failing_save(obj, handle):
        real_save(obj, handle)  # part of the file was written ...
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from None

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(UserInputError, match="last.ckpt.*No space left on device.*intact"):
        save_file({"step": 2}, path)
    assert load_file(path) == {"step": 1} and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_training_stops_on_a_full_disk_and_keeps_its_last_checkpoint(compose, tiny_folders, monkeypatch):
    real_save, saves = torch.save, []

    def save_until_full(obj, handle, *args, **kwargs):
        saves.append(obj.get("global_step") if isinstance(obj, dict) else None)
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    cfg = compose("train", ["experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders",
                            f"data.paired={tiny_folders / 'paired'}", "data.crop_size=16", "data.batch_size=2",
                            "logger=csv", "callbacks.progress.refresh_rate=0", "trainer.max_steps=6",
                            "trainer.val_check_interval=6", "callbacks.last_checkpoint.every_n_train_steps=2"])
    with pytest.raises(UserInputError, match="last.ckpt.*No space left on device.*resume=RUN_FOLDER"):
        train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert load_file(last)["global_step"] == 2  # the step-2 checkpoint, intact
    assert not [p for p in last.parent.iterdir() if p.suffix == ".tmp"]
