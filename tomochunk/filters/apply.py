"""``tomochunk filter``: a baseline filter of ``recon.zarr``'s ``full`` into ``<method>.zarr``."""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from ..chunks import ZarrSource
from ..config import FilterConfig
from ..errors import InputError
from ..io.store import check_output_path, open_recon, open_store, write_dataset
from ..runtime.logs import get_logger
from .registry import FILTERS
from .sigma import resolve_sigma

__all__ = ["apply_filter", "filter_params"]

log = get_logger("filters")


def filter_params(method: str, config: FilterConfig, sigma: float | None = None
                  ) -> dict[str, Any]:
    """Keyword arguments of filter ``method`` taken from ``config`` (``sigma``: resolved)."""
    comp = FILTERS.get(method)
    return comp.config_params(config.params_of(method), sigma)


def _store_attrs(method: str, params: dict[str, Any], recon_attrs: Any) -> dict[str, Any]:
    """Attributes of ``<method>.zarr``: the method, its parameters, the recon's geometry."""
    attrs = {"filter_method": method, "filter_params": params}
    for key in ("pixel_size_um", "center", "filter", "algorithm"):
        if key in recon_attrs:
            attrs[f"recon_{key}"] = recon_attrs[key]
    return attrs


def apply_filter(
    recon: str | os.PathLike[str] | xr.Dataset,
    out: str | os.PathLike[str],
    *,
    method: str,
    config: FilterConfig | None = None,
    overwrite: bool = False,
    storage_options: Any = None,
) -> xr.Dataset:
    """Filter the full reconstruction with a baseline and write ``<method>.zarr`` atomically.

    ``recon`` and ``out`` may be fsspec URLs (``s3://...``) opened with ``storage_options``.

    Parameters
    ----------
    recon : path or xarray.Dataset
        ``recon.zarr`` (or the opened dataset) holding ``full(z, y, x)``.
    out : path
        Output store; it holds ``<method>(z, y, x)`` float32 with the coords of ``full``
        and the filter parameters as attributes.
    method : str
        Registered filter: median, nlm, iternlm or any other in
        :data:`tomochunk.filters.FILTERS`.
    config : FilterConfig, optional
        The filter's parameters (``config.params_of(method)``), ``sigma`` and ``chunk_z``.
    overwrite : bool
        Replace an existing output (only once the new one is complete).

    Returns
    -------
    xarray.Dataset
        The written store, opened lazily.

    Raises
    ------
    ConfigError
        Unknown method (the message lists the valid ones) or invalid parameters.
    OutputExistsError
        ``out`` exists and ``overwrite`` is false.
    InputError
        The recon store is missing or has no ``full`` volume, or ``sigma="auto-split"``
        finds no (or identical) split volumes.
    """
    cfg = config or FilterConfig()
    comp = FILTERS.get(method)
    fparams = cfg.params_of(method)
    check_output_path(out, overwrite, storage_options)
    ds = recon if isinstance(recon, xr.Dataset) else open_recon(recon, storage_options)
    if "full" not in ds:
        raise InputError(
            f"the reconstruction has no 'full' volume (it holds {', '.join(map(str, ds))}); "
            "run 'tomochunk recon' first"
        )
    full = ds["full"]
    sigma = resolve_sigma(cfg.sigma, ds) if comp.needs_sigma else None
    if comp.needs_sigma:
        log.info("%s: noise sigma %s (%s)", method,
                 "estimated per chunk" if sigma is None else f"{sigma:.4g}", cfg.sigma)
    params = comp.config_params(fparams, sigma)
    result: xr.DataArray
    if isinstance(recon, xr.Dataset):
        result = comp.run(full if full.chunks else full.chunk(),  # type: ignore[assignment]
                          fparams, sigma=sigma, chunk_z=cfg.chunk_z)
    else:  # every task reads its own slab of the store: no data dependencies between tasks
        data = comp.run(ZarrSource.open(recon, "full", storage_options), fparams, sigma=sigma,
                        chunk_z=cfg.chunk_z)
        result = xr.DataArray(data, dims=full.dims, coords=full.coords)
    attrs = _store_attrs(method, {**params, "chunk_z": cfg.chunk_z}, ds.attrs)
    halo = comp.halo(fparams)
    if halo and cfg.chunk_z < 2 * halo:
        log.info("%s: chunk_z=%d with a halo of %d slices per side computes %d slices per %d "
                 "kept; a larger --chunk-z is faster (memory grows with it)", method,
                 cfg.chunk_z, halo, cfg.chunk_z + 2 * halo, cfg.chunk_z)
    out_ds = result.to_dataset(name=method)
    log.info("%s filter of %s voxels, chunk_z=%d, params %s", method, full.shape,
             cfg.chunk_z, params)
    write_dataset(out_ds, out, overwrite=overwrite, attrs=attrs, label=f"{method} filter",
                  storage_options=storage_options)
    return open_store(out, required=(method,), what=f"{method} store",
                      storage_options=storage_options)
