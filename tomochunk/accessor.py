"""The ``.tomo`` xarray accessors: filters and Noise2Inverse denoising as methods.

Importing this module registers them (``import tomochunk`` does)::

    rec = tc.open_recon("recon.zarr")
    med = rec.full.tomo.median(radius=2)          # lazy DataArray, same coords
    den = rec.tomo.denoise("model")               # Dataset with a ``split`` volume
    den = rec.split.tomo.denoise("model")         # or the ``split`` DataArray itself

Every method is a thin call of :mod:`tomochunk.filters` or :func:`tomochunk.inference.denoise`
(see those for the parameters, the exactness of chunking and the errors raised).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import xarray as xr

from .errors import InputError

__all__ = ["TomoDataArrayAccessor", "TomoDatasetAccessor"]


@xr.register_dataarray_accessor("tomo")
class TomoDataArrayAccessor:
    """``da.tomo``: baseline filters of a volume ``(z, y, x)``; denoising of ``split``."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def median(self, radius: int = 2, footprint: Literal["ball", "cube"] = "ball",
               chunk_z: int | None = None) -> xr.DataArray:
        """3D median filter (:func:`tomochunk.filters.median`)."""
        from .filters import median

        return median(self._obj, radius=radius, footprint=footprint, chunk_z=chunk_z)

    def nlm(self, patch_size: int = 3, patch_distance: int = 5, h: float = 0.8,
            sigma: float | None = None, chunk_z: int | None = None) -> xr.DataArray:
        """3D non-local means (:func:`tomochunk.filters.nlm`)."""
        from .filters import nlm

        return nlm(self._obj, patch_size=patch_size, patch_distance=patch_distance, h=h,
                   sigma=sigma, chunk_z=chunk_z)

    def iternlm(self, iterations: int = 4, patch_size: int = 3, patch_distance: int = 3,
                h: float = 0.8, sigma: float | None = None,
                chunk_z: int | None = None) -> xr.DataArray:
        """Iterative z-adaptive NLM (:func:`tomochunk.filters.iternlm`)."""
        from .filters import iternlm

        return iternlm(self._obj, iterations=iterations, patch_size=patch_size,
                       patch_distance=patch_distance, h=h, sigma=sigma, chunk_z=chunk_z)

    def denoise(self, model: Any, out: str | os.PathLike[str] | None = None,
                **kwargs: Any) -> xr.DataArray:
        """Denoise the ``split(split, z, y, x)`` volumes (:func:`tomochunk.inference.denoise`)."""
        from .inference import denoise

        if "split" not in self._obj.dims:
            raise InputError(
                f"denoise needs the split volumes (split, z, y, x); this DataArray "
                f"{self._obj.name!r} has dims {self._obj.dims}: use recon.split.tomo.denoise "
                "or recon.tomo.denoise"
            )
        return denoise(self._obj, model, out, **kwargs)


@xr.register_dataset_accessor("tomo")
class TomoDatasetAccessor:
    """``ds.tomo`` on a reconstruction: ``denoise`` (uses ``split``), filters (use ``full``)."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def _full(self) -> xr.DataArray:
        if "full" not in self._obj.variables:
            raise InputError("this dataset has no 'full' volume to filter; open a recon.zarr")
        return self._obj["full"]

    def denoise(self, model: Any, out: str | os.PathLike[str] | None = None,
                **kwargs: Any) -> xr.DataArray:
        """Denoise with a trained model (:func:`tomochunk.inference.denoise`)."""
        from .inference import denoise

        return denoise(self._obj, model, out, **kwargs)

    def median(self, **kwargs: Any) -> xr.DataArray:
        """Median of ``full`` (:func:`tomochunk.filters.median`)."""
        return self._full().tomo.median(**kwargs)

    def nlm(self, **kwargs: Any) -> xr.DataArray:
        """NLM of ``full`` (:func:`tomochunk.filters.nlm`)."""
        return self._full().tomo.nlm(**kwargs)

    def iternlm(self, **kwargs: Any) -> xr.DataArray:
        """Iterative NLM of ``full`` (:func:`tomochunk.filters.iternlm`)."""
        return self._full().tomo.iternlm(**kwargs)
