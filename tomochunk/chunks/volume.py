"""Dispatch a slab kernel over numpy, Dask or xarray volumes (one thin layer for every filter)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

import dask.array as da
import numpy as np
import xarray as xr

from ..errors import ConfigError, InputError
from .halo import Slab, map_z_halo
from .source import ZarrSource

__all__ = ["Volume", "apply_kernel", "check_volume"]

#: A volume ``(z, y, x)``: in memory, lazy, labelled, or a store variable read per task.
Volume = np.ndarray | da.Array | xr.DataArray | ZarrSource


def check_volume(vol: Any, what: str = "volume") -> tuple[int, int, int]:
    """Return the ``(z, y, x)`` shape of ``vol``; raise :class:`InputError` if it is not 3D."""
    if not isinstance(vol, np.ndarray | da.Array | xr.DataArray | ZarrSource):
        raise InputError(
            f"{what} must be a numpy array, a Dask array, an xarray.DataArray or a "
            f"ZarrSource, got {type(vol).__name__}"
        )
    if vol.ndim != 3:
        raise InputError(
            f"{what} must be 3D (z, y, x), got shape {tuple(vol.shape)}; select one volume "
            "first (e.g. recon.full or recon.split[0])"
        )
    if min(vol.shape) < 1:
        raise InputError(f"{what} is empty: shape {tuple(vol.shape)}")
    n_z, n_y, n_x = (int(n) for n in vol.shape)
    return n_z, n_y, n_x


def _check_chunk_z(chunk_z: int | None) -> None:
    if chunk_z is not None and (not isinstance(chunk_z, int | np.integer) or chunk_z < 1):
        raise ConfigError(f"chunk_z must be a positive integer number of slices, got {chunk_z!r}")


_Kernel = Callable[..., np.ndarray]


@overload
def apply_kernel(vol: np.ndarray, kernel: _Kernel, *, halo: int, chunk_z: int | None,
                 params: Mapping[str, Any], name: str,
                 attrs: Mapping[str, Any] | None = None) -> np.ndarray: ...
@overload
def apply_kernel(vol: da.Array | ZarrSource, kernel: _Kernel, *, halo: int, chunk_z: int | None,
                 params: Mapping[str, Any], name: str,
                 attrs: Mapping[str, Any] | None = None) -> da.Array: ...
@overload
def apply_kernel(vol: xr.DataArray, kernel: _Kernel, *, halo: int, chunk_z: int | None,
                 params: Mapping[str, Any], name: str,
                 attrs: Mapping[str, Any] | None = None) -> xr.DataArray: ...
def apply_kernel(
    vol: Volume,
    kernel: Callable[..., np.ndarray],
    *,
    halo: int,
    chunk_z: int | None,
    params: Mapping[str, Any],
    name: str,
    attrs: Mapping[str, Any] | None = None,
) -> Volume:
    """Run ``kernel(slab, info, **params)`` on ``vol`` and return the same kind of object.

    numpy in, numpy out: one call on the whole volume when ``chunk_z`` is None, else the
    chunked Dask path computed at once. Dask in: lazy Dask out (``chunk_z`` defaults to the
    first z-chunk). DataArray in: DataArray out, same dims and coords, named ``name``.
    :class:`ZarrSource` in: lazy Dask out whose tasks read their own slabs (``chunk_z``
    defaults to 16).
    """
    _check_chunk_z(chunk_z)
    if isinstance(vol, ZarrSource):
        return map_z_halo(kernel, vol, halo=halo, chunk_z=chunk_z or 16, dtype=np.float32,
                          extra=params, name=name)
    if isinstance(vol, xr.DataArray):
        data = apply_kernel(vol.data, kernel, halo=halo, chunk_z=chunk_z, params=params,
                            name=name)
        return xr.DataArray(data, dims=vol.dims, coords=vol.coords, name=name,
                            attrs={**vol.attrs, **dict(attrs or {})})
    if isinstance(vol, np.ndarray):
        if chunk_z is None:
            n_z = vol.shape[0]
            return np.asarray(kernel(vol, Slab(0, n_z, 0, n_z, n_z), **params), dtype=np.float32)
        lazy = apply_kernel(da.from_array(vol, chunks=(chunk_z, -1, -1)), kernel, halo=halo,
                            chunk_z=chunk_z, params=params, name=name)
        out: np.ndarray = lazy.compute()
        return out
    arr = vol
    if chunk_z is None:
        chunk_z = int(arr.chunks[0][0])
    if len(arr.chunks[1]) > 1 or len(arr.chunks[2]) > 1:
        arr = arr.rechunk({1: -1, 2: -1})  # whole slices: per-slice estimates stay exact
    return map_z_halo(kernel, arr, halo=halo, chunk_z=chunk_z, dtype=np.float32, extra=params,
                      name=name)
