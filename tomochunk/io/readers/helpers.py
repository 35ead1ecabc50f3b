"""Small helpers shared by the readers: units of length, file lists, stacks, HDF5 access."""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ...registry import ParamRangeError
from ...runtime.logs import get_logger
from .angles import _text
from .base import ArraySpec

__all__ = ["length_to_um", "natural_key", "expand_paths", "open_hdf5", "hdf5_listing",
           "check_hdf5_path"]

log = get_logger("io.readers")

_LENGTH_UM = {
    "m": 1e6, "meter": 1e6, "metre": 1e6, "meters": 1e6, "metres": 1e6,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "micrometers": 1.0, "micrometres": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
}


# ---------------------------------------------------------------------------------------
# small shared helpers


def length_to_um(value: float, units: Any = None) -> float:
    """A detector length in micrometres from a value and its units attribute.

    Without units, values below 0.01 are taken as metres (no detector pixel is 10 nm) and
    others as micrometres.
    """
    value = float(value)
    if units is not None:
        key = _text(units).lower()
        if key in _LENGTH_UM:
            return value * _LENGTH_UM[key]
        log.warning("unknown length unit %r for the pixel size; assuming micrometres", key)
        return value
    return value * 1e6 if value < 1e-2 else value


def natural_key(path: Path) -> list[Any]:
    """Sort key ordering ``raw_2`` before ``raw_10`` (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def expand_paths(spec: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files named by ``spec``: a file, a folder (its files with ``suffixes``) or a glob.

    The result is sorted naturally; an empty result raises :class:`InputError`.
    """
    path = Path(spec)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    else:
        files = [Path(p) for p in glob.glob(str(spec)) if Path(p).is_file()]
    if not files:
        raise InputError(f"{spec} names no file (expected a file, a folder of "
                         f"{'/'.join(suffixes)} files, or a glob pattern)")
    return sorted(files, key=natural_key)


def _as_stack(arr: Any, name: str, what: str) -> Any:
    """A 3-D ``(frames, rows, cols)`` view of a flat/dark array (2-D gets one frame)."""
    ndim = getattr(arr, "ndim", None)
    if ndim == 2:
        return arr[None]
    if ndim != 3:
        raise InputError(f"{what}: {name} must be 2-D (rows, cols) or 3-D (frames, rows, cols), "
                         f"got shape {getattr(arr, 'shape', None)}")
    return arr


def _spec(arr: Any) -> ArraySpec:
    return ArraySpec(tuple(int(s) for s in arr.shape), np.dtype(arr.dtype))  # type: ignore[arg-type]




def _load_npy(path: Path, name: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read as a .npy array of {name}: {exc}") from exc


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (numpy scalars and arrays converted), or None."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        items = [_jsonable(v) for v in value]
        return None if any(i is None for i in items) else items
    if isinstance(value, dict):
        entries = {str(k): _jsonable(v) for k, v in value.items()}
        return None if any(i is None for i in entries.values()) else entries
    return None


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None




# ---------------------------------------------------------------------------------------
# HDF5 helpers shared by the DXchange and NeXus readers


def open_hdf5(path: Path) -> Any:
    """Open an HDF5 file read-only; raise :class:`InputError` when it is not one."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path} cannot be opened as an HDF5 file ({exc}); is it complete, "
                         "and is --format right?") from exc


def hdf5_listing(h5: Any, limit: int = 40) -> str:
    """A one-line listing of the datasets of an open HDF5 file (for error messages)."""
    import h5py

    items: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            items.append(f"/{name} {tuple(obj.shape)}")

    h5.visititems(visit)
    if not items:
        return "no datasets"
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_hdf5_path(key: str, value: Any, *, absolute: bool, example: str) -> None:
    """Check a reader parameter that names an HDF5 object (``ingest.dxchange.data``, ...).

    Parameters
    ----------
    key : str
        The parameter as a config key, for the message.
    value : str
        The path: absolute (from the file's root, ``/exchange/data``) when ``absolute``,
        else relative to a group (``instrument/detector/data``).
    example : str
        A valid value, quoted in the message.

    Raises
    ------
    ParamRangeError
        One line naming the key, the value and the form it must take.
    """
    if not isinstance(value, str) or not value.strip("/"):
        problem = "must be a non-empty HDF5 path"
    elif absolute and not value.startswith("/"):
        problem = "must be an HDF5 path from the file's root, starting with '/'"
    elif not absolute and value.startswith("/"):
        problem = "must be an HDF5 path relative to the NXtomo entry (no leading '/')"
    else:
        return
    raise ParamRangeError(f"{key} {problem} (got {value!r}); e.g. {key.rpartition('.')[2]}: "
                          f"{example}", param=key.rpartition(".")[2], rule=problem, value=value)
