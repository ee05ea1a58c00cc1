"""Degrader statistics, determinism, and MATLAB-compatible bicubic resizing."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from degrade_lab.degradations.base import Degrader, Identity
from degrade_lab.degradations.blur import GaussianBlur, gaussian_kernels
from degrade_lab.degradations.build import available_degraders, build_degrader, is_learned
from degrade_lab.degradations.camera import CameraPipeline
from degrade_lab.degradations.compose import Compose
from degrade_lab.degradations.jpeg import JPEG
from degrade_lab.degradations.lowlight import LowLight
from degrade_lab.degradations.noise import AWGN, PoissonGaussian
from degrade_lab.degradations.resize import Bicubic, imresize
from degrade_lab.degradations.second_order import SecondOrder
from matlab_imresize_reference import imresize as matlab_imresize


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def flat(value=0.5, batch=4, size=64):
    return torch.full((batch, 3, size, size), value)


def test_awgn_fixed_sigma_std():
    out = AWGN(sigma=25, clip=False)(flat(), gen())
    assert abs((out - 0.5).std().item() * 255 - 25) < 0.5


def test_awgn_range_is_drawn_per_image():
    out = AWGN(sigma=[5, 50], clip=False)(flat(batch=32), gen())
    stds = (out - 0.5).flatten(1).std(dim=1) * 255
    assert stds.min() >= 4.5 and stds.max() <= 51
    assert stds.std() > 5  # not one sigma for the whole batch


def test_determinism_per_seed_and_difference_across_seeds():
    for degrader in (AWGN(), PoissonGaussian(), CameraPipeline(), JPEG(), GaussianBlur(anisotropic=True),
                     LowLight(), SecondOrder(scale=2)):
        x = torch.rand(2, 3, 64, 64, generator=gen(5))
        a, b, c = degrader(x, gen(1)), degrader(x, gen(1)), degrader(x, gen(2))
        assert torch.equal(a, b), type(degrader).__name__
        assert not torch.equal(a, c), type(degrader).__name__


def test_poisson_gaussian_variance_is_linear_in_signal():
    shot, read = 0.02, 1e-3
    levels = torch.tensor([0.1, 0.3, 0.6, 0.9])
    clean = levels.view(4, 1, 1, 1).expand(4, 3, 128, 128).contiguous()
    noisy = PoissonGaussian(shot=shot, read=read, clip=False)(clean, gen())
    variance = (noisy - clean).flatten(1).var(dim=1)
    slope, intercept = np.polyfit(levels.numpy(), variance.numpy(), 1)
    assert slope == pytest.approx(shot, rel=0.1)
    assert intercept == pytest.approx(read, abs=5e-4)


def test_jpeg_quality_controls_size_and_blockiness():
    x = torch.rand(1, 3, 64, 64, generator=gen())
    errors = [float((JPEG(quality=q)(x, gen()) - x).abs().mean()) for q in (10, 50, 95)]
    assert errors[0] > errors[1] > errors[2]

    # blockiness: jumps across 8x8 block borders exceed jumps inside blocks at low quality
    smooth = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64).contiguous()
    smooth = smooth * torch.linspace(0.2, 1, 64).view(1, 1, 64, 1)
    out = JPEG(quality=5)(smooth, gen())
    diff = (out[..., 1:] - out[..., :-1]).abs().mean(dim=(0, 1, 2))
    at_borders = diff[7::8].mean()
    inside = torch.cat([diff[i::8] for i in range(7)]).mean()
    assert at_borders > 1.5 * inside

    def size(q):
        buffer = io.BytesIO()
        Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(buffer, "JPEG", quality=q)
        return len(buffer.getvalue())

    assert size(10) < size(90)


def test_bicubic_matches_matlab_reference():
    rng = np.random.default_rng(0)
    image = rng.random((37, 52, 3))
    for scale in (0.25, 0.5, 2.0):
        ref = matlab_imresize(image, scale)
        out = imresize(torch.from_numpy(image).permute(2, 0, 1), scale).permute(1, 2, 0).numpy()
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() < 1e-6


def test_bicubic_checked_in_values():
    # imresize(reshape(0:15, 4, 4)' / 15, 0.5) by MATLAB's algorithm (tests/matlab_imresize_reference.py);
    # checked in so that a change of either implementation shows up. The ramp is antisymmetric about
    # its centre, so opposite corners sum to 1, and the mirrored border pulls values towards the edge.
    ramp = (torch.arange(16, dtype=torch.float64).view(4, 4) / 15)[None]
    out = imresize(ramp, 0.5)[0]
    expected = torch.tensor([[0.15357, 0.29216], [0.70784, 0.84643]], dtype=torch.float64)
    assert torch.allclose(out, expected, atol=1e-4)
    assert Bicubic(scale=4)(torch.rand(2, 3, 32, 32), gen()).shape == (2, 3, 8, 8)


def test_bicubic_reproduces_a_ramp_at_matlab_sample_positions():
    scale = 0.25
    ramp = torch.arange(64, dtype=torch.float64).view(1, 64).expand(64, 64)[None]
    out = imresize(ramp, scale)[0, 0]
    x = torch.arange(1, 17, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    interior = slice(3, 13)
    assert torch.allclose(out[interior], (u - 1)[interior], atol=1e-9)
    constant = imresize(torch.full((1, 3, 20, 28), 0.37), scale)
    assert torch.allclose(constant, torch.full_like(constant, 0.37), atol=1e-6)


def test_blur_kernels_are_normalised_and_isotropic_variance_matches():
    kernels = gaussian_kernels(torch.tensor([1.5]), torch.tensor([1.5]), torch.tensor([0.0]), 21)
    assert float(kernels.sum()) == pytest.approx(1.0, abs=1e-5)
    grid = torch.arange(21.0) - 10
    variance = float((kernels[0].sum(0) * grid**2).sum())
    assert variance == pytest.approx(1.5**2, rel=1e-3)
    aniso = GaussianBlur(sigma=[0.5, 4], anisotropic=True).sample_kernels(8, gen(), "cpu")
    assert not torch.allclose(aniso, aniso.transpose(1, 2))  # rotated, non-symmetric kernels
    out = GaussianBlur(sigma=2.0)(flat(0.3), gen())
    assert torch.allclose(out, flat(0.3), atol=1e-5)  # blurring a constant changes nothing


def test_lowlight_formula():
    x = torch.rand(3, 3, 8, 8, generator=gen())
    out = LowLight(c=0.2, gamma=2.0)(x, gen())
    assert torch.allclose(out, 0.2 * x**2)


def test_camera_noise_is_spatially_correlated_and_signal_dependent():
    clean = torch.cat([flat(0.2, 2, 96), flat(0.7, 2, 96)])
    noise = CameraPipeline(shot=0.01, read=1e-4, quality=None)(clean, gen()) - clean
    n = noise[:2]
    neighbour_corr = float(torch.corrcoef(torch.stack([n[..., :-1].flatten(), n[..., 1:].flatten()]))[0, 1])
    channel_corr = float(torch.corrcoef(torch.stack([n[:, 0].flatten(), n[:, 1].flatten()]))[0, 1])
    assert neighbour_corr > 0.2 and abs(channel_corr) > 0.1
    awgn = AWGN(25, clip=False)(flat(0.5, 2, 96), gen()) - 0.5
    assert abs(float(torch.corrcoef(torch.stack([awgn[..., :-1].flatten(), awgn[..., 1:].flatten()]))[0, 1])) < 0.05
    assert noise[2:].std() != pytest.approx(float(noise[:2].std()), rel=0.05)


def test_second_order_and_compose_scale():
    out = SecondOrder(scale=4)(torch.rand(2, 3, 64, 64, generator=gen()), gen())
    assert out.shape == (2, 3, 16, 16) and 0 <= out.min() and out.max() <= 1
    composed = Compose([GaussianBlur(1.0), Bicubic(2), AWGN(5)])
    assert composed.scale == 2
    assert composed(torch.rand(1, 3, 32, 32), gen()).shape == (1, 3, 16, 16)


def test_learned_degraders_are_found_from_their_configs():
    learned = {name for name in available_degraders() if is_learned(name)}
    assert {"ludvae", "senmvae"} <= learned and not learned & {"awgn", "camera", "jpeg", "bicubic", "identity"}


def test_every_degrader_config_builds_a_degrader():
    names = available_degraders()
    assert {"awgn", "camera", "jpeg", "bicubic", "identity", "second_order", "lowlight"} <= set(names)
    for name in names:
        if is_learned(name):  # the degrader of a trained model: needs its checkpoint (its own tests)
            continue
        degrader = build_degrader(name)
        assert isinstance(degrader, Degrader)
        out = degrader(torch.rand(1, 3, 32, 32, generator=gen()), gen())
        assert out.shape[-1] == 32 // degrader.scale
    assert isinstance(build_degrader({"_target_": "degrade_lab.degradations.base.Identity"}), Identity)


def test_unknown_degrader_lists_the_choices():
    from degrade_lab.errors import UserInputError

    with pytest.raises(UserInputError, match="camera"):
        build_degrader("no_such_degrader")


def test_degraders_keep_range_and_awgn_works_in_bfloat16():
    x = torch.rand(2, 3, 32, 32, generator=gen())
    for degrader in (AWGN(), CameraPipeline(quality=None), GaussianBlur()):
        out = degrader(x, gen())
        assert 0 <= float(out.min()) and float(out.max()) <= 1 + 1e-6
    noisy = AWGN(25, clip=False)(flat(0.5).bfloat16(), gen())
    assert noisy.dtype == torch.bfloat16
    assert float((noisy.float() - 0.5).std()) * 255 == pytest.approx(25, rel=0.05)


def test_a_share_of_anisotropic_kernels_mixes_both_kinds():
    """VDIR's single SR model: anisotropic=0.5 gives about half the images an anisotropic kernel; isotropic ones
    are symmetric under a transpose, anisotropic ones (almost surely) not."""

    def symmetric(kernels):
        return (kernels - kernels.transpose(1, 2)).abs().flatten(1).amax(dim=1) < 1e-6

    cpu = torch.device("cpu")
    kernels = GaussianBlur(sigma=(0.5, 3.0), anisotropic=0.5, kernel_size=15).sample_kernels(
        400, torch.Generator().manual_seed(0), cpu)
    assert kernels.shape == (400, 15, 15) and torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(400))
    assert 0.4 < float(symmetric(kernels).float().mean()) < 0.6
    assert not symmetric(GaussianBlur(anisotropic=True).sample_kernels(50, torch.Generator().manual_seed(1), cpu)).any()
    assert symmetric(GaussianBlur(anisotropic=False).sample_kernels(50, torch.Generator().manual_seed(1), cpu)).all()
    with pytest.raises(ValueError, match="share"):
        GaussianBlur(anisotropic=1.5)


def test_the_fixed_anisotropic_test_kernel_is_the_rotated_gaussian():
    """VDIR's g_ani (widths 4.0 / 1.0, -0.5 rad, 15 x 15) against the closed form evaluated here."""
    kernel = GaussianBlur(axes=(4.0, 1.0), theta=-0.5, kernel_size=15).sample_kernels(2, None, torch.device("cpu"))
    y, x = np.mgrid[-7:8, -7:8].astype(np.float64)
    u, v = np.cos(-0.5) * x + np.sin(-0.5) * y, -np.sin(-0.5) * x + np.cos(-0.5) * y
    expected = np.exp(-0.5 * ((u / 4.0) ** 2 + (v / 1.0) ** 2))
    expected /= expected.sum()
    assert torch.allclose(kernel[1], torch.from_numpy(expected).float(), atol=1e-6)
    assert build_degrader("blur_gani_decimate")(torch.rand(1, 3, 32, 32), gen()).shape[-1] == 16
