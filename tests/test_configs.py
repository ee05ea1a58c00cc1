"""Every YAML in conf/ composes and instantiates; the defaults order is the template's."""

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from degrade_lab.degradations.base import Degrader
from degrade_lab.degradations.build import is_learned
from degrade_lab.lit.base import instantiate_model
from degrade_lab.paths import config_dir

CONF = config_dir()


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_defaults_order_puts_experiment_then_debug_last():
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    names = [next(iter(d)) if isinstance(d, dict) or OmegaConf.is_dict(d) else d for d in defaults]
    assert names[0] == "_self_"
    assert names.index("experiment") > max(names.index(g) for g in ("data", "model", "trainer", "hardware"))
    assert names[-1] == "debug"


@pytest.mark.parametrize("model", options("model"))
def test_model_configs_instantiate(compose, model):
    cfg = compose("train", [f"model={model}"])
    module = instantiate_model(cfg.model)
    assert hasattr(module, "data_kind") and sum(p.numel() for p in module.parameters()) > 0


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose_and_build_their_model(compose, experiment):
    cfg = compose("train", [f"experiment={experiment}"])
    instantiate_model(cfg.model)
    assert cfg.trainer.max_steps > 0


@pytest.mark.parametrize("degrader", options("degrader"))
def test_degrader_configs_instantiate(compose, degrader):
    cfg = compose("synthesize", [f"degrader={degrader}", "input=x", "output=y"])
    if is_learned(degrader):  # the degrader of a trained model: a checkpoint is required (its own tests)
        with pytest.raises(Exception, match="needs a checkpoint"):
            hydra.utils.instantiate(cfg.degrader, _convert_="all")
        return
    built = hydra.utils.instantiate(cfg.degrader, _convert_="all")
    assert isinstance(built, Degrader)
    assert built(torch.rand(1, 3, 32, 32), torch.Generator().manual_seed(0)).shape[0] == 1


@pytest.mark.parametrize("group", ["hardware", "trainer", "callbacks", "logger", "debug"])
def test_groups_compose_and_instantiate(compose, group, tmp_path):
    for option in options(group):
        cfg = compose("train", [f"{group}={option}"])
        for conf in (cfg.get("callbacks") or {}).values():
            if conf and "_target_" in conf:
                hydra.utils.instantiate(conf)
        if group == "trainer" or (group == "hardware" and option in ("cpu", "ddp_cpu")):
            trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
            assert trainer.max_steps == cfg.trainer.max_steps
        if group == "logger":
            from degrade_lab.utils.loggers import instantiate_loggers

            loggers = instantiate_loggers(cfg.get("logger"), tmp_path / option)
            assert len(loggers) == len([c for c in (cfg.get("logger") or {}).values() if c])


def test_data_configs_instantiate(compose, tiny_folders, tmp_path):
    from conftest import save_rgb, smooth_image
    from test_named_sets import write_div2k, write_lol, write_realsr
    from test_sidd import write_sidd

    for data in options("data"):
        overrides = [f"data={data}"]
        if data == "folders":
            overrides += [f"data.paired={tiny_folders / 'paired'}", f"data.test={tiny_folders / 'test'}",
                          "data.crop_size=32"]
        if data == "builtin_clean":  # clean images only: the pairs come from a degrader on the fly
            overrides += ["+degrader@data.degrader=awgn"]
        if data == "sidd":  # a miniature of SIDD as shipped
            write_sidd(tmp_path / "SIDD")
            overrides += [f"data.root={tmp_path / 'SIDD'}", "data.crop_size=32"]
        if data in ("aim19", "ntire20"):  # no training pairs: the clean images degraded on the fly
            overrides += [f"data.root={write_realsr(tmp_path / data, data)}", "data.crop_size=32",
                          "+degrader@data.degrader=bicubic"]
        if data == "div2k":
            overrides += [f"data.root={write_div2k(tmp_path / 'DIV2K')}", "data.crop_size=32"]
        if data == "lol":
            overrides += [f"data.root={write_lol(tmp_path / 'lowlight')}", "data.crop_size=32"]
        if data == "testset":  # clean test images only: what evaluate's sweeps degrade
            save_rgb(tmp_path / "sets" / "CBSD68" / "0.png", smooth_image(np.random.default_rng(0), 32, 32))
            cfg = compose("evaluate", [*overrides, f"data.root={tmp_path / 'sets'}"])
            assert len(hydra.utils.instantiate(cfg.data, kind="clean")) == 1
            continue
        if data == "dnd":  # no ground truth, no training split: evaluate's submission only
            from test_dnd import write_dnd

            write_dnd(tmp_path / "DND")
            cfg = compose("evaluate", [*overrides, f"data.root={tmp_path / 'DND'}"])
            assert len(hydra.utils.instantiate(cfg.data, kind="test")) == 6
            with pytest.raises(hydra.errors.InstantiationException, match="no ground truth and no training split"):
                hydra.utils.instantiate(cfg.data, kind="paired")
            continue
        cfg = compose("train", overrides)
        dm = hydra.utils.instantiate(cfg.data, kind="paired", seed=0)
        batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
        assert batch["clean"].shape[-1] == cfg.data.crop_size
        assert batch["degraded"].shape[-1] == cfg.data.crop_size // cfg.data.scale
    # the builtin data exists with its manifest, in the cache, not the working directory
    assert (Path(cfg.paths.data_dir) / "builtin" / "manifest.json").is_file()


def test_paths_do_not_depend_on_the_working_directory(compose, tmp_path, monkeypatch):
    first = compose("train").paths
    monkeypatch.chdir(tmp_path)
    second = compose("train").paths
    assert first.log_dir == second.log_dir and first.data_dir == second.data_dir
    assert not str(second.log_dir).startswith(str(tmp_path))


@pytest.mark.parametrize("name, sigmas, scale, operator", [
    ("sidd", (40, 20), 1, "Identity"), ("dnd", (20, 10), 1, "Identity"), ("aim19", (15, 10), 4, "Bicubic"),
    ("ntire20", (8, 3), 4, "Bicubic"), ("lol", (3, 2), 1, "LowLight"),
])
def test_ludvae_paper_presets(compose, name, sigmas, scale, operator):
    cfg = compose("train", [f"experiment=ludvae_{name}"])
    module = instantiate_model(cfg.model)
    assert (module.noise_level_clean, module.noise_level_degraded) == sigmas
    assert module.scale == scale == cfg.data.scale and type(module.clean_operator).__name__ == operator
    assert cfg.model.clean_operator._target_.endswith(operator)  # a config: the constructor reads no file
    assert sum(p.numel() for p in module.net.parameters()) == 5_709_827
    assert cfg.trainer.max_steps == 200_000 and cfg.model.optimizer.lr == 1e-4 and cfg.model.kl_anneal_steps == 10_000
    assert (cfg.model.color_normalization is not None) == (name == "aim19")



@pytest.mark.parametrize("name, lr, hidden, condition_scale, flow_crop, batch, parameters", [
    # the authors' confs (reference 3.3) and counts (3.2) less the 285,828 never-used parameters (docs/deflow.md)
    ("aim19", 1e-4, 128, 8, 160, 8, 62_935_305 - 285_828),
    ("ntire20", 5e-5, 64, 4, 160, 8, 39_741_641 - 285_828),
    ("dped", 5e-6, 64, 4, 80, 48, 39_741_641 - 285_828),
])
def test_deflow_paper_presets(compose, name, lr, hidden, condition_scale, flow_crop, batch, parameters):
    """The flow runs at the LR scale: clean HR crops shrunk x4 by T give the authors' GT crop size."""
    cfg = compose("train", [f"experiment=deflow_{name}"])
    module = instantiate_model(cfg.model)
    assert cfg.model.optimizer.lr == lr and cfg.model.net.hidden == hidden and module.net.condition_scale == condition_scale
    assert module.scale == 4 == cfg.data.scale and type(module.clean_operator).__name__ == "Bicubic"
    assert cfg.data.crop_size // cfg.data.scale == flow_crop and cfg.data.batch_size == batch
    assert flow_crop % module.net.multiple == 0
    assert sum(p.numel() for p in module.net.parameters()) == parameters
    assert cfg.trainer.max_steps == 100_000 and list(cfg.model.scheduler.milestones) == [50_000, 75_000, 90_000, 95_000]
    assert tuple(cfg.model.optimizer.betas) == (0.9, 0.99)
    assert (cfg.model.color_normalization is not None) == (name == "aim19")


@pytest.mark.parametrize("task", ["train", "evaluate", "synthesize"])
def test_every_preset_composes_with_a_task_or_is_refused_in_one_line(compose, task, capsys):
    """`degrade-lab TASK experiment=NAME --cfg job`: composes, or stops (exit 2) naming the tasks it is for."""
    from degrade_lab.cli import _check_experiment, preset_groups, task_groups

    for name in options("experiment"):
        if preset_groups(name) <= task_groups(task):
            compose(task, [f"experiment={name}"])
            continue
        with pytest.raises(SystemExit) as stop:
            _check_experiment(task, [f"experiment={name}"])
        message = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(message.splitlines()) == 1
        assert f"experiment={name}" in message and "degrade-lab train" in message
    if task == "train":  # every preset is a training preset
        assert all(preset_groups(name) <= task_groups("train") for name in options("experiment"))


def test_evaluate_and_synthesize_take_the_hardware_group(compose):
    from degrade_lab.tasks.common import task_device

    for task in ("evaluate", "synthesize"):
        assert task_device(compose(task, [])).type == "cpu"
        assert task_device(compose(task, ["hardware=gpu"])).type == "cuda"
        assert task_device(compose(task, ["hardware=gpu", "device=cpu"])).type == "cpu"  # the older alias wins


def test_ludvae_synthesis_presets_follow_the_authors_and_compose_alike(compose):
    """seed-reference 1.5 (main_translate.py): SIDD U(30, 70); DND U(10, 30) with T U(1, 3); AIM19 15; NTIRE20 10;
    LOL 3; the decoder's output as it is. The name alone (data.degrader=ludvae_dnd) builds the same as Hydra's group."""
    from degrade_lab.degradations.build import degrader_config

    expected = {"sidd": ([30, 70], 1.0), "dnd": ([10, 30], [1, 3]), "aim19": (15, 1.0), "ntire20": (10, 1.0),
                "lol": (3, 1.0)}
    for name, (level, temperature) in expected.items():
        by_name = OmegaConf.to_container(degrader_config(f"ludvae_{name}"))
        by_group = OmegaConf.to_container(compose("synthesize", [f"degrader=ludvae_{name}", "input=x", "output=y"]).degrader)
        assert by_name == by_group
        assert (by_name["noise_level"], by_name["temperature"]) == (level, temperature)
        assert by_name["residual_transfer"] is False and by_name["_target_"].endswith("LUDVAEDegrader")
