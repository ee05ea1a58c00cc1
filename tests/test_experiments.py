"""The experiment scripts' shared helpers (experiments/_cli.py): seeds, mean ± std and the win rule (the demo is a
pipeline now: tests/test_pipeline.py)."""

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


