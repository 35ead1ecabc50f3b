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
    if method == "median":
        return {"radius": config.radius, "footprint": config.footprint}
    if method == "nlm":
        return {"patch_size": config.nlm_patch_size, "patch_distance": config.nlm_patch_distance,
                "h": config.nlm_h, "sigma": sigma}
    if method == "iternlm":
        return {"iterations": config.iternlm_iterations, "patch_size": config.nlm_patch_size,
                "patch_distance": config.iternlm_patch_distance, "h": config.nlm_h,
                "sigma": sigma}
    return {}


def _halo(method: str, params: dict[str, Any]) -> int:
    from .iternlm import iternlm_halo
    from .nlm import nlm_halo

    if method == "median":
        return int(params["radius"])
    if method == "nlm":
        return nlm_halo(params["patch_size"], params["patch_distance"])
    if method == "iternlm":
        return iternlm_halo(params["iterations"], params["patch_size"], params["patch_distance"])
    return 0


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
    method : {"median", "nlm", "iternlm"}
        Registered filter (see :data:`tomochunk.filters.FILTERS`).
    config : FilterConfig, optional
        Radius, footprint, NLM parameters and ``chunk_z``.
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
    fn = FILTERS.get(method)
    check_output_path(out, overwrite, storage_options)
    ds = recon if isinstance(recon, xr.Dataset) else open_recon(recon, storage_options)
    if "full" not in ds:
        raise InputError(
            f"the reconstruction has no 'full' volume (it holds {', '.join(map(str, ds))}); "
            "run 'tomochunk recon' first"
        )
    full = ds["full"]
    sigma = resolve_sigma(cfg.sigma, ds) if method in ("nlm", "iternlm") else None
    if method in ("nlm", "iternlm"):
        log.info("%s: noise sigma %s (%s)", method,
                 "estimated per chunk" if sigma is None else f"{sigma:.4g}", cfg.sigma)
    params = filter_params(method, cfg, sigma)
    if isinstance(recon, xr.Dataset):
        result = fn(full if full.chunks else full.chunk(), **params, chunk_z=cfg.chunk_z)
    else:  # every task reads its own slab of the store: no data dependencies between tasks
        data = fn(ZarrSource.open(recon, "full", storage_options), **params,
                  chunk_z=cfg.chunk_z)
        result = xr.DataArray(data, dims=full.dims, coords=full.coords)
    attrs = {"filter_method": method, "filter_params": {**params, "chunk_z": cfg.chunk_z}}
    for key in ("pixel_size_um", "center", "filter", "algorithm"):
        if key in ds.attrs:
            attrs[f"recon_{key}"] = ds.attrs[key]
    halo = _halo(method, params)
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
