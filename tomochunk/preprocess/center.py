"""Centre of rotation: Vo's Fourier metric and 0/180 degree registration.

Convention: the centre is a 0-based detector pixel coordinate with pixel ``i`` centred at
``i``, so a perfectly centred detector of ``n`` columns has its centre at ``(n - 1) / 2``.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..config import PreprocessConfig, replace
from ..errors import InputError
from ..runtime.logs import get_logger
from ..runtime.progress import progress_enabled, tqdm
from .center_vo import find_center_vo

__all__ = [
    "find_center_vo",
    "find_center_registration",
    "find_center",
    "half_turn_indices",
    "opposite_pair",
]

_log = get_logger("preprocess.center")
_ROWS_PER_READ = 8  # detector rows read and normalised at once by find_center


# ----------------------------------------------------------------------------------------
# angles


def half_turn_indices(theta: np.ndarray) -> np.ndarray:
    """Indices of the projections that cover one half turn ``[theta_0, theta_0 + pi)``.

    The angles are sorted first; a scan over more than 180 degrees (e.g. 360) is cut to its
    first half turn, and a last angle at exactly ``theta_0 + pi`` is dropped (it repeats the
    first projection mirrored).

    Raises
    ------
    InputError
        When the angles do not cover 180 degrees to within 1.5 angular steps.
    """
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if theta.size < 3 or not np.all(np.isfinite(theta)):
        raise InputError(
            f"centre finding needs at least 3 finite angles, got {theta.size} "
            f"({np.count_nonzero(~np.isfinite(theta))} non-finite); fix the angle list"
        )
    order = np.argsort(theta, kind="stable")
    t = theta[order] - theta[order[0]]
    step = float(np.median(np.diff(t)))
    if step <= 0:
        raise InputError("the angles repeat (median step 0); give distinct rotation angles")
    keep = t < math.pi - 0.5 * step
    covered = float(t[keep][-1]) + step
    if covered < math.pi - 1.5 * step:
        raise InputError(
            f"the angles cover only {math.degrees(covered):.2f} degrees; Vo's centre method "
            "needs a half turn (180 degrees). Give the centre with --center FLOAT"
        )
    kept: np.ndarray = order[keep]
    return kept


def opposite_pair(theta: np.ndarray, *, max_error_deg: float | None = None) -> tuple[int, int]:
    """Indices ``(i, j)`` of the two projections closest to 180 degrees apart.

    Any pair qualifies, not only 0 and 180 degrees (e.g. -88.2 and 91.8 degrees); among
    equally good pairs the one with the lowest angle is taken.

    Parameters
    ----------
    theta : numpy.ndarray
        Angles in radians.
    max_error_deg : float, optional
        Largest tolerated deviation from 180 degrees; default the larger of 1.5 angular steps
        and 0.1 degree, at most 2 degrees.

    Raises
    ------
    InputError
        When no pair is within ``max_error_deg`` of 180 degrees apart.
    """
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if theta.size < 2 or not np.all(np.isfinite(theta)):
        raise InputError("registration needs at least two finite projection angles")
    order = np.argsort(theta, kind="stable")
    ts = theta[order]
    step = float(np.median(np.diff(ts))) if ts.size > 1 else 0.0
    if max_error_deg is None:
        max_error_deg = min(max(1.5 * math.degrees(step), 0.1), 2.0)
    # for every angle, the angle closest to it + pi (searchsorted: O(n log n)); the first of
    # equally good pairs (lowest angle) wins
    want = ts + math.pi
    k = np.clip(np.searchsorted(ts, want), 1, ts.size - 1)
    best = (math.inf, 0, 0)
    for cand in (k - 1, k):
        err = np.abs(ts[cand] - want)
        i = int(np.argmin(err))
        if err[i] < best[0]:
            best = (float(err[i]), int(order[i]), int(order[cand[i]]))
    err_deg = math.degrees(best[0])
    i, j = sorted((best[1], best[2]))
    if err_deg > max_error_deg:
        span = math.degrees(ts[-1] - ts[0])
        raise InputError(
            f"no two projections are 180 degrees apart (closest pair: {err_deg:.2f} degrees "
            f"off, angles span {span:.1f} degrees); registration needs a 0/180 degree pair. "
            "Use center_method='vo' (--center-method vo) or give --center FLOAT"
        )
    return i, j


# ----------------------------------------------------------------------------------------
# Vo et al. 2014


# ----------------------------------------------------------------------------------------
# registration


def _correlation_shift(ref: np.ndarray, moving: np.ndarray) -> float:
    """Column shift ``t`` with ``moving(x) ~ ref(x - t)``, to 1/100 pixel.

    Cross-correlation peak refined by a local upsampled DFT (factor 100; Guizar-Sicairos,
    Thurman & Fienup, Opt. Lett. 33, 156 (2008), via scikit-image). Plain (not phase-
    normalised) correlation is used: whitening the spectrum weights the aliased high
    frequencies of sharp edges and biases sub-pixel shifts by up to 0.13 px on analytic
    phantoms, against 0.04 px here. Means are removed; no window is applied, since a window
    fixed to the detector would weight the two mirrored images differently.
    """
    from skimage.registration import phase_cross_correlation

    a = ref - ref.mean()
    b = moving - moving.mean()
    shift, _, _ = phase_cross_correlation(a, b, upsample_factor=100, normalization=None)
    return -float(shift[-1])


def find_center_registration(proj0: np.ndarray, proj180: np.ndarray) -> float:
    """Centre of rotation by registering the 0 degree projection with the mirrored 180 one.

    A parallel-beam projection at 180 degrees is the 0 degree one mirrored about the
    rotation axis ``c``: ``p180(x) = p0(2c - x)``. Mirroring the detector gives
    ``p180(n - 1 - x) = p0(x - t)`` with ``t = n - 1 - 2c``; ``t`` is found by
    cross-correlation with sub-pixel refinement (Guizar-Sicairos et al., Opt. Lett. 33, 156 (2008)),
    the approach used for centring in Vo et al., Opt. Express 22, 19078 (2014), section 2.

    Parameters
    ----------
    proj0, proj180 : numpy.ndarray
        Two projections ``(row, col)`` or single rows ``(col,)`` 180 degrees apart, preferably
        attenuation (after flat/dark normalisation and ``-log``).

    Returns
    -------
    float
        Centre in 0-based pixel coordinates (pixel i centred at i).
    """
    a = np.asarray(proj0, dtype=np.float64)
    b = np.asarray(proj180, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(
            f"the 0 and 180 degree projections have shapes {a.shape} and {b.shape}; "
            "they must be equal"
        )
    if a.ndim == 1:
        a, b = a[None, :], b[None, :]
    if a.ndim != 2:
        raise InputError(f"projections must be (row, col) or (col,), got shape {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("the projections hold NaN/inf; normalise them with preprocess_block")
    n = int(a.shape[1])
    t = _correlation_shift(a, b[:, ::-1])
    return (n - 1 - t) / 2.0


# ----------------------------------------------------------------------------------------
# on a scan dataset


def _default_rows(n_rows: int, per_slice: bool) -> np.ndarray:
    if per_slice:
        return np.arange(n_rows)
    return np.unique(np.round(np.linspace(0.25, 0.75, 3) * (n_rows - 1)).astype(int))


def _attenuation(scan: xr.Dataset, angles: np.ndarray | slice, rows: np.ndarray,
                 config: PreprocessConfig) -> np.ndarray:
    """Normalised, -log'd, stripe-filtered block (angle, row, col) of the chosen rows."""
    from .chain import preprocess_block

    proj = np.asarray(scan["projections"].isel(angle=angles, row=rows).values)
    flat = dark = None
    if "flat" in scan and "dark" in scan:
        flat = np.asarray(scan["flat"].isel(row=rows).values)
        dark = np.asarray(scan["dark"].isel(row=rows).values)
    # rows may be far apart: no filter that couples rows (the median, Paganin) here
    att, _ = preprocess_block(proj, flat, dark, replace(config, projection_median=0,
                                                        paganin=False))
    return att


def find_center(
    scan: xr.Dataset, config: PreprocessConfig, rows: np.ndarray | list[int] | None = None
) -> float | np.ndarray:
    """Centre of rotation of a scan dataset, global or per detector row.

    A float ``config.center`` is returned as given (the ``--center`` override). Otherwise
    the chosen rows are read (lazily, only those rows), normalised with
    :func:`~tomochunk.preprocess.preprocess_block` (no projection median) and searched with
    ``config.center_method``:

    * ``vo``: :func:`find_center_vo` on each row's sinogram;
    * ``registration``: :func:`find_center_registration` of the two projections closest to
      180 degrees apart (:func:`opposite_pair`), on all chosen rows together (global) or
      row by row (per slice).

    Parameters
    ----------
    scan : xarray.Dataset
        ``projections(angle, row, col)``, optional ``flat(flat, row, col)`` and
        ``dark(dark, row, col)``, coordinate ``theta(angle)`` in radians.
    config : PreprocessConfig
        ``center``, ``center_method``, ``center_per_slice`` and the normalisation settings.
    rows : sequence of int, optional
        Detector rows to use. Default: every row when ``center_per_slice``, else three rows
        at 25, 50 and 75 % of the height (fewer for short detectors) for ``vo``, and up to
        64 central rows for ``registration``.

    Returns
    -------
    float or numpy.ndarray
        The global centre (median over the rows) or, with ``center_per_slice``, one centre
        per requested row.
    """
    if config.center != "auto":
        return float(config.center)
    for name in ("projections", "theta"):
        if name not in scan.variables:
            raise InputError(f"the scan dataset has no {name!r}; open it with tc.open_scan")
    n_rows = scan.sizes["row"]
    if rows is None:
        if config.center_method == "registration" and not config.center_per_slice:
            half = min(n_rows, 64) // 2
            rows = np.arange(n_rows // 2 - half, n_rows // 2 - half + min(n_rows, 64))
        else:
            rows = _default_rows(n_rows, config.center_per_slice)
    rows = np.asarray(rows, dtype=int).ravel()
    if rows.size == 0 or rows.min() < 0 or rows.max() >= n_rows:
        raise InputError(f"rows {rows.tolist()} are outside the detector's 0..{n_rows - 1}")
    theta = np.asarray(scan["theta"].values, dtype=np.float64)

    if config.center_method == "registration":
        i, j = opposite_pair(theta)
        att = _attenuation(scan, np.array([i, j]), rows, config)
        if config.center_per_slice:
            return np.array([find_center_registration(att[0, r], att[1, r])
                             for r in range(rows.size)])  # two projections: fits memory
        center = find_center_registration(att[0], att[1])
        _log.info("centre %.2f by 0/180 registration of projections %d and %d", center, i, j)
        return center
    if config.center_method != "vo":
        raise InputError(f"unknown centre method {config.center_method!r}; use vo or registration")

    idx = np.sort(half_turn_indices(theta))
    centers = np.empty(rows.size)
    # read and normalise a few rows at a time, so that every row of a large scan fits memory
    starts = range(0, rows.size, _ROWS_PER_READ)
    quiet = len(starts) < 2 or not progress_enabled()
    for s in tqdm(starts, desc="centre (Vo)", total=len(starts), disable=quiet):
        att = _attenuation(scan, idx, rows[s : s + _ROWS_PER_READ], config)
        for r in range(att.shape[1]):
            centers[s + r] = find_center_vo(att[:, r, :], theta=theta[idx])
    if config.center_per_slice:
        return centers
    center = float(np.median(centers))
    _log.info("centre %.2f by Vo's method (rows %s: %s)", center, rows.tolist(),
              np.round(centers, 2).tolist())
    return center
