"""The ``.tomo`` xarray accessors: filters and Noise2Inverse denoising as methods.

Importing this module registers them (``import tomochunk`` does). The filter methods are
generated from :data:`tomochunk.filters.FILTERS`: every registered filter is a method with
the parameters of its Params as keywords (plus ``sigma`` for noise-aware ones and
``chunk_z``)::

    rec = tc.open_recon("recon.zarr")
    med = rec.full.tomo.median(radius=2)          # lazy DataArray, same coords
    den = rec.tomo.denoise("model")               # Dataset with a ``split`` volume
    den = rec.split.tomo.denoise("model")         # or the ``split`` DataArray itself

Every method is a thin call of :mod:`tomochunk.filters` or :func:`tomochunk.inference.denoise`
(see those for the parameters, the exactness of chunking and the errors raised).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import xarray as xr

from .errors import ConfigError, InputError

__all__ = ["TomoDataArrayAccessor", "TomoDatasetAccessor"]


@xr.register_dataarray_accessor("tomo")
class TomoDataArrayAccessor:
    """``da.tomo``: baseline filters of a volume ``(z, y, x)``; denoising of ``split``."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _filter_method(name, lambda: self._obj)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_filter_names()})

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

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _filter_method(name, self._full)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_filter_names()})


def _filter_names() -> list[str]:
    from .filters.registry import FILTERS

    return FILTERS.names()


def _filter_method(name: str, volume: Callable[[], xr.DataArray]) -> Callable[..., Any]:
    """``da.tomo.NAME``: the registered filter ``NAME`` bound to a volume, with the keyword
    parameters, defaults and docstring of its Params (``help(da.tomo.median)``)."""
    from .filters.registry import FILTERS

    try:
        FILTERS.get_entry(name)  # an unknown name rescans the entry points first
    except ConfigError:
        raise AttributeError(f"'tomo' accessor has no attribute {name!r}; the filters are: "
                             f"{', '.join(FILTERS.names())}") from None
    comp = FILTERS.get(name)

    def method(**kwargs: Any) -> Any:
        comp.signature().bind(**kwargs)  # TypeError for an unknown keyword, as a method would
        chunk_z = kwargs.pop("chunk_z", None)
        sigma = kwargs.pop("sigma", None)
        return comp.run(volume(), comp.params(kwargs), sigma=sigma, chunk_z=chunk_z)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = comp.doc()
    method.__signature__ = comp.signature()  # type: ignore[attr-defined]
    return method
