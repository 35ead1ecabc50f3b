"""The two in-memory readers: an :class:`xarray.Dataset` and a ``.npy`` file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from .angles import angles_to_radians
from .base import READERS, ScanLayout, ScanReader
from .helpers import _as_stack, _jsonable, _load_npy, _opt_float, _spec, expand_paths

__all__ = ["DatasetReader", "NpyReader"]

# ---------------------------------------------------------------------------------------
# in-memory and .npy readers


@READERS.register
class DatasetReader(ScanReader):
    """An :class:`xarray.Dataset` with ``projections(angle,row,col)``, ``theta(angle)`` in
    radians (unless its ``units`` attribute says degrees), optional ``flat`` and ``dark``.

    Dask-backed variables are read block by block, so a lazy dataset streams too. It has no
    parameters.
    """

    format = "xarray"
    description = "an in-memory xarray.Dataset (projections, theta)"

    def _open(self) -> ScanLayout:
        ds = self.source
        what = "input dataset"
        if "projections" not in ds.variables:
            raise InputError(
                f"{what} has no variable 'projections'; it holds {sorted(map(str, ds.variables))}."
                " Build it with tomochunk.from_arrays(projections, theta, flat, dark)"
            )
        proj = ds["projections"]
        if proj.dims != ("angle", "row", "col"):
            raise InputError(f"{what}: projections must have dims ('angle', 'row', 'col'), got "
                             f"{proj.dims}; use tomochunk.from_arrays to build the dataset")
        if "theta" not in ds.variables:
            raise InputError(f"{what} has no coordinate 'theta' (one angle per projection, "
                             "radians); build it with tomochunk.from_arrays(projections, theta)")
        for name in ("flat", "dark"):
            if name in ds.variables and ds[name].dims != (name, "row", "col"):
                raise InputError(f"{what}: {name} must have dims ('{name}', 'row', 'col'), got "
                                 f"{ds[name].dims}")
        theta = angles_to_radians(
            np.asarray(ds["theta"].values).ravel(), unit=self.config.angles_unit,
            unit_attr=ds["theta"].attrs.get("units"), default="rad", what=f"{what} theta")
        override = self._angles_override(proj.shape[0])
        note = ""
        if override is not None:
            theta, note = override
        # keep the dataset's own metadata (e.g. a phantom's spec), minus stage markers
        attrs = {k: _jsonable(v) for k, v in ds.attrs.items()
                 if not str(k).startswith("tomochunk_") and _jsonable(v) is not None}
        if note:
            attrs["angle_layout"] = note
        return ScanLayout(
            projections=_spec(proj),
            theta=theta,
            flat=_spec(ds["flat"]) if "flat" in ds.variables else None,
            dark=_spec(ds["dark"]) if "dark" in ds.variables else None,
            pixel_size_um=_opt_float(ds.attrs.get("pixel_size_um")),
            source=str(ds.attrs.get("source", "xarray.Dataset")),
            attrs=attrs,
        )

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        ds = self.source
        return {
            name: np.asarray(ds[name].isel(row=slice(start, stop)).values)
            for name in self.layout.variables()
        }


@READERS.register
class NpyReader(ScanReader):
    """A ``.npy`` file of projections ``(angle, row, col)``, memory-mapped.

    The angles come from ``config.angles``; flats and darks, when any, from ``config.flats``
    and ``config.darks`` (``.npy`` files, 2-D or 3-D). Without them the projections are
    taken as already normalised. It has no parameters.
    """

    format = "numpy"
    description = ".npy projections (angle,row,col) with --angles"
    priority = 40

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".npy"

    def _open(self) -> ScanLayout:
        path = Path(self.source)
        self._arrays = {"projections": _load_npy(path, "projections")}
        proj = self._arrays["projections"]
        if proj.ndim != 3:
            raise InputError(f"{path}: projections must be 3-D (angle, row, col), got shape "
                             f"{proj.shape}")
        for name in ("flat", "dark"):
            spec = getattr(self.config, f"{name}s")
            if spec is not None:
                files = expand_paths(spec, (".npy",))
                if len(files) != 1:
                    raise InputError(f"{spec}: give one .npy file of {name} fields, found "
                                     f"{len(files)}")
                self._arrays[name] = _as_stack(_load_npy(files[0], name), name, str(files[0]))
        override = self._angles_override(proj.shape[0])
        if override is None:
            raise InputError(
                f"{path} holds only projections; give their angles with --angles FILE "
                "(one angle per line)"
            )
        theta, note = override
        return ScanLayout(
            projections=_spec(proj),
            theta=theta,
            flat=_spec(self._arrays["flat"]) if "flat" in self._arrays else None,
            dark=_spec(self._arrays["dark"]) if "dark" in self._arrays else None,
            source=str(path.resolve()),
            attrs={"angle_layout": note} if note else {},
        )

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: np.array(arr[:, start:stop, :]) for name, arr in self._arrays.items()}

    def close(self) -> None:
        self._arrays = {}
