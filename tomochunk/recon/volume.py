"""Split + reconstruct a whole scan over Dask, one task per block of detector rows.

:func:`reconstruct` is the stage behind ``tomochunk recon`` (and ``tc.reconstruct``). For every
block of ``rows_per_block`` detector rows a single task reads the raw rows (lazily, from the
Zarr store), preprocesses them (:func:`tomochunk.preprocess.preprocess_block`: flat/dark,
``-log``, stripe removal), and reconstructs the K interleaved subsets and the full set from
that one preprocessed block, so all of them share exactly the same preprocessing and centre
(Hendriksen, Pelt & Batenburg 2020). The outputs ``full(z,y,x)`` and ``split(split,z,y,x)``
are written chunk by chunk by the tasks that compute them, so memory is bounded by the block
size (``(K + 1) * rows_per_block * n^2`` floats per running task), not by the volume.

When the angles are equally spaced over 180 degrees and their number is a multiple of K,
the full reconstruction is computed as the mean of the K subset reconstructions: FBP is
linear and the weights add up exactly (:func:`tomochunk.recon.split.full_is_mean_of_splits`),
so this is the same result at about half the cost. Otherwise (for example the tooth's 181
angles) the full set is reconstructed separately. The attribute ``full_from`` records which.

Errors and warnings of :func:`reconstruct`
------------------------------------------
- :class:`~tomochunk.errors.OutputExistsError`: ``out`` exists and ``overwrite`` is false
  (checked first).
- :class:`~tomochunk.errors.ConfigError`: unknown backend, filter or option (the message lists
  the valid ones), ``splits < 2``.
- :class:`~tomochunk.errors.InputError`: centre outside the detector, more splits than angles
  or fewer than 2 angles per subset, a bad scan layout; NaN/inf in the projections beyond
  what preprocessing in-fills, or a damaged chunk of the scan store (raised by the block task
  that meets them: the message names the block's detector rows ``a-b``, the scan and the
  cause).
- :class:`~tomochunk.errors.BlockError`: any other failure inside a block task, with the same
  rows and cause in its message.
- ``UserWarning``: angles that do not cover about 180 degrees; subsets of unequal size.

Example: ``reconstruct("scan.zarr", "recon.zarr", splits=2, center="auto")``.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, NamedTuple

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..chunks import ZarrSource
from ..config import PreprocessConfig, ReconConfig, replace, to_dict
from ..errors import BlockError, ConfigError, InputError
from ..io import store
from ..preprocess.paganin import resolve_paganin
from ..runtime.logs import get_logger
from ..runtime.threads import thread_count
from .blocks import block_task, reconstruct_sinograms
from .checks import check_center, check_theta
from .filters import check_filter
from .order import order_name
from .registry import RECONSTRUCTORS
from .split import angles_per_split, check_splits, full_is_mean_of_splits
from .stitch import (
    opposite_pairs,
    overlap_width,
    stitched_width,
)

__all__ = ["BlockError", "check_center", "check_inputs", "reconstruct", "reconstruct_sinograms"]

_log = get_logger("recon")


def _apply_overrides(
    preprocess: PreprocessConfig, config: ReconConfig, overrides: dict[str, Any]
) -> tuple[PreprocessConfig, ReconConfig]:
    recon_keys = {f.name for f in fields(ReconConfig)}
    pre_keys = {f.name for f in fields(PreprocessConfig)}
    unknown = sorted(set(overrides) - recon_keys - pre_keys)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for reconstruct; valid options are the "
            f"ReconConfig fields ({', '.join(sorted(recon_keys))}) and the PreprocessConfig "
            f"fields ({', '.join(sorted(pre_keys))})"
        )
    rc = {k: v for k, v in overrides.items() if k in recon_keys}
    pc = {k: v for k, v in overrides.items() if k in pre_keys}
    return replace(preprocess, **pc), replace(config, **rc)


def _check_config(config: ReconConfig) -> None:
    """Check the backend and filter are known and installed (errors list valid values).

    Ranges and cross-field rules are checked when the config is constructed
    (:mod:`tomochunk.config.checks`).
    """
    backend = RECONSTRUCTORS.get(config.backend)  # unknown / unavailable -> listed names
    check_filter(config.filter, config.filter_cutoff, config.filter_order)
    backend.check(config)  # settings this backend does not implement


def _as_dataset(scan: xr.Dataset | str | os.PathLike[str],
                storage_options: Any = None) -> tuple[xr.Dataset, str]:
    if isinstance(scan, xr.Dataset):
        missing = [v for v in ("projections", "theta") if v not in scan.variables]
        if missing:
            raise InputError(
                f"the scan dataset has no {', '.join(missing)}; it needs projections(angle,"
                "row,col) and theta(angle) in radians (open a store with tc.open_scan)"
            )
        return scan, str(scan.attrs.get("source", "dataset"))
    from ..io.urls import is_url

    return (store.open_scan(scan, storage_options),
            os.fspath(scan) if is_url(scan) else str(Path(scan)))


def _dask(var: xr.DataArray, rows_per_block: int) -> da.Array:
    data = var.data
    if isinstance(data, da.Array):
        return data
    chunks = tuple(-1 if d != "row" else rows_per_block for d in var.dims)
    return da.from_array(np.asarray(data), chunks=chunks)


def reconstruct(
    scan: xr.Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    preprocess: PreprocessConfig | None = None,
    config: ReconConfig | None = None,
    overwrite: bool = False,
    storage_options: Any = None,
    **overrides: Any,
) -> xr.Dataset:
    """Preprocess, split and reconstruct a scan: ``full(z,y,x)`` and ``split(split,z,y,x)``.

    ``scan`` and ``out`` may be fsspec URLs (``s3://...``) opened with ``storage_options``.

    Parameters
    ----------
    scan : path or xarray.Dataset
        ``scan.zarr`` (opened with :func:`tomochunk.io.store.open_scan`) or a dataset in that
        layout: ``projections(angle,row,col)``, ``theta(angle)`` in radians, optional
        ``flat(flat,row,col)`` and ``dark(dark,row,col)`` (without them the projections must
        already be normalised transmission).
    out : path, optional
        Where to write ``recon.zarr``. Without it the lazy (Dask-backed) dataset is returned
        and nothing is computed.
    preprocess : PreprocessConfig, optional
        Normalisation, stripe removal and centre (``center="auto"`` runs
        :func:`tomochunk.preprocess.find_center` once, before the graph is built).
    config : ReconConfig, optional
        Splits, backend, filter, padding, circle mask, ``rows_per_block``.
    overwrite : bool
        Replace an existing ``out`` (only once the new store is complete).
    **overrides
        Any ReconConfig or PreprocessConfig field, e.g. ``splits=4, center=295.5``.

    Returns
    -------
    xarray.Dataset
        ``full`` and ``split`` float32 in linear attenuation per pixel; coords ``z, y, x`` in
        micrometres when the scan has ``pixel_size_um`` (else pixels) and ``split``; the
        provenance attributes of :func:`_attrs`. With ``half_acquisition`` the slices are
        ``round(2 c) + 1`` pixels wide.

    Raises
    ------
    OutputExistsError, ConfigError, InputError, BlockError
        Before any work, or from the block task that meets it (see the module docstring).
    """
    if out is not None:
        store.check_output_path(out, overwrite, storage_options)
    preprocess, config = _apply_overrides(preprocess or PreprocessConfig(),
                                          config or ReconConfig(), overrides)
    plan = _plan(scan, preprocess, config, storage_options)
    ds, source, preprocess, theta, theta_rec, sizes = plan
    n_rows, n_det = ds["projections"].sizes["row"], ds["projections"].sizes["col"]
    center, n_out = _centre(ds, preprocess, config, n_det, n_rows)
    stack = _block_graph(scan, ds, theta, center, preprocess, config, n_out, source,
                         storage_options)
    attrs = _attrs(ds, theta, theta_rec, center, sizes, preprocess, config, source)
    result = _dataset(stack, ds.attrs.get("pixel_size_um"), n_rows, n_out, attrs)
    if out is None:
        return result
    assert angles_per_split(theta_rec.size, config.splits) == sizes
    store.write_dataset(
        result,
        out,
        overwrite=overwrite,
        attrs=attrs,
        label=f"reconstructing {n_rows} slices x {config.splits + 1} volumes",
        storage_options=storage_options,
    )
    return store.open_recon(out, storage_options)


class _Plan(NamedTuple):
    ds: xr.Dataset
    source: str
    preprocess: PreprocessConfig
    theta: np.ndarray
    theta_rec: np.ndarray
    sizes: list[int]


def _plan(scan: xr.Dataset | str | os.PathLike[str], preprocess: PreprocessConfig,
          config: ReconConfig, storage_options: Any) -> _Plan:
    """Every check of the configuration against the scan's metadata (no voxel is read)."""
    _check_config(config)
    ds, source = _as_dataset(scan, storage_options)
    preprocess = resolve_paganin(preprocess, ds.attrs.get("pixel_size_um"))
    if ds["projections"].ndim != 3:
        raise InputError("projections must be (angle, row, col), got dims "
                         f"{ds['projections'].dims}")
    n_angles = ds["projections"].sizes["angle"]
    theta = check_theta(ds["theta"].values, n_angles)
    # the angles each reconstructed row has: the first of each opposite pair (half acq.)
    theta_rec = theta[opposite_pairs(theta)[0]] if config.half_acquisition else theta
    sizes = check_splits(theta_rec, config.splits)
    return _Plan(ds, source, preprocess, theta, theta_rec, list(sizes))


def check_inputs(scan: xr.Dataset | str | os.PathLike[str],
                 preprocess: PreprocessConfig | None = None, config: ReconConfig | None = None,
                 storage_options: Any = None) -> None:
    """Check a reconstruction of ``scan`` before any cluster starts (metadata only).

    ``tomochunk recon`` calls it first, so that settings that do not fit the scan (Paganin
    without a pixel size, half acquisition of a 180-degree scan, more splits than angles,
    a backend that is not installed) fail in one line without starting workers.

    Raises
    ------
    ConfigError, InputError
        As :func:`reconstruct` would, before any block is computed.
    """
    _plan(scan, preprocess or PreprocessConfig(), config or ReconConfig(), storage_options)


def _centre(ds: xr.Dataset, preprocess: PreprocessConfig, config: ReconConfig, n_det: int,
            n_rows: int) -> tuple[float | np.ndarray, int]:
    """The checked centre (found when ``auto``) and the width of the reconstructed slices."""
    from ..preprocess import find_center, find_center_360

    if config.half_acquisition and preprocess.center == "auto":
        center = check_center(find_center_360(ds, preprocess), n_det, n_rows)
    else:
        center = check_center(find_center(ds, preprocess), n_det, n_rows)
    n_out = n_det
    if config.half_acquisition:
        if isinstance(center, np.ndarray):
            raise ConfigError("half_acquisition needs one global centre; turn off "
                              "center_per_slice")
        n_out = stitched_width(n_det, center)
        _log.info("half acquisition: axis at column %.2f of %d, overlap %.1f columns, "
                  "stitched width %d", center, n_det, overlap_width(n_det, center), n_out)
    if isinstance(center, np.ndarray):
        _log.info("per-slice centres %.2f..%.2f", center.min(), center.max())
    else:
        _log.info("centre of rotation %.2f", center)
    return center, n_out


def _sources(scan: Any, ds: xr.Dataset, rpb: int,
             storage_options: Any) -> tuple[Any, Any, Any]:
    """Projections, flat and dark: read by the block tasks from the store, or Dask arrays."""
    has_flat = "flat" in ds.variables and "dark" in ds.variables
    names = ("projections", "flat", "dark") if has_flat else ("projections",)
    if not isinstance(scan, xr.Dataset) and all(
        ds[v].dims == (v if v != "projections" else "angle", "row", "col") for v in names
    ):
        p_data, f_data, d_data = (
            ZarrSource.open(scan, v, storage_options, axis=-2) if v in names else None
            for v in ("projections", "flat", "dark")
        )
        return p_data, f_data, d_data
    proj = ds["projections"].transpose("angle", "row", "col")
    flat = _dask(ds["flat"].transpose("flat", "row", "col"), rpb) if has_flat else None
    dark = _dask(ds["dark"].transpose("dark", "row", "col"), rpb) if has_flat else None
    return _dask(proj, rpb), flat, dark


def _block_graph(scan: Any, ds: xr.Dataset, theta: np.ndarray, center: float | np.ndarray,
                 preprocess: PreprocessConfig, config: ReconConfig, n_out: int, source: str,
                 storage_options: Any) -> da.Array:
    """``(1 + K, z, n_out, n_out)``: one task per block of ``rows_per_block`` rows."""
    from ..preprocess import required_row_halo

    n_rows = ds["projections"].sizes["row"]
    rpb = min(config.rows_per_block, n_rows)
    halo = required_row_halo(preprocess)
    data = _sources(scan, ds, rpb, storage_options)
    starts = list(range(0, n_rows, rpb))
    nthreads = thread_count("recon_task", requested=config.threads, n_tasks=len(starts))
    blocks = []
    for r0 in starts:
        r1 = min(r0 + rpb, n_rows)
        top, bottom = min(halo, r0), min(halo, n_rows - r1)
        rows = slice(r0 - top, r1 + bottom)
        c = center if np.ndim(center) == 0 else np.asarray(center)[r0:r1]
        task = dask.delayed(block_task, pure=True)(
            *(x if x is None or isinstance(x, ZarrSource) else x[:, rows, :] for x in data),
            theta, c, preprocess, config, (rows.start, rows.stop), (top, bottom), nthreads,
            source,
        )
        blocks.append(da.from_delayed(task, shape=(config.splits + 1, r1 - r0, n_out, n_out),
                                      dtype=np.float32))
    return da.concatenate(blocks, axis=1)


def _attrs(ds: xr.Dataset, theta: np.ndarray, theta_rec: np.ndarray,
           center: float | np.ndarray, sizes: list[int], preprocess: PreprocessConfig,
           config: ReconConfig, source: str) -> dict[str, Any]:
    """The attributes of ``recon.zarr`` (provenance of the reconstruction).

    ``center``, ``filter``, ``algorithm``, ``n_splits``, ``angles_per_split``, ``stripe``,
    ``full_from``, ``preprocess`` and ``recon`` (config JSON), ``theta_range_deg``,
    ``angle_order`` (monotonic or interleaved), ``half_acquisition`` and, for half
    acquisition, ``overlap_px`` (the columns both projections of a pair see).
    """
    k = config.splits
    px = ds.attrs.get("pixel_size_um")
    attrs: dict[str, Any] = {
        "center": center.tolist() if isinstance(center, np.ndarray) else float(center),
        "filter": config.filter,
        "algorithm": config.backend,
        "n_splits": k,
        "angles_per_split": sizes,
        "stripe": preprocess.stripe,
        "full_from": "mean_of_splits" if full_is_mean_of_splits(theta_rec, k) else "all_angles",
        "angle_order": order_name(theta),
        "half_acquisition": bool(config.half_acquisition),
        "n_angles": int(theta.size),
        "theta_range_deg": [float(np.degrees(theta.min())), float(np.degrees(theta.max()))],
        "pad": config.pad,
        "circle": config.circle,
        "tomopy_convention": config.tomopy_convention,
        "preprocess": json.dumps(to_dict(preprocess)),
        "recon": json.dumps(to_dict(config)),
        "source": source,
        "units": "linear attenuation per pixel",
    }
    if px:
        attrs["pixel_size_um"] = float(px)
    if config.half_acquisition:
        attrs["overlap_px"] = overlap_width(ds["projections"].sizes["col"], float(center))
    return attrs


def _dataset(stack: da.Array, px: Any, n_rows: int, n_out: int,
             attrs: dict[str, Any]) -> xr.Dataset:
    """``full(z, y, x)`` and ``split(split, z, y, x)`` with coordinates in um (or pixels)."""
    scale = float(px) if px else 1.0
    unit = "um" if px else "pixel"
    coords = {
        "z": ("z", np.arange(n_rows) * scale, {"units": unit}),
        "y": ("y", np.arange(n_out) * scale, {"units": unit}),
        "x": ("x", np.arange(n_out) * scale, {"units": unit}),
    }
    units = {"units": "linear attenuation per pixel"}
    return xr.Dataset(
        {
            "full": (("z", "y", "x"), stack[0], units),
            "split": (("split", "z", "y", "x"), stack[1:].rechunk({0: 1}), units),
        },
        coords=coords,
        attrs=attrs,
    )
