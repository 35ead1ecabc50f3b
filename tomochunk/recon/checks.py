"""Checks of a scan's centre of rotation and angles before any reconstruction work."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError

__all__ = ["check_center", "check_theta"]


def check_center(center: float | np.ndarray, n_det: int, n_rows: int) -> float | np.ndarray:
    """Check a centre of rotation (0-based detector column, global or one per row).

    Raises
    ------
    InputError
        If a centre is not finite or lies outside the detector columns ``0 .. n_det - 1``,
        or a per-row centre array does not have one value per detector row.
    """
    c = np.asarray(center, dtype=np.float64)
    if c.ndim == 1 and c.size != n_rows:
        raise InputError(
            f"{c.size} per-slice centres given for {n_rows} detector rows; give one centre "
            "or one per row"
        )
    if c.ndim > 1:
        raise InputError(f"centre must be a number or a 1D array per row, got shape {c.shape}")
    bad = ~np.isfinite(c) | (c < 0) | (c > n_det - 1)
    if np.any(bad):
        where = "" if c.ndim == 0 else f" in rows {np.nonzero(bad)[0][:20].tolist()}"
        value = float(c) if c.ndim == 0 else c[bad][:5].tolist()
        raise InputError(
            f"centre of rotation {value}{where} is outside the detector columns 0..{n_det - 1}; "
            "give a 0-based pixel column (--center), or --center auto to find it"
        )
    return float(c) if c.ndim == 0 else c


def check_theta(theta: np.ndarray, n_angles: int) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if theta.size != n_angles:
        raise InputError(
            f"the scan has {n_angles} projections but {theta.size} angles; theta(angle) must "
            "give one angle per projection"
        )
    if not np.all(np.isfinite(theta)):
        bad = np.nonzero(~np.isfinite(theta))[0][:20].tolist()
        raise InputError(f"projection angles {bad} are NaN/inf; fix theta in the scan store")
    span = float(theta.max() - theta.min()) if theta.size else 0.0
    if span > 2 * np.pi * 1.05:
        warnings.warn(
            f"the angles span {span:.1f} rad ({np.degrees(span):.0f} degrees); scan.zarr keeps "
            "theta in radians: if these are degrees, convert them",
            UserWarning,
            stacklevel=3,
        )
    return theta
