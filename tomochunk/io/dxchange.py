"""Reader of APS Data Exchange (DXchange) HDF5 scans.

Layout (De Carlo et al., "Scientific data exchange: a schema for HDF5-based storage of raw and
analyzed data", J. Synchrotron Rad. 21 (2014) 1224-1230): ``/exchange/data`` holds the
projections ``(theta, y, x)``, ``/exchange/data_white`` the flat fields,
``/exchange/data_dark`` the dark fields and ``/exchange/theta`` the rotation angles, in
degrees when its ``units`` attribute says so or, without the attribute, when they span more
than 2*pi. Rows are read as hyperslabs straight from the file, one block at a time.
Files that keep these datasets under other names are read by setting the reader's parameters
(:class:`DXchangeParams`): ``ingest: {dxchange: {data: /exchange/data_raw}}`` in a config,
``--set ingest.dxchange.data=/exchange/data_raw`` on the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..runtime.logs import get_logger
from .readers import (
    READERS,
    ArraySpec,
    ScanLayout,
    ScanReader,
    angles_to_radians,
    check_hdf5_path,
    hdf5_listing,
    length_to_um,
    open_hdf5,
)

__all__ = ["DXchangeReader", "DXchangeParams", "HDF5_SUFFIXES", "sniff_hdf5"]

log = get_logger("io.dxchange")

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".cxi")


def sniff_hdf5(path: Path, predicate: Callable[[Any], bool]) -> bool:
    """True when ``path`` is an HDF5 file (by suffix) that opens and satisfies ``predicate``.

    Format sniffing never raises: an unreadable file is simply not this format.
    """
    import h5py

    if not path.is_file() or path.suffix.lower() not in HDF5_SUFFIXES:
        return False
    try:
        with h5py.File(path, "r") as f:
            return bool(predicate(f))
    except Exception:  # noqa: BLE001 - sniffing never raises
        return False

DATA = "/exchange/data"
WHITE = "/exchange/data_white"
DARK = "/exchange/data_dark"
THETA = "/exchange/theta"
#: Where DXchange writers put the detector pixel size, first match wins.
PIXEL_SIZE = (
    "/measurement/instrument/detector/actual_pixel_size_x",
    "/measurement/instrument/detector/pixel_size_x",
    "/measurement/instrument/detector/x_pixel_size",
    "/measurement/instrument/detector/pixel_size",
)


@dataclass(frozen=True)
class DXchangeParams:
    """Where a DXchange file keeps its datasets (HDF5 paths from the file's root).

    Attributes
    ----------
    data : str
        The projections ``(theta, y, x)``.
    flat : str
        The flat (white) fields; optional in the file.
    dark : str
        The dark fields; optional in the file.
    theta : str
        The rotation angles (unless ``ingest.angles`` gives them).
    """

    data: str = DATA
    flat: str = WHITE
    dark: str = DARK
    theta: str = THETA

    def __post_init__(self) -> None:
        for f in fields(self):
            check_hdf5_path(f"ingest.dxchange.{f.name}", getattr(self, f.name), absolute=True,
                            example=str(f.default))


def _missing(path: Path, dset: str, what: str, key: str, listing: str, fix: str = "") -> str:
    """The one-line message of a dataset the file lacks: where, which key to set."""
    return (f"{path}: the DXchange dataset {dset} ({what}) is missing; the file holds: "
            f"{listing}. Set ingest.{key} to its path (--set ingest.{key}=PATH){fix}")


@READERS.register
class DXchangeReader(ScanReader):
    """A DXchange HDF5 file, read by hyperslabs of detector rows.

    Flats and darks are optional (a warning says when they are missing); the angles are
    required unless ``config.angles`` gives them. The dataset paths are the reader's
    parameters (:class:`DXchangeParams`); a flat or dark path that was set explicitly must
    exist.
    """

    format = "dxchange"
    description = "DXchange HDF5 (/exchange/data, data_white, data_dark, theta)"
    requires = "h5py"
    Params = DXchangeParams
    priority = 20

    @classmethod
    def sniff(cls, path: Path) -> bool:
        import h5py

        return sniff_hdf5(path, lambda f: isinstance(f.get(DATA), h5py.Dataset))

    def _open(self) -> ScanLayout:
        import h5py

        path = Path(self.source)
        self._h5 = f = open_hdf5(path)
        p: DXchangeParams = self.options
        data = f.get(p.data)
        if not isinstance(data, h5py.Dataset):
            raise InputError(_missing(path, p.data, "projections", "dxchange.data",
                                      hdf5_listing(f), ", or is it another layout (try "
                                      "--format nexus)?"))
        if data.ndim != 3:
            raise InputError(f"{path}{p.data}: projections must be 3-D (theta, y, x), got shape "
                             f"{data.shape}")
        self._dsets: dict[str, Any] = {"projections": data}
        specs: dict[str, ArraySpec] = {}
        paths = (("flat", p.flat), ("dark", p.dark))
        missing = [(name, key) for name, key in paths if f.get(key) is None]
        for name, key in missing:
            if key != getattr(DXchangeParams, name):  # set explicitly: it must be there
                raise InputError(_missing(path, key, f"{name} fields", f"dxchange.{name}",
                                          hdf5_listing(f)))
        if len(missing) == 1:  # without both, ingest's value check says what that means
            log.warning("%s: no %s (%s fields); the projections are stored as they are",
                        path, missing[0][1], missing[0][0])
        for name, key in paths:
            d = f.get(key)
            if d is None:
                continue
            if not isinstance(d, h5py.Dataset) or d.ndim not in (2, 3):
                raise InputError(f"{path}{key}: {name} fields must be a 2-D or 3-D dataset, got "
                                 f"{getattr(d, 'shape', type(d).__name__)}")
            shape = (1, *d.shape) if d.ndim == 2 else tuple(d.shape)
            if shape[0] == 0:
                log.warning("%s: %s holds no frames; ignored", path, key)
                continue
            self._dsets[name] = d
            specs[name] = ArraySpec(shape, np.dtype(d.dtype))  # type: ignore[arg-type]

        n = int(data.shape[0])
        note = ""
        override = self._angles_override(n)
        if override is not None:
            theta, note = override
        else:
            t = f.get(p.theta)
            if not isinstance(t, h5py.Dataset):
                raise InputError(_missing(path, p.theta, "rotation angles", "dxchange.theta",
                                          hdf5_listing(f), ", or give the angles with "
                                          "--angles FILE"))
            theta = angles_to_radians(np.asarray(t[()]).ravel(), unit=self.config.angles_unit,
                                      unit_attr=t.attrs.get("units"), what=f"{path}{p.theta}")
        return ScanLayout(
            projections=ArraySpec(tuple(int(s) for s in data.shape),  # type: ignore[arg-type]
                                  np.dtype(data.dtype)),
            theta=theta,
            flat=specs.get("flat"),
            dark=specs.get("dark"),
            pixel_size_um=self._pixel_size(),
            source=str(path.resolve()),
            attrs={"angle_layout": note} if note else {},
        )

    def _pixel_size(self) -> float | None:
        import h5py

        for key in PIXEL_SIZE:
            d = self._h5.get(key)
            if isinstance(d, h5py.Dataset) and d.size >= 1:
                try:
                    value = float(np.asarray(d[()]).ravel()[0])
                except (TypeError, ValueError):
                    continue
                if np.isfinite(value) and value > 0:
                    return length_to_um(value, d.attrs.get("units"))
        return None

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        out = {}
        for name, d in self._dsets.items():
            out[name] = d[start:stop, :][None] if d.ndim == 2 else d[:, start:stop, :]
        return out

    def close(self) -> None:
        h5 = getattr(self, "_h5", None)
        if h5 is not None:
            h5.close()
            self._h5 = None
