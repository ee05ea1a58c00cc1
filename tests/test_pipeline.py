"""``degrade-lab pipeline``: stages planned from a config (placeholders, seeds, references), a table over seeds
with the win rule and the paper's numbers, and a small stage chain run end to end: rerunning runs nothing, a
changed stage is made again with what depends on it, a killed training resumes from its last.ckpt. Every shipped
pipeline composes and plans; the slow test runs each one at +scale=cpu_smoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from degrade_lab.errors import UserInputError
from degrade_lab.pipeline.results import build_table, mean_std, plus_minus, verdict
from degrade_lab.pipeline.stages import fill_at_run, plan
from degrade_lab.tasks.pipeline import pipeline
from test_configs import options


def test_plan_fills_placeholders_per_seed(tmp_path):
    stages = [{"name": "pairs", "task": "synthesize", "args": ["output={dir}/pairs", "{args:data}"]},
              {"name": "fit", "task": "train", "seeds": True, "args": ["data.paired={stage:pairs}/pairs", "seed={seed}",
                                                                      "trainer.max_steps=800"]},
              {"name": "score", "task": "evaluate", "seeds": True, "args": ["ckpt={stage:fit}/checkpoints/last.ckpt"]}]
    runs = plan(stages, [3, 7], {"data": ["data=folders", "data.test=T"]}, {"train": ["trainer.max_steps=4"]}, tmp_path)
    assert [r.key for r in runs] == ["pairs", "fit/s3", "fit/s7", "score/s3", "score/s7"]
    assert runs[0].args == [f"output={tmp_path}/pairs/pairs", "data=folders", "data.test=T"]
    assert runs[2].args == [f"data.paired={tmp_path}/pairs/pairs", "seed=7", "trainer.max_steps=4"]  # extra wins
    assert runs[4].args == [f"ckpt={tmp_path}/fit/s7/checkpoints/last.ckpt"] and runs[4].depends == {"fit/s7"}
    with pytest.raises(UserInputError, match="not an earlier stage"):
        plan([stages[1]], [0], {}, {}, tmp_path)
    with pytest.raises(UserInputError, match="mark it seeds: true"):
        plan([stages[1] | {"args": []}, {"name": "x", "task": "evaluate", "args": ["ckpt={stage:fit}"]}], [0], {}, {},
             tmp_path)
    with pytest.raises(UserInputError, match="task 'fit'"):
        plan([{"name": "a", "task": "fit"}], [0], {}, {}, tmp_path)
    with pytest.raises(UserInputError, match="no list args.data"):
        plan(stages[:1], [0], {}, {}, tmp_path)


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
    assert verdict([0.30, 0.31], [0.40, 0.41], higher_is_better=False) == "win"  # LPIPS: lower wins


def test_ckpt_placeholder_takes_best_when_the_run_validated_else_last(tmp_path):
    stages = [{"name": "fit", "task": "train", "args": []},
              {"name": "pairs", "task": "synthesize", "args": ["degrader.ckpt={ckpt:fit}"]}]
    run = plan(stages, [0], {}, {}, tmp_path)[1]
    assert run.depends == {"fit"}
    checkpoints = tmp_path / "fit" / "checkpoints"
    checkpoints.mkdir(parents=True)
    assert fill_at_run(run.args, tmp_path) == [f"degrader.ckpt={checkpoints / 'last.ckpt'}"]  # never validated
    (checkpoints / "best.ckpt").write_bytes(b"")
    assert fill_at_run(run.args, tmp_path) == [f"degrader.ckpt={checkpoints / 'best.ckpt'}"]


def _metrics(folder: Path, **values) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(values))
    return folder


def test_table_over_seeds_applies_the_win_rule_and_shows_the_paper(tmp_path):
    folders = {
        "base": [_metrics(tmp_path / f"b{i}", **{"test/psnr": v, "input/psnr": 20.0}) for i, v in enumerate([25.0, 25.2])],
        "better": [_metrics(tmp_path / f"w{i}", **{"test/psnr": v}) for i, v in enumerate([26.0, 26.2])],
        "close": [_metrics(tmp_path / f"t{i}", **{"test/psnr": v}) for i, v in enumerate([25.1, 25.5])],
        "judge": [_metrics(tmp_path / "j", **{"degradation/kld": 0.25})],
    }
    table = {"columns": ["degradation/kld", "test/psnr"], "baseline": "base", "rows": [
        {"key": "input", "name": "input", "restorer": "base", "input": True},
        {"key": "base", "name": "AWGN", "restorer": "base"},
        {"key": "better", "name": "learned", "restorer": "better", "degrader": "judge", "paper": {"test/psnr": 34.9}},
        {"key": "close", "name": "close", "restorer": "close"}]}
    text, results = build_table(table, lambda stage: folders[stage])
    lines = text.splitlines()
    assert lines[0].split("|")[1:-1] == [" method ", " KLD ", " PSNR (dB) ", " vs AWGN ", " paper "]
    assert "| input | - | 20.00 ± 0.00 | - | - |" in text  # the input scored by each seed's evaluation
    assert "| learned | 0.250 | 26.10 ± 0.14 | win | PSNR (dB) 34.9 |" in text  # 0.9 dB > 0.14 + 0.14
    assert "| close | - | 25.30 ± 0.28 | tie | - |" in text  # 0.2 dB < 0.28 + 0.14
    assert results["better"]["test/psnr"] == [26.0, 26.2] and results["better"]["paper"] == {"test/psnr": 34.9}
    # a row judged against another row than the baseline (SeNM-VAE Table 2: N pairs with and without synthesis)
    table["rows"][3]["against"] = "better"
    text, _ = build_table(table, lambda stage: folders[stage])
    assert "vs its baseline row" in text.splitlines()[0]
    assert "| close | - | 25.30 ± 0.28 | loss vs better | - |" in text  # 0.8 dB below, > 0.28 + 0.14
    assert "| learned | 0.250 | 26.10 ± 0.14 | win vs base | PSNR (dB) 34.9 |" in text
    table["headers"] = {"test/psnr": "PSNR on the 90"}
    assert " PSNR on the 90 " in build_table(table, lambda stage: folders[stage])[0].splitlines()[0]
    table["rows"][3]["against"] = "nowhere"
    with pytest.raises(UserInputError, match="against 'nowhere' is not a row"):
        build_table(table, lambda stage: folders[stage])


def _tiny(compose, run_dir: Path, stages: list[dict]):
    cfg = compose("pipeline", ["pipeline=dncnn_demo", "+scale=cpu_smoke"], run_dir=run_dir)
    with open_dict(cfg):
        cfg.pipeline.stages = OmegaConf.create(stages)
        cfg.pipeline.table = OmegaConf.create({"columns": ["test/psnr"], "rows": [
            {"key": "input", "name": "noisy input", "restorer": "score", "input": True},
            {"key": "dncnn", "name": "DnCNN", "restorer": "score"}]})
    return cfg


def test_a_stage_chain_runs_resumes_and_remakes_what_changed(compose, tiny_folders, tmp_path, capsys):
    test = tiny_folders / "test"
    stages = [
        {"name": "fit", "task": "train", "seeds": True, "args": [
            "experiment=dncnn_cpu", "model.net.channels=8", "model.net.depth=3", "data=folders",
            f"data.paired={tiny_folders / 'paired'}", f"data.test={test}", "data.crop_size=16", "seed={seed}",
            "logger=csv"]},
        {"name": "score", "task": "evaluate", "seeds": True, "args": [
            "ckpt={stage:fit}/checkpoints/last.ckpt", "data=folders", f"data.test={test}", "progress=false",
            "metrics.lpips=null"]}]
    root = tmp_path / "pipe"
    results = pipeline(_tiny(compose, root, stages))
    assert (root / "fit" / "s0" / "checkpoints" / "last.ckpt").is_file() and (root / "results.md").is_file()
    assert results["rows"]["dncnn"]["test/psnr"] and results["rows"]["input"]["test/psnr"]
    state = json.loads((root / "pipeline.json").read_text())["runs"]
    assert set(state) == {"fit/s0", "score/s0"} and all(r["status"] == "done" for r in state.values())
    capsys.readouterr()
    pipeline(_tiny(compose, root, stages))  # nothing left to do
    assert capsys.readouterr().out.count("done earlier, skipped") == 2
    # a training killed after its last checkpoint resumes from it; the evaluation after it is made again
    state["fit/s0"]["status"] = "running"
    (root / "pipeline.json").write_text(json.dumps({"runs": state}))
    pipeline(_tiny(compose, root, stages))
    printed = capsys.readouterr().out
    assert "fit/s0: degrade-lab train (resuming)" in printed and "score/s0: degrade-lab evaluate" in printed
    # a changed command is made again; the old folder is kept aside
    stages[1]["args"].append("metrics.crop_border=1")
    pipeline(_tiny(compose, root, stages))
    printed = capsys.readouterr().out
    assert "fit/s0: done earlier" in printed and "score/s0: degrade-lab evaluate" in printed
    assert list((root / "score").glob("s0.stale-*"))


@pytest.mark.parametrize("name", options("pipeline"))
def test_every_pipeline_composes_and_plans(compose, name, tmp_path):
    for scale in ([], ["+scale=cpu_smoke"]):
        cfg = compose("pipeline", [f"pipeline={name}", *scale])
        spec = OmegaConf.to_container(cfg.pipeline, resolve=True)
        args_sets = {**spec.get("args", {}), **(spec.get("cpu_smoke_args", {}) if scale else {})}
        runs = plan(spec["stages"], list(cfg.seeds), args_sets, OmegaConf.to_container(cfg.extra), tmp_path,
                    "cpu_smoke" if scale else None)
        assert runs and spec["table"]["rows"]
        stages = {r.stage for r in runs}
        for row in spec["table"]["rows"]:
            assert {row.get("restorer"), row.get("degrader")} - {None} <= stages


def test_every_pipeline_is_listed_in_the_experiments_index():
    index = (Path(__file__).resolve().parents[1] / "experiments" / "README.md").read_text()
    assert [name for name in options("pipeline") if f"`{name}`" not in index] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", options("pipeline"))
def test_every_stage_command_composes_at_full_scale(compose, name, tmp_path):
    """Each stage's command composes as its task's config, with the paper-scale data settings (folders given as
    placeholders): an override the task's config does not have shows here, not on the user's cluster."""
    import re

    cfg = compose("pipeline", [f"pipeline={name}"])
    with open_dict(cfg):
        for key in cfg.pipeline.get("needs") or {}:  # the data-set folders a full-scale run is given
            cfg.pipeline[key] = str(tmp_path / key)
    spec = OmegaConf.to_container(cfg.pipeline, resolve=True)
    runs = plan(spec["stages"], [0], spec.get("args", {}), OmegaConf.to_container(cfg.extra), tmp_path)
    seen = set()
    for run in runs:
        args = [re.sub(r"\{builtin:\w+\}", str(tmp_path / "builtin"), a) for a in run.args]
        args = [re.sub(r"\{run_ckpt:([^{}]+)\}", r"\1/checkpoints/last.ckpt", a) for a in args]
        if (run.task, tuple(args)) not in seen:
            seen.add((run.task, tuple(args)))
            compose(run.task, args)


@pytest.mark.slow
@pytest.mark.parametrize("name", options("pipeline"))
def test_every_pipeline_runs_at_cpu_smoke_scale(compose, name, tmp_path):
    results = pipeline(compose("pipeline", [f"pipeline={name}", "+scale=cpu_smoke"], run_dir=tmp_path / name))
    assert results["rows"] and (tmp_path / name / "results.md").is_file()


def test_args_inside_an_argument_and_stages_skipped_at_a_scale(tmp_path):
    stages = [{"name": "tiles", "task": "prepare", "skip": ["cpu_smoke"], "args": ["output={dir}/tiles"]},
              {"name": "pairs", "task": "synthesize", "args": ["input={args:clean}", "{args:data}"]}]
    sets = {"clean": ["/photos/clean"], "data": ["data=folders", "data.test=T"]}
    runs = plan(stages, [0], sets, {}, tmp_path, "cpu_smoke")
    assert [r.key for r in runs] == ["pairs"] and runs[0].args == ["input=/photos/clean", "data=folders", "data.test=T"]
    assert [r.key for r in plan(stages, [0], sets, {}, tmp_path)] == ["tiles", "pairs"]
    with pytest.raises(UserInputError, match="must hold one value, not 2"):
        plan([{"name": "x", "task": "evaluate", "args": ["a={args:data}"]}], [0], sets, {}, tmp_path)
    nested = {**sets, "model": ["experiment=x", "{args:data}", "input={args:clean}"]}
    assert plan([{"name": "y", "task": "train", "args": ["{args:model}"]}], [0], nested, {}, tmp_path)[0].args == [
        "experiment=x", "data=folders", "data.test=T", "input=/photos/clean"]
    with pytest.raises(UserInputError, match="refers to itself"):
        plan([{"name": "z", "task": "train", "args": ["{args:loop}"]}], [0], {"loop": ["{args:loop}"]}, {}, tmp_path)


def test_a_paper_pipeline_names_what_it_needs(compose):
    with pytest.raises(UserInputError, match="pipeline.root=DIR: the folder you unpacked SIDD into"):
        pipeline(compose("pipeline", ["pipeline=ludvae_table3_sidd"]))
