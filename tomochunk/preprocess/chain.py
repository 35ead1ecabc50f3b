"""The per-block preprocessing chain used by reconstruction.

raw counts ``(angle, row, col)`` -> flat/dark normalisation -> ``-log`` -> in-fill of invalid
values -> optional projection median -> stripe removal -> float32 attenuation.

Bad-value policy (see also :mod:`tomochunk.preprocess.normalize`):

* dead detector pixels (``flat - dark <= 0`` or non-finite flat/dark) are counted; up to
  ``max_dead_fraction`` of the detector (1 %) they are in-filled, beyond that
  :func:`~tomochunk.preprocess.check_flat_dark` raises :class:`~tomochunk.errors.InputError`;
* transmission below ``config.log_floor`` is clipped before ``-log`` and counted;
* NaN/inf in the raw projections (or produced by them) are counted. Up to
  ``max_nonfinite_fraction`` of the block (1 %) they are replaced by the median of the finite
  values among the two columns on each side in the same row of the same projection (0 where
  none is finite; :func:`~tomochunk.preprocess.fill_invalid`) and a warning with the count is
  logged; above it an InputError names the affected rows. Dead pixels are in-filled the same
  way. NaN/inf never reach the output.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..config import PreprocessConfig
from ..errors import InputError
from ..runtime.logs import get_logger
from .normalize import (
    check_flat_dark,
    count_nonfinite,
    dead_pixel_mask,
    fill_invalid,
    minus_log,
    normalize,
    reduce_stack,
)
from .paganin import paganin_halo, resolve_paganin, retrieve_phase
from .projection_median import median_filter_projections, normalize_halo
from .stripe import remove_stripe_fw, remove_stripe_sorting

__all__ = ["preprocess_block", "preprocess_scan", "remove_stripes", "required_row_halo"]

_log = get_logger("preprocess")


def required_row_halo(config: PreprocessConfig) -> int:
    """Detector rows a block needs above and below itself for ``config``: the projection
    median's radius plus the Paganin kernel's reach (:func:`paganin_halo`).

    Every other step treats detector rows independently.
    """
    return int(config.projection_median) + paganin_halo(config)


def remove_stripes(sino_block: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Apply the stripe removal chosen by ``config.stripe`` (``fw``, ``sorting`` or ``none``)."""
    if config.stripe == "fw":
        return remove_stripe_fw(sino_block, level=config.fw_level, wname=config.fw_wname,
                                sigma=config.fw_sigma, pad=config.fw_pad)
    if config.stripe == "sorting":
        return remove_stripe_sorting(sino_block, size=config.sorting_size)
    if config.stripe == "none":
        return np.asarray(sino_block, dtype=np.float32)
    raise InputError(f"unknown stripe method {config.stripe!r}; use fw, sorting or none")


def _check_nonfinite_input(own: np.ndarray, first: int, max_fraction: float) -> int:
    """NaN/inf count of the block's own rows; raise if more than ``max_fraction``."""
    n = count_nonfinite(own)
    frac = n / max(own.size, 1)
    if frac > max_fraction:
        bad_rows = np.nonzero((~np.isfinite(own)).any(axis=(0, 2)))[0] + first
        raise InputError(
            f"{frac:.2%} of the projection values ({n}) are NaN/inf, "
            f"more than the {max_fraction:.1%} that are in-filled, in detector rows "
            f"{_rows_text(bad_rows)}; check the input file for corrupt frames or exclude "
            "these rows"
        )
    return n


def _transmission(proj: np.ndarray, flat: np.ndarray | None, dark: np.ndarray | None,
                  config: PreprocessConfig, own: slice,
                  max_dead_fraction: float) -> tuple[np.ndarray, np.ndarray | None, int]:
    """``(transmission, dead-pixel mask or None, NaN/inf in the reduced flat and dark)``."""
    if flat is None or dark is None:
        return proj.astype(np.float32, copy=False), None, 0
    check_flat_dark(flat, dark, projections_shape=proj.shape, max_fraction=max_dead_fraction)
    flat_img = reduce_stack(flat, config.flat_reduce)
    dark_img = reduce_stack(dark, config.dark_reduce)
    bad = count_nonfinite(flat_img[own]) + count_nonfinite(dark_img[own])
    return normalize(proj, flat_img, dark_img), dead_pixel_mask(flat_img, dark_img), bad


def _fill(att: np.ndarray, dead: np.ndarray | None, own: slice, first: int,
          last: int) -> tuple[np.ndarray, int]:
    """In-fill dead pixels and NaN/inf; ``(attenuation, NaN/inf filled in the own rows)``."""
    nonfinite = ~np.isfinite(att[:, own])
    if dead is not None:
        nonfinite &= ~dead[None, own]
    n = int(np.count_nonzero(nonfinite))
    att, _ = fill_invalid(att, dead)
    if n:
        _log.warning(
            "%d NaN/inf values in detector rows %d..%d replaced by the median of their finite "
            "neighbours in their row", n, first, last,
        )
    return att, n


def _filter(att: np.ndarray, config: PreprocessConfig, top: int, bottom: int, first: int,
            last: int) -> np.ndarray:
    """Phase retrieval, projection median and stripe removal; the halo rows dropped."""
    if config.paganin:  # on every row, halo included: it couples rows
        att = retrieve_phase(att, config)
    if config.projection_median > 0:
        att = median_filter_projections(att, config.projection_median, row_halo=(top, bottom))
    else:
        att = att[:, top : att.shape[1] - bottom]
    att = remove_stripes(att, config)
    if count_nonfinite(att):  # cannot happen after in-filling; guard against silent NaN
        raise InputError(
            f"preprocessing produced {count_nonfinite(att)} NaN/inf values in detector rows "
            f"{first}..{last}; check the stripe parameters"
        )
    return att


def preprocess_block(
    projections: np.ndarray,
    flat: np.ndarray | None,
    dark: np.ndarray | None,
    config: PreprocessConfig,
    *,
    row_offset: int = 0,
    row_halo: int | tuple[int, int] = 0,
    max_nonfinite_fraction: float = 0.01,
    max_dead_fraction: float = 0.01,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn a block of raw projections into float32 attenuation ready for reconstruction.

    Chain: :func:`~tomochunk.preprocess.check_flat_dark` ->
    :func:`~tomochunk.preprocess.normalize` (``config.flat_reduce``/``dark_reduce``) ->
    :func:`~tomochunk.preprocess.minus_log` (``config.log_floor``) -> in-fill of dead pixels
    and NaN/inf (:func:`~tomochunk.preprocess.fill_invalid`) ->
    :func:`~tomochunk.preprocess.median_filter_projections` (``config.projection_median``,
    when > 0) -> stripe removal (``config.stripe``).

    Parameters
    ----------
    projections : numpy.ndarray
        Raw counts ``(angle, row, col)``; already normalised transmission when ``flat`` and
        ``dark`` are None (normalisation is then skipped, ``-log`` is not).
    flat, dark : numpy.ndarray or None
        ``(n, row, col)`` stacks (or reduced ``(row, col)`` images) of the same rows.
    config : PreprocessConfig
    row_offset : int
        Detector row of the block's first row (including halo), used in messages only.
    row_halo : int or (int, int)
        Extra rows at the top and bottom of the block for the projection median (see
        :func:`required_row_halo`); they are dropped from the output, which then equals the
        result of processing the whole detector.
    max_nonfinite_fraction : float
        Largest fraction of NaN/inf values in the raw projections that is in-filled.
    max_dead_fraction : float
        Largest fraction of dead detector pixels that is in-filled.

    Returns
    -------
    attenuation : numpy.ndarray
        float32 ``(angle, row, col)`` without halo rows, every value finite.
    report : dict
        ``clipped`` (values below the log floor), ``nonfinite_in`` (NaN/inf in the raw
        projections), ``nonfinite_flat_dark`` (in the reduced flat and dark images),
        ``dead_pixels`` (detector pixels), ``nonfinite_filled`` (NaN/inf values in-filled),
        ``filled`` (all values in-filled, dead pixels included), ``shape`` (output shape).
        Counts cover the block's own rows, not the halo rows.

    Raises
    ------
    InputError
        On mismatching shapes, too many dead pixels or too many NaN/inf values.
    """
    proj = np.asarray(projections)
    if proj.ndim != 3:
        raise InputError(f"projections must be (angle, row, col), got shape {proj.shape}")
    if (flat is None) != (dark is None):
        raise InputError(
            "give both flat and dark frames, or neither (for already normalised data)"
        )
    top, bottom = normalize_halo(row_halo, proj.shape[1])
    own = slice(top, proj.shape[1] - bottom)  # the block's own rows: counts exclude the halo
    first, last = row_offset + top, row_offset + proj.shape[1] - bottom - 1
    report: dict[str, Any] = {
        "nonfinite_in": _check_nonfinite_input(proj[:, own], first, max_nonfinite_fraction)}
    trans, dead, report["nonfinite_flat_dark"] = _transmission(
        proj, flat, dark, config, own, max_dead_fraction)
    report["dead_pixels"] = int(dead[own].sum()) if dead is not None else 0
    att, report["clipped"] = minus_log(trans, config.log_floor)
    if top or bottom:
        halo_trans = np.concatenate([trans[:, :top], trans[:, own.stop :]], axis=1)
        report["clipped"] -= minus_log(halo_trans, config.log_floor)[1]
    att, report["nonfinite_filled"] = _fill(att, dead, own, first, last)
    report["filled"] = report["nonfinite_filled"] + report["dead_pixels"] * proj.shape[0]
    att = _filter(att, config, top, bottom, first, last)
    report["shape"] = tuple(att.shape)
    return np.ascontiguousarray(att, dtype=np.float32), report


def preprocess_scan(
    scan: xr.Dataset, config: PreprocessConfig, *, rows_per_block: int = 8
) -> xr.DataArray:
    """Lazy attenuation of a whole scan: :func:`preprocess_block` mapped over blocks of rows.

    Each Dask task reads one block of detector rows plus the halo rows the projection median
    needs (:func:`required_row_halo`; fewer at the detector edges), so the result equals
    :func:`preprocess_block` applied to the whole detector.

    Parameters
    ----------
    scan : xarray.Dataset
        ``projections(angle, row, col)``, optional ``flat(flat, row, col)`` and
        ``dark(dark, row, col)`` (both or neither), coordinate ``theta(angle)``.
    config : PreprocessConfig
    rows_per_block : int
        Detector rows per task.

    Returns
    -------
    xarray.DataArray
        ``attenuation(angle, row, col)``, float32, Dask-backed, with the scan's coordinates.
    """
    if rows_per_block < 1:
        raise InputError(f"rows_per_block must be >= 1, got {rows_per_block}")
    proj = scan["projections"]
    if proj.dims != ("angle", "row", "col"):
        raise InputError(
            f"projections must have dims (angle, row, col), got {proj.dims}; open the scan "
            "with tc.open_scan"
        )
    has_fd = "flat" in scan and "dark" in scan
    if has_fd:  # checked up front on the reduced (2D) images, before any block is computed
        flat_img, dark_img = dask.compute(
            da.asarray(scan["flat"].data).mean(axis=0, dtype=np.float32),
            da.asarray(scan["dark"].data).mean(axis=0, dtype=np.float32),
        )
        check_flat_dark(flat_img, dark_img, projections_shape=proj.shape)
    n_ang, n_rows, n_cols = proj.shape
    config = resolve_paganin(config, scan.attrs.get("pixel_size_um"))
    halo = required_row_halo(config)
    blocks = []
    for r0 in range(0, n_rows, rows_per_block):
        r1 = min(n_rows, r0 + rows_per_block)
        lo, hi = max(0, r0 - halo), min(n_rows, r1 + halo)
        args = [proj.data[:, lo:hi]]
        args += ([scan["flat"].data[:, lo:hi], scan["dark"].data[:, lo:hi]]
                 if has_fd else [None, None])
        task = dask.delayed(_attenuation_only, pure=True)(
            *args, config, row_offset=lo, row_halo=(r0 - lo, hi - r1)
        )
        blocks.append(da.from_delayed(task, shape=(n_ang, r1 - r0, n_cols), dtype=np.float32))
    data = da.concatenate(blocks, axis=1)
    coords = {k: v for k, v in proj.coords.items()}
    return xr.DataArray(data, dims=("angle", "row", "col"), coords=coords, name="attenuation")


def _attenuation_only(*args: Any, **kwargs: Any) -> np.ndarray:
    return preprocess_block(*args, **kwargs)[0]


def _rows_text(rows: np.ndarray, limit: int = 20) -> str:
    text = ", ".join(str(int(r)) for r in rows[:limit])
    return text + (f", ... ({rows.size} rows)" if rows.size > limit else "")
