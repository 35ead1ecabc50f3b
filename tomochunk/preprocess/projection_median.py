"""Median filters on projections and on slices of a volume (scipy.ndimage at the core)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError

__all__ = ["median_filter_projections", "median_filter_slices", "normalize_halo"]


def normalize_halo(row_halo: int | tuple[int, int], n_rows: int) -> tuple[int, int]:
    """``(top, bottom)`` halo rows from an int or a pair, checked against the block height."""
    top, bottom = (row_halo, row_halo) if isinstance(row_halo, int | np.integer) else row_halo
    top, bottom = int(top), int(bottom)
    if top < 0 or bottom < 0 or top + bottom >= n_rows:
        raise InputError(
            f"row halo {(top, bottom)} does not fit a block of {n_rows} rows; the halo rows "
            "must be >= 0 and leave at least one row of the block itself"
        )
    return top, bottom


def median_filter_projections(
    proj_block: np.ndarray, radius: int, *, row_halo: int | tuple[int, int] = 0
) -> np.ndarray:
    """2D median of size ``(2*radius+1)**2`` on each projection (the angle axis is untouched).

    This is the projection median of Flenner et al. 2022 (J. Synchrotron Rad. 29:230), applied
    before reconstruction. The window is square in (row, col) and the boundary mode is
    scipy's ``reflect``.

    Rows and blocks: a 2D median needs ``radius`` detector rows above and below each output
    row. When the block is part of a larger detector, the caller passes a block that includes
    these extra rows (``row_halo``: the number of halo rows at the top and bottom, fewer at
    the detector edges) and gets back only the block's own rows. The result then equals the
    filter applied to the whole detector, because at the detector's own edges both use the
    same reflection. With ``row_halo=0`` the block edges are treated as detector edges.

    Parameters
    ----------
    proj_block : numpy.ndarray
        ``(angle, row, col)``, including the halo rows.
    radius : int
        Median radius in pixels; 0 returns a float32 copy without halo rows.
    row_halo : int or (int, int)
        Halo rows included at the top and bottom of ``proj_block``.

    Returns
    -------
    numpy.ndarray
        float32 ``(angle, row - top - bottom, col)``.
    """
    proj_block = np.asarray(proj_block, dtype=np.float32)
    if proj_block.ndim != 3:
        raise InputError(f"projections must be (angle, row, col), got shape {proj_block.shape}")
    if radius < 0:
        raise InputError(f"median radius must be >= 0, got {radius}")
    top, bottom = normalize_halo(row_halo, proj_block.shape[1])
    if radius > 0:
        size = (1, 2 * radius + 1, 2 * radius + 1)
        proj_block = ndimage.median_filter(proj_block, size=size, mode="reflect")
    return np.ascontiguousarray(proj_block[:, top : proj_block.shape[1] - bottom])


def median_filter_slices(vol: np.ndarray, size: int = 3, axis: int = 0) -> np.ndarray:
    """2D median of ``size x size`` on every slice of ``vol`` taken along ``axis``.

    Matches TomoPy's ``tomopy.misc.corr.median_filter`` (float32 output, scipy's ``reflect``
    boundary) exactly.

    Parameters
    ----------
    vol : numpy.ndarray
        3D array.
    size : int
        Side of the square window.
    axis : int
        Axis along which the slices are taken (the window has length 1 along it).
    """
    vol = np.asarray(vol, dtype=np.float32)
    if vol.ndim != 3:
        raise InputError(f"median_filter_slices needs a 3D array, got shape {vol.shape}")
    if size < 1:
        raise InputError(f"median size must be >= 1, got {size}")
    footprint = [size, size, size]
    footprint[axis] = 1
    out: np.ndarray = ndimage.median_filter(vol, size=tuple(footprint), mode="reflect")
    return out
