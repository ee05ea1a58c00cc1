"""Reading arrays from MATLAB ``.mat`` files as the denoising benchmarks ship them.

MATLAB writes two formats: v5 (what ``scipy.io.loadmat`` reads; SIDD's ``ValidationGtBlocksSrgb.mat``) and v7.3,
which is HDF5 (DND's ``info.mat`` and ``images_srgb/NNNN.mat``; read with ``h5py``, the ``datasets`` extra).
HDF5 stores MATLAB's column-major arrays with their axes reversed, so a v7.3 array is transposed here to the
shape MATLAB shows (``H x W x 3`` images, ``40 x 32 x 256 x 256 x 3`` blocks), the same for both formats.
No code in a ``.mat`` file runs: scipy and h5py read data only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from degrade_lab.errors import UserInputError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_v73(path: str | Path) -> bool:
    """True for a MATLAB v7.3 file (HDF5: its 512-byte MATLAB header is followed by the HDF5 signature)."""
    with open(path, "rb") as file:
        head = file.read(520)
    return head[512:520] == _HDF5_SIGNATURE or head[:8] == _HDF5_SIGNATURE


def import_h5py(path: Path):
    """h5py, or an error saying that the v7.3 file ``path`` needs it."""
    try:
        import h5py
    except ImportError as err:
        raise UserInputError(
            f"'{path}' is a MATLAB v7.3 (HDF5) file, which needs h5py: pip install 'degrade_lab[datasets]' "
            "(or pip install h5py)."
        ) from err
    return h5py


def _check_key(path: Path, key: str, names) -> None:
    if key not in names:
        raise UserInputError(f"'{path}' has no '{key}' (it holds: {', '.join(sorted(names)) or 'nothing'}).")


def mat_shape(path: str | Path, key: str) -> tuple[int, ...]:
    """The shape of ``key`` in MATLAB's axis order, read from the file's header without loading the data."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"MATLAB file '{path}' does not exist.")
    if is_v73(path):
        with import_h5py(path).File(path, "r") as file:
            _check_key(path, key, list(file.keys()))
            return tuple(reversed(file[key].shape))
    from scipy.io import whosmat

    shapes = {name: shape for name, shape, _ in whosmat(path)}
    _check_key(path, key, shapes)
    return tuple(shapes[key])


def read_mat(path: str | Path, key: str) -> np.ndarray:
    """The array stored under ``key`` in the ``.mat`` file ``path``, in MATLAB's axis order, either format.

    A missing file or key stops with an error naming the file and the keys it does hold."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"MATLAB file '{path}' does not exist.")
    if is_v73(path):
        h5py = import_h5py(path)
        with h5py.File(path, "r") as file:
            _check_key(path, key, list(file.keys()))
            value = file[key]
            if not isinstance(value, h5py.Dataset):
                raise UserInputError(f"'{path}': '{key}' is a MATLAB struct or group, not an array.")
            return np.asarray(value[()]).transpose()
    from scipy.io import loadmat, whosmat

    _check_key(path, key, [name for name, _, _ in whosmat(path)])
    return loadmat(path, variable_names=[key])[key]
