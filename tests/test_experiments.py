"""The experiment scripts' shared helpers (experiments/_cli.py): seeds, mean ± std and the win rule; the demo
end to end (slow)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

from _cli import mean_std, parse_seeds, plus_minus, verdict  # noqa: E402


def test_seeds_are_parsed_and_checked():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds(" 7 ") == [7]
    for bad in ("", "0,0", "a,b"):
        with pytest.raises(SystemExit, match="--seeds"):
            parse_seeds(bad)


def test_mean_and_sample_std():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx((5 / 3) ** 0.5)  # sum of squares 5, divided by n - 1 = 3
    assert mean_std([4.2]) == (4.2, 0.0)
    assert plus_minus([24.0, 25.0, 26.0]) == "25.00 ± 1.00"
    assert plus_minus([0.5], 3) == "0.500"


def test_a_win_needs_the_means_apart_by_more_than_both_stds():
    base = [24.0, 24.1, 23.9]  # 24.0 ± 0.1
    assert verdict([25.0, 25.2, 24.8], base) == "win"  # 1.0 apart > 0.2 + 0.1
    assert verdict([24.35, 24.55, 24.15], base) == "win"  # 0.35 apart > 0.2 + 0.1
    assert verdict([24.2, 24.6, 23.8], base) == "tie"  # 0.2 apart < 0.4 + 0.1
    assert verdict(base, [25.0, 25.2, 24.8]) == "loss"
    assert verdict([25.0], [24.0]) == "win"  # one seed each: no spread to hide in


@pytest.mark.slow
def test_the_demo_runs_end_to_end_with_two_seeds_in_fp32(tmp_path):
    result = subprocess.run([sys.executable, str(EXPERIMENTS / "dncnn_demo.py"), "--steps", "2", "--samples", "1",
                             "--seeds", "0,1", "--precision", "fp32"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path(result.stdout.strip().splitlines()[-1])
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1] and results["precision"] == "32-true"
    for name in ("awgn", "camera", "oracle (true pairs)"):
        assert len(results[name]["psnr"]) == 2
        for run in results[name]["train_runs"]:  # what each DnCNN actually trained in
            assert "precision: 32-true" in (Path(run) / "config.yaml").read_text()
    table = (out / "results.md").read_text()
    assert "±" in table and "vs AWGN" in table
