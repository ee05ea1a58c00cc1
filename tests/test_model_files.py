"""degrade-lab export / info: a .safetensors model file rebuilds the same model wherever a .ckpt is accepted, and
the model card says what a file is."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import degrade_lab
from degrade_lab.errors import UserInputError
from degrade_lab.tasks import export, info
from degrade_lab.tasks.evaluate import evaluate


def test_an_exported_model_is_the_same_model_everywhere(compose, dncnn_ckpt, tiny_folders, tmp_path, capsys):
    ckpt = dncnn_ckpt
    assert export.main([f"ckpt={ckpt}", f"output={tmp_path / 'model.safetensors'}"]) == 0
    model = tmp_path / "model.safetensors"
    assert model.stat().st_size < ckpt.stat().st_size  # no optimizer state, no loop counters
    x = torch.rand(3, 24, 24)
    original = degrade_lab.load_restorer(ckpt, device="cpu").restore(x)
    assert torch.equal(degrade_lab.load_restorer(model, device="cpu").restore(x), original)
    scores = [evaluate(compose("evaluate", [f"ckpt={path}", "data=folders", f"data.test={tiny_folders / 'test'}",
                                            "metrics.lpips=null", "progress=false"]))["test/psnr"]
              for path in (ckpt, model)]
    assert scores[0] == scores[1]
    # the model card of both files
    capsys.readouterr()
    assert info.main([str(model), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["kind"] == "restorer" and card["scale"] == 1 and card["steps"] == 2 and card["seed"] == 0
    assert card["parameters"] == sum(p.numel() for p in degrade_lab.load_restorer(ckpt).module.parameters())
    assert card["exported from"] == str(ckpt.resolve()) and "val/psnr" in card["metrics"]
    assert card["trained on"]["paired"] == str(tiny_folders / "paired")
    assert info.main([str(ckpt)]) == 0
    text = capsys.readouterr().out
    assert "Lightning checkpoint" in text and "network DnCNN" in text and "best val/psnr" in text


def test_model_files_that_are_not_degrade_labs_are_refused(tmp_path, capsys):
    bare = tmp_path / "bare.safetensors"
    save_file({"weight": torch.zeros(2)}, str(bare))
    with pytest.raises(UserInputError, match="not written by degrade-lab export.*degrade-lab import"):
        degrade_lab.load_restorer(bare)
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(UserInputError, match="cannot be read as safetensors"):
        degrade_lab.load_restorer(tmp_path / "junk.safetensors")
    assert info.main([str(bare)]) == 2 and "not written by degrade-lab export" in capsys.readouterr().err
    assert export.main(["ckpt=x.ckpt", "output=model.pt"]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert export.main(["checkpoint=x.ckpt"]) == 2 and "unexpected argument" in capsys.readouterr().err


def test_a_calibration_is_stored_in_a_safetensors_file_too(dncnn_ckpt, tmp_path):
    from degrade_lab.utils.checkpoint import load_model, store_calibration

    model = export.export_safetensors(dncnn_ckpt, tmp_path / "m.safetensors")
    before = degrade_lab.load_restorer(model).module.net.body[0].weight.clone()
    store_calibration(model, {"option": "noise_level", "value": 12.5})
    module, record = load_model(model)
    assert module.calibration == record["calibration"] == {"option": "noise_level", "value": 12.5}
    assert torch.equal(module.net.body[0].weight, before) and record["exported_from"]
