"""DeFlow's training module and tasks end to end on tiny folders: train (NLL of both domains, validation,
calibration of T), synthesize (seeded, calibrated T), the non-finite guard, a checkpoint rebuilt from itself."""

import json
from pathlib import Path

import pytest
import torch

from degrade_lab.errors import UserInputError
from degrade_lab.tasks.synthesize import synthesize
from degrade_lab.tasks.train import train
from degrade_lab.utils.checkpoint import load_model

TINY = ["experiment=deflow_cpu", "model.net.steps=1", "model.net.hidden=8", "model.net.features=8",
        "model.net.blocks=2", "model.net.growth=4", "model.net.stack_blocks=[0,1]", "data=folders",
        "data.crop_size=16", "data.batch_size=4", "data.num_workers=0", "data.val_crop=null",
        "trainer.max_steps=6", "trainer.val_check_interval=3", "callbacks.progress.refresh_rate=0", "hardware=cpu"]


@pytest.fixture
def deflow_run(compose, tiny_folders):
    cfg = compose("train", [*TINY, f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}",
                            f"data.test={tiny_folders / 'test'}"])
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics


def test_train_then_synthesize_a_deflow(deflow_run, compose, tiny_folders, tmp_path):
    run, metrics = deflow_run
    assert {"val/akld", "val/kld", "val/noise_distance", "train/loss"} <= set(metrics)
    assert (run / "checkpoints" / "best.ckpt").is_file()
    module, record = load_model(run / "checkpoints" / "last.ckpt")  # rebuilt from the checkpoint alone
    assert type(module).__name__ == "DeFlowModule" and module.net.encoder.scale == 4
    # every ActNorm was initialised from the first batch and saved so
    from degrade_lab.archs.flow_blocks import ActNorm
    assert all(bool(m.initialized) for m in module.net.modules() if isinstance(m, ActNorm))
    # train ended by calibrating T to the target folder's noise
    calibration = module.calibration
    assert calibration["option"] == "temperature" and metrics["calibrated_temperature_last"] == calibration["value"]
    outs = []
    for name in ("a", "b"):
        cfg = compose("synthesize", ["degrader=deflow", f"degrader.ckpt={run / 'checkpoints' / 'last.ckpt'}",
                                     f"input={tiny_folders / 'source'}", f"output={tmp_path / name}", "seed=3",
                                     "progress=false"])
        synthesize(cfg)
        outs.append(sorted((tmp_path / name / "degraded").glob("*.png")))
    assert len(outs[0]) == 4 and [p.read_bytes() for p in outs[0]] == [p.read_bytes() for p in outs[1]]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    drawn = [f["parameters"]["temperature"] for f in manifest["files"].values()]
    assert drawn == pytest.approx([calibration["value"]] * len(drawn), rel=1e-6)


def test_zero_temperature_synthesis_returns_the_clean_image(deflow_run):
    """Eq. (8) with T = 0 adds no shift: the flow's inverse gives the input back (to float precision)."""
    from degrade_lab.degradations.learned import LearnedDegrader

    run, _ = deflow_run
    degrader = LearnedDegrader(run / "checkpoints" / "last.ckpt", "degrade_lab.lit.deflow.DeFlowModule",
                               options={"temperature": 0.0})
    clean = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    out = degrader(clean, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, clean, atol=1e-4, rtol=0)


def test_reverse_translation_through_the_degrader(deflow_run):
    """``direction=n2c``: a degraded image in, its clean estimate out, same size; seeded: the same seed gives the
    same image, another seed another draw of the conditional."""
    from degrade_lab.degradations.learned import LearnedDegrader

    run, _ = deflow_run
    ckpt, target = run / "checkpoints" / "last.ckpt", "degrade_lab.lit.deflow.DeFlowModule"
    noisy = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    degrader = LearnedDegrader(ckpt, target, direction="n2c", options={"temperature": 1.0})
    assert degrader.produces == "clean"
    a, b = (degrader(noisy, torch.Generator().manual_seed(s)) for s in (1, 1))
    assert a.shape == noisy.shape and torch.equal(a, b)
    assert not torch.equal(a, degrader(noisy, torch.Generator().manual_seed(2)))


def test_the_sr_setting_models_the_degraded_lr_image_given_its_conditioning():
    """Real-world x4 SR (``clean_operator`` bicubic): the clean side is shrunk x4 by T before the flow, so both
    domains are LR-sized; synthesis maps an HR clean image to a degraded LR one, a quarter of its size."""
    from degrade_lab.archs.deflow import DeFlow
    from degrade_lab.degradations.learned import LearnedDegrader
    from degrade_lab.lit.deflow import DeFlowModule

    torch.manual_seed(0)
    net = DeFlow(steps=1, hidden=8, features=8, blocks=2, growth=4, stack_blocks=(0, 1))
    module = DeFlowModule(net, clean_operator={"_target_": "degrade_lab.degradations.resize.Bicubic", "scale": 4})
    assert module.scale == 4
    clean, degraded = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 16, 16)
    for batch in ({"clean": clean}, {"degraded": degraded}):
        assert torch.isfinite(module.loss_terms(batch)["loss"])
    degrader = LearnedDegrader(module=module.eval(), options={"temperature": 0.0})
    out = degrader(clean, torch.Generator().manual_seed(0))
    assert degrader.scale == 4 and out.shape == (2, 3, 16, 16)
    # T = 0 adds no shift: the output is T(clean), the MATLAB-bicubic x1/4 image
    from degrade_lab.utils.imresize import imresize
    torch.testing.assert_close(out, imresize(clean, 0.25).clamp(0, 1), atol=1e-4, rtol=0)

def test_denoising_synthesis_keeps_the_clean_low_frequencies_by_default():
    """``lowpass_sigma=null`` takes the model's default: 3 pixels for a denoising DeFlow (its translation moves
    colours, docs/results.md), 0 for x4 SR and for the degraded -> clean direction; a number given wins."""
    from degrade_lab.archs.deflow import DeFlow
    from degrade_lab.degradations.learned import LearnedDegrader
    from degrade_lab.lit.deflow import DeFlowModule

    def tiny(**kwargs):
        torch.manual_seed(0)
        return DeFlowModule(DeFlow(steps=1, hidden=8, features=8, blocks=2, growth=4, stack_blocks=(0, 1)),
                            **kwargs).eval()

    denoising, sr = tiny(), tiny(clean_operator={"_target_": "degrade_lab.degradations.resize.Bicubic", "scale": 4})
    assert LearnedDegrader(module=denoising).keep_low_frequencies.sigma == 3.0
    assert LearnedDegrader(module=denoising, lowpass_sigma=0.0).keep_low_frequencies.sigma == 0.0
    assert LearnedDegrader(module=denoising, direction="n2c").keep_low_frequencies.sigma == 0.0
    assert LearnedDegrader(module=sr).keep_low_frequencies.sigma == 0.0
    with pytest.raises(UserInputError, match="lowpass_sigma must be >= 0"):
        LearnedDegrader(module=denoising, lowpass_sigma=-1.0)
    # validation scores what synthesis makes: a colour shift of the translation is removed for denoising ...
    target = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    for module, expected in ((denoising, target), (sr, target + 0.2)):
        module.validation_generator = torch.Generator().manual_seed(0)
        module.net.synthesize = lambda image, seeds, temperature: image + 0.2
        torch.testing.assert_close(module.translate(target, torch.ones(2)), expected, atol=0.5 / 255 + 1e-6, rtol=0)
    # ... and its noise match is by the residual, the statistic DeFlow's calibration matches
    assert denoising.val_noise.statistic == "residual" == denoising.calibration_statistic


def test_non_finite_losses_stop_training_with_the_cause_and_fix(compose, tiny_folders, monkeypatch):
    from degrade_lab.lit.deflow import DeFlowModule

    real = DeFlowModule.loss_terms

    def broken(self, batch):
        terms = real(self, batch)
        terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(DeFlowModule, "loss_terms", broken)
    cfg = compose("train", [*TINY, "model.max_non_finite=3", f"data.source={tiny_folders / 'source'}",
                            f"data.target={tiny_folders / 'target'}"])
    with pytest.raises(UserInputError, match="not finite for 3 steps in a row.*Lower the learning rate"):
        train(cfg)


def test_semi_supervised_deflow_trains_on_pairs_through_eq_5(compose, tiny_folders):
    """``model.pairs=true``: the semi-supervised data (pairs + both unpaired folders); paired batches log
    ``train/nll_paired``; with no validation pairs the run validates on clean images by the noise match."""
    cfg = compose("train", [*TINY, "model.pairs=true", "trainer.max_steps=9", f"data.paired={tiny_folders / 'paired'}",
                            f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}"])
    metrics = train(cfg)
    assert {"train/nll_paired", "train/nll_clean", "train/nll_degraded", "val/noise_distance"} <= set(metrics)
    assert "val/akld" not in metrics
    module, _ = load_model(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert module.pairs and module.data_kind == "semi"
    with pytest.raises(Exception, match="needs a learned latent shift"):  # Hydra wraps it
        train(compose("train", [*TINY, "model.pairs=true", "model.net.shift=none",
                                f"data.paired={tiny_folders / 'paired'}"]))


@pytest.mark.slow
def test_ddp_replicas_start_from_rank_0s_actnorm_initialisation(tiny_folders, tmp_path):
    """Two CPU processes (``hardware=ddp_cpu``), each with its own batches: ActNorm initialises from rank 0's
    first batch on both, so the replicas hold the same weights at the end (without the broadcast they differ)."""
    import subprocess
    import sys

    from conftest import subprocess_env

    check = tmp_path / "ddp_check.json"
    env = subprocess_env(DDP_CHECK_OUT=str(check))
    args = [a for a in TINY if not a.startswith("hardware=")] + [
        "hardware=ddp_cpu", "trainer.max_steps=3", "trainer.val_check_interval=3", "logger=csv",
        f"data.source={tiny_folders / 'source'}", f"data.target={tiny_folders / 'target'}",
        "+callbacks.same_weights._target_=ddp_same_weights.SameWeightsOnEveryRank", f"paths.log_dir={tmp_path / 'logs'}"]
    result = subprocess.run([sys.executable, "-m", "degrade_lab.cli", "train", *args], capture_output=True, text=True,
                            env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(check.read_text())
    assert record["ranks"] == 2 and record["max_difference"] == 0.0
