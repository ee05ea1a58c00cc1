"""``hparams_search=...``: the Optuna presets (LUD-VAE Table 6's pre-noise, SeNM-VAE fig. 7's lambda, DeFlow's K)
compose with their models, a two-trial search runs end to end through the CLI and returns its best value, and
without the optional extra the command says how to install it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from degrade_lab import cli
from test_cli import cli as run_cli
from test_configs import options

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the optional extra: pip install -e '.[hparams]'")

PRESETS = {"ludvae_prenoise": "ludvae_cpu", "senmvae_lambda": "senmvae_cpu", "deflow_steps": "deflow_cpu"}


def test_every_search_composes_with_its_model(compose):
    assert sorted(PRESETS) == options("hparams_search")
    for search, experiment in PRESETS.items():
        cfg = compose("train", [f"experiment={experiment}", f"hparams_search={search}"])
        params = cfg.hydra.sweeper.params
        assert cfg.hydra.sweeper.direction == "minimize" and cfg.optimized_metric == "auto" and params
        for key in params:  # every searched key exists in the model's config
            node = cfg
            for part in key.split("."):
                node = node[part]


def test_a_two_trial_search_runs_and_reports_its_best(tiny_folders, tmp_path):
    result = run_cli("train", "experiment=ludvae_cpu", "hparams_search=ludvae_prenoise", "hydra.sweeper.n_trials=2",
                     "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                     "data=folders", f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}",
                     f"data.test={tiny_folders / 'test'}", "data.crop_size=16", "data.batch_size=2",
                     "trainer.max_steps=2", "trainer.val_check_interval=2", "calibrate=false",
                     "callbacks.progress.refresh_rate=0", "logger=csv", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"model.noise_level_clean", "model.noise_level_degraded"}
    assert 0.0 <= best["best_params"]["model.noise_level_clean"] <= 30.0 and best["best_value"] >= 0
    assert len(list(Path(tmp_path / "sweep").glob("[0-9]*"))) == 2  # one run folder per trial


def test_without_the_extra_the_command_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.hydra_optuna") else real(name, *a))
    with pytest.raises(SystemExit) as exit_:
        cli._check_sweeper("train", ["experiment=ludvae_cpu", "hparams_search=ludvae_prenoise"])
    assert exit_.value.code == 2 and "pip install -e '.[hparams]'" in capsys.readouterr().err
