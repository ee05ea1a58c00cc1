"""Calibration of learned degraders from the degraded folder alone: the search, the distance between noise
readings, and `degrade-lab calibrate` / the end of training storing the result that synthesis then uses."""

import json
import math
from pathlib import Path

import pytest
import torch

from degrade_lab.degradations.calibration import calibrate, search
from degrade_lab.degradations.learned import LearnedDegrader
from degrade_lab.metrics.pooled_noise import noise_distance, noise_ratio, per_pixel_std, pooled_noise
from test_learned_degraders import _GainModule


def test_search_finds_the_minimum_of_a_known_function():
    for best in (0.3, 1.7, 3.9):
        value, tried = search(lambda v, b=best: (math.log(v) - math.log(b)) ** 2, 0.25, 4.0)
        assert abs(value / best - 1) < 0.02
        assert len(tried) == 15 and tried[0][0] == pytest.approx(0.25) and tried[6][0] == pytest.approx(4.0)


def _reading(sigma: float) -> dict:
    """A hand-made reading: every scale, channel and band at ``sigma``."""
    channels = {c: sigma for c in "RGB"}
    return {"sigma_by_scale": {s: dict(channels) for s in ("1", "2", "4")},
            "noise_level_function": {"sigma": {c: [sigma, None, sigma] for c in "RGB"}}}


def test_noise_distance_is_the_mean_squared_log_ratio():
    assert noise_distance(_reading(10), _reading(10)) == 0
    assert noise_distance(_reading(12), _reading(10)) == pytest.approx(math.log(1.2) ** 2)
    assert noise_ratio(_reading(8), _reading(10)) == pytest.approx(0.8)
    missing = _reading(10)
    missing["noise_level_function"]["sigma"] = {c: [None, None, None] for c in "RGB"}
    assert noise_distance(_reading(11), missing) == pytest.approx(math.log(1.1) ** 2)  # scales only


def _images(count, sigma, seed, size=64):
    """Flat grey images of levels 0.3 ... 0.7 (several bands of the noise level function) with white noise."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.full((3, size, size), 0.3 + 0.4 * i / max(count - 1, 1))
             + torch.randn(3, size, size, generator=generator) * sigma / 255).clamp(0, 1) for i in range(count)]


def test_calibrate_recovers_the_gain_of_a_toy_noise_model():
    """A toy network adds ``offset`` x N(0, 1): calibrated on a folder with noise std 20 / 255 from smooth clean
    images, the offset must come out at 20 / 255, with no clean / degraded pair involved."""
    reference = pooled_noise(((str(i), image) for i, image in enumerate(_images(8, 20.0, 1))), 8)
    assert per_pixel_std(reference) == pytest.approx(20, rel=0.05)
    clean = [image for image in _images(8, 0.0, 2)]
    degrader = LearnedDegrader(module=_GainModule())
    result = calibrate(degrader, clean, reference, "offset", 0.01, 0.5)
    assert result["value"] == pytest.approx(20 / 255, rel=0.06)
    assert result["ratio"] == pytest.approx(1, abs=0.05) and not result["at_edge"]
    assert degrader.options["offset"] == (result["value"], result["value"])


class _TexturedNoiseNet(torch.nn.Module):
    """A toy model whose noise lives only where the image is textured: ``offset * N(0, 1)`` on the right half."""

    def synthesize(self, image, seeds, tile_size=0, *, offset=None):
        offset = torch.zeros(len(image)) if offset is None else offset
        noise = torch.stack([torch.randn(image.shape[1:], generator=torch.Generator().manual_seed(seed))
                             for seed in seeds])
        noise[..., : image.shape[-1] // 2] = 0
        return image + offset.view(-1, 1, 1, 1) * noise


class _TexturedNoiseModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _TexturedNoiseNet()


def test_residual_calibration_matches_the_per_pixel_std_of_noise_that_follows_texture():
    """Noise on half of the pixels only: matching the per-pixel std of synthetic - clean to the folder's 20 / 255
    needs offset = 20 sqrt(2) / 255 (the mean square over the image is offset^2 / 2), whatever the estimator
    reads in the flat half. A degrader that changes the image size cannot be calibrated that way."""
    from degrade_lab.errors import UserInputError
    from degrade_lab.metrics.pooled_noise import residual_std

    reference = pooled_noise(((str(i), image) for i, image in enumerate(_images(8, 20.0, 1))), 8)
    clean = [image.clone() for image in _images(8, 0.0, 2)]
    for image in clean:  # stripes on the right half
        image[..., 32::2] = 0.35
        image[..., 33::2] = 0.65
    degrader = LearnedDegrader(module=_TexturedNoiseModule())
    result = calibrate(degrader, clean, reference, "offset", 0.01, 0.5, statistic="residual")
    target = per_pixel_std(reference)
    assert result["statistic"] == "residual" and result["noise_std_target"] == pytest.approx(target, abs=1e-3)
    assert result["value"] == pytest.approx(target * math.sqrt(2) / 255, rel=0.03)
    assert result["noise_std_synthetic"] == pytest.approx(target, rel=0.01)
    with pytest.raises(UserInputError, match="keeps the image size"):
        residual_std([torch.zeros(3, 8, 8)], [torch.zeros(3, 16, 16)])
    with pytest.raises(UserInputError, match="statistic must be one of"):
        calibrate(degrader, clean, reference, "offset", 0.01, 0.5, statistic="histogram")


def test_residual_calibration_of_an_sr_model_compares_with_the_operators_output():
    """A real-world SR model synthesizes LR images from HR clean ones through its task operator T (x4 bicubic):
    its residual is synthetic - T(clean), so a toy SR model adding ``offset`` x N(0, 1) to T(clean) calibrates to
    the folder's 20 / 255, as the denoising one does."""
    from degrade_lab.degradations.resize import Bicubic

    module = _GainModule()
    module.clean_operator = Bicubic(scale=4)
    reference = pooled_noise(((str(i), image) for i, image in enumerate(_images(8, 20.0, 1))), 8)
    clean = [image for image in _images(8, 0.0, 2, 128)]
    result = calibrate(LearnedDegrader(module=module), clean, reference, "offset", 0.01, 0.5, statistic="residual")
    assert result["value"] == pytest.approx(per_pixel_std(reference) / 255, rel=0.03)


class _CorrelatedNoiseNet(torch.nn.Module):
    """A toy model of spatially correlated noise: ``offset`` x N(0, 1) drawn at half resolution and repeated over
    2 x 2 blocks, so that ``offset`` is its per-pixel std; the blind estimator misreads such noise."""

    def synthesize(self, image, seeds, tile_size=0, *, offset=None):
        offset = torch.zeros(len(image)) if offset is None else offset
        return image + offset.view(-1, 1, 1, 1) * torch.stack([_correlated(image.shape[1:], seed) for seed in seeds])


def _correlated(shape, seed):
    half = torch.randn(shape[0], shape[1] // 2, shape[2] // 2, generator=torch.Generator().manual_seed(seed))
    return half.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)


class _CorrelatedNoiseModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _CorrelatedNoiseNet()


def test_residual_reading_cancels_the_estimators_bias_where_the_residual_cannot():
    """The folder: flat images with the same 2 x 2-block noise at a per-pixel std of 20. The estimator misreads it
    (its 2x reading assumes white noise and comes out near 2 x 20), so matching the synthetic per-pixel std to that
    reading (``residual``) lands far off, while the estimator on the laid-over residual reads the synthetic noise
    with the same bias and recovers 20 / 255."""
    folder = [(torch.full((3, 64, 64), 0.3 + 0.4 * i / 7) + 20 / 255 * _correlated((3, 64, 64), 100 + i)).clamp(0, 1)
              for i in range(8)]
    reference = pooled_noise(((str(i), image) for i, image in enumerate(folder)), 8)
    assert per_pixel_std(reference) > 1.5 * 20  # the bias this statistic exists to cancel
    clean = _images(8, 0.0, 2)
    degrader = LearnedDegrader(module=_CorrelatedNoiseModule())
    by_field = calibrate(degrader, clean, reference, "offset", 0.01, 0.5, statistic="residual_reading")
    by_residual = calibrate(degrader, clean, reference, "offset", 0.01, 0.5, statistic="residual")
    assert by_field["statistic"] == "residual_reading" and by_field["value"] == pytest.approx(20 / 255, rel=0.06)
    assert by_residual["value"] > 1.5 * 20 / 255


def test_residual_reading_sees_noise_that_texture_hides_from_the_reading():
    """Clean images with a fine random texture of std 15 (frozen: part of the content) and a toy model adding
    ``offset`` x N(0, 1): on the synthetic images the estimator cannot tell the texture from the noise (it reads
    sqrt(20^2 + 15^2) = 25 at offset 20, so the ``reading`` statistic would settle near 13); laid over the blurred
    clean image, the residual is all the estimator sees, and the offset comes out at the folder's 20."""
    from degrade_lab.degradations.calibration import synthetic_reading

    reference = pooled_noise(((str(i), image) for i, image in enumerate(_images(8, 20.0, 1))), 8)
    clean = _images(8, 15.0, 3)  # the texture: white, so the estimator reads it as noise
    degrader = LearnedDegrader(module=_GainModule())
    target = per_pixel_std(reference)
    by_field = calibrate(degrader, clean, reference, "offset", 0.01, 0.5, statistic="residual_reading")
    assert by_field["value"] == pytest.approx(target / 255, rel=0.06)
    textured = per_pixel_std(synthetic_reading(degrader, clean, "offset", target / 255))
    assert textured == pytest.approx(math.hypot(target, 15), rel=0.08)


def test_a_stored_calibration_is_the_default_and_an_explicit_option_wins(caplog):
    module = _GainModule()
    module.calibration = {"option": "offset", "value": 0.1, "noise_std_synthetic": 25.0, "noise_std_target": 25.5}
    with caplog.at_level("INFO"):
        calibrated = LearnedDegrader(module=module)
    assert calibrated.options["offset"] == (0.1, 0.1) and "calibrated offset = 0.1" in caplog.text
    assert LearnedDegrader(module=module, options={"offset": 0.3}).options["offset"] == (0.3, 0.3)


def test_calibrate_cli_stores_or_only_reports_and_refuses_other_models(compose, tiny_folders, tmp_path):
    from degrade_lab.tasks.train import train
    from degrade_lab.utils.checkpoint import load_model
    from test_cli import cli, last_line
    from test_ludvae import TINY

    cfg = compose("train", [*TINY, "trainer.max_steps=2", "calibrate=false", f"data.source={tiny_folders / 'source'}",
                            f"data.target={tiny_folders / 'target'}"])
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert load_model(ckpt)[0].calibration is None  # calibrate=false: left alone
    before = ckpt.read_bytes()
    run = last_line(cli("calibrate", f"ckpt={ckpt}", "store=false", "progress=false", "range=[5,40]"))
    result = json.loads((run / "calibration.json").read_text())
    assert ckpt.read_bytes() == before and 5 <= result["value"] <= 40 and len(result["tried"]) == 15
    assert result["option"] == "noise_level"
    assert result["source"] == str(tiny_folders / "source")  # the run's own folders
    assert "No clean / degraded pair was used" in (run / "results.md").read_text()
    last_line(cli("calibrate", f"ckpt={ckpt}", "progress=false", "range=[5,40]"))
    assert load_model(ckpt)[0].calibration["value"] == result["value"]  # same search, now stored
    dncnn = compose("train", ["experiment=dncnn_cpu", "model.net.channels=4", "model.net.depth=3", "data=folders",
                              f"data.paired={tiny_folders / 'test'}", "data.crop_size=16", "data.batch_size=2",
                              "trainer.max_steps=1", "callbacks.progress.refresh_rate=0"])
    train(dncnn)
    refused = cli("calibrate", f"ckpt={Path(dncnn.paths.output_dir) / 'checkpoints' / 'last.ckpt'}")
    assert refused.returncode == 2 and "nothing to calibrate" in refused.stderr


def test_noise_match_scores_synthetic_noise_against_the_folders():
    from degrade_lab.metrics.noise_match import NoiseMatch

    reference = pooled_noise(((str(i), image) for i, image in enumerate(_images(6, 20.0, 1, 128))), 6)
    metric = NoiseMatch(reference)
    for sigma, ratio in ((20.0, 1.0), (10.0, 0.5)):
        metric.update(torch.stack(_images(6, sigma, 7, 128)))
        scores = metric.compute()
        metric.reset()
        assert float(scores["noise_ratio"]) == pytest.approx(ratio, rel=0.05)
        assert float(scores["noise_distance"]) == pytest.approx(math.log(ratio) ** 2, abs=0.02)


def test_noise_match_by_the_residual_is_the_squared_log_ratio_of_per_pixel_stds():
    """``statistic="residual"`` (DeFlow's validation): the std of synthetic - clean over the folder's per-pixel
    std, whatever the clean images' texture and a colour shift (each image's channel means are removed)."""
    from degrade_lab.metrics.noise_match import NoiseMatch

    reference = {"sigma_by_scale": {"1": {"R": 16.0, "G": 16.0, "B": 16.0}, "2": {"R": 20.0, "G": 20.0, "B": 20.0}}}
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 3, 64, 64, generator=generator) * 0.5 + 0.25  # textured: the blind reading would fail
    shift = torch.tensor([0.02, -0.01, 0.0])[:, None, None]
    metric = NoiseMatch(reference, statistic="residual")
    for half in clean.split(2):  # two validation batches
        metric.update(half + shift + torch.randn(half.shape, generator=generator) * 10 / 255, half)
    scores = metric.compute()
    assert float(scores["noise_ratio"]) == pytest.approx(0.5, rel=0.02)  # 10 against max(16, 20)
    assert float(scores["noise_distance"]) == pytest.approx(math.log(0.5) ** 2, rel=0.06)
    with pytest.raises(ValueError, match="needs the clean images"):
        metric.update(clean)
    with pytest.raises(ValueError, match="statistic must be one of"):
        NoiseMatch(reference, statistic="histogram")


def test_noise_match_by_the_residual_reading_reads_past_the_texture():
    """``statistic="residual_reading"``: the blind reading of the residual laid over the blurred clean images, so
    textured clean images plus white noise of std 20 read 20 against a folder reading 20 (ratio 1), where the
    reading of the synthetic images themselves counts the texture too."""
    from degrade_lab.metrics.noise_match import NoiseMatch

    reference = pooled_noise(((str(i), image) for i, image in enumerate(_images(4, 20.0, 1, 96))), 4)
    clean = torch.stack(_images(4, 15.0, 3, 96))  # a frozen white texture of std 15
    synthetic = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(4)) * 20 / 255
    by_field, by_reading = NoiseMatch(reference, statistic="residual_reading"), NoiseMatch(reference)
    for half, fake in zip(clean.split(2), synthetic.split(2), strict=True):
        by_field.update(fake, half)
        by_reading.update(fake)
    assert float(by_field.compute()["noise_ratio"]) == pytest.approx(1, abs=0.06)
    assert float(by_reading.compute()["noise_ratio"]) == pytest.approx(25 / 20, rel=0.08)
    with pytest.raises(ValueError, match="needs the clean images"):
        by_field.update(synthetic)


def test_without_validation_pairs_best_ckpt_follows_the_noise_match(compose, tiny_folders):
    from degrade_lab.tasks.train import train
    from test_ludvae import TINY

    cfg = compose("train", [*TINY, "calibrate=false", f"data.source={tiny_folders / 'source'}",
                            f"data.target={tiny_folders / 'target'}", "data.test=null"])
    metrics = train(cfg)
    assert {"val/noise_distance", "val/noise_ratio", "val/noise_distance_best"} <= set(metrics)
    assert "val/akld" not in metrics and metrics["optimized"] == metrics["val/noise_distance_best"]
    run = Path(cfg.paths.output_dir)
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert "val/noise_distance" in (run / "csv" / "metrics.csv").read_text()
