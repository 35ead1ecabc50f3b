"""Centre of rotation: Vo's Fourier metric and 0/180 degree registration.

Convention: the centre is a 0-based detector pixel coordinate with pixel ``i`` centred at
``i``, so a perfectly centred detector of ``n`` columns has its centre at ``(n - 1) / 2``.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import fft as sp_fft
from scipy import ndimage

from ..config import PreprocessConfig, replace
from ..errors import InputError
from ..progress import get_logger, progress_enabled, tqdm

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
    return order[keep]


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


def _vo_mask(n_rows: int, n_cols: int, radius: float, drop: int) -> np.ndarray:
    """Weighted double-wedge mask of the Fourier region a correct 360 degree sinogram leaves empty.

    In the 2D spectrum of a 360 degree sinogram, harmonic ``k`` of the angle (``n_rows`` rows
    over 2 pi) and frequency ``j / n_cols`` of the detector carry energy only where
    ``|k| <= 2 pi r |j| / n_cols`` for an object of radius ``r`` pixels. The mask selects the
    complement, ``|j| <= |k| n_cols / (2 pi r)``, without the lowest ``drop`` harmonics and the
    three central columns (offsets, drifts). It is laid out like ``scipy.fft.rfft2`` output
    (non-negative ``j`` only) and weighted by 2 where ``-j`` is a separate, mirrored
    frequency, so that its sum over an ``rfft2`` magnitude equals the sum over the full plane.
    """
    k = np.abs(np.fft.fftfreq(n_rows) * n_rows)
    j = np.arange(n_cols // 2 + 1)
    limit = np.ceil(k * n_cols / (2.0 * math.pi * radius))
    mask = j[None, :] <= limit[:, None]
    mask[k <= drop, :] = False
    mask[:, j <= 1] = False
    weight = np.full(j.size, 2.0, dtype=np.float32)
    weight[0] = 1.0
    if n_cols % 2 == 0:
        weight[-1] = 1.0
    return mask * weight[None, :] / float(n_rows * n_cols)


def _shift_cols(img: np.ndarray, shift: float) -> np.ndarray:
    """Shift ``img`` along columns by ``shift`` pixels (edges repeated).

    Fractional shifts use cubic-spline interpolation: linear interpolation would low-pass the
    mirrored half at half-pixel shifts, lower its Fourier energy and bias the metric toward
    them.
    """
    if shift == int(shift):
        s = int(shift)
        if s == 0:
            return img
        out = np.empty_like(img)
        if s > 0:
            out[:, s:] = img[:, :-s]
            out[:, :s] = img[:, :1]
        else:
            out[:, :s] = img[:, -s:]
            out[:, s:] = img[:, -1:]
        return out
    return ndimage.shift(img, (0.0, shift), order=3, mode="nearest")


def _vo_metrics(sino: np.ndarray, centers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked Fourier energy of the 360 degree sinogram built for each candidate centre."""
    n_cols = sino.shape[1]
    flipped = sino[:, ::-1]
    mid = (n_cols - 1) / 2.0
    out = np.empty(len(centers))
    for idx, c in enumerate(centers):
        # the mirrored half turn of an axis at c equals the flipped sinogram moved by 2(c-mid)
        second = _shift_cols(flipped, 2.0 * (c - mid))
        full = np.concatenate([sino, second], axis=0)
        out[idx] = float(np.sum(np.abs(sp_fft.rfft2(full)) * mask))
    return out


def find_center_vo(
    sino: np.ndarray,
    *,
    theta: np.ndarray | None = None,
    smin: float = -40,
    smax: float = 40,
    step: float = 0.25,
    srad: float = 1.0,
    ratio: float = 0.5,
    drop: int = 20,
    smooth: bool = True,
) -> float:
    """Centre of rotation of one sinogram by Vo's Fourier metric.

    Vo, Drakopoulos, Atwood & Reinhard, "Reliable method for calculating the center of
    rotation in parallel-beam tomography", Opt. Express 22, 19078-19086 (2014).

    The half-turn sinogram and its left-right mirror, moved to a candidate axis, are stacked
    into a 360 degree sinogram. For the true axis this is a consistent sinogram whose 2D
    spectrum is empty inside a double wedge (see :func:`_vo_mask`); the candidate with the
    least energy there is the centre. A coarse search in steps of 1 pixel over
    ``[smin, smax]`` is followed by a fine search in steps of ``step`` within ``srad`` pixels.

    Parameters
    ----------
    sino : numpy.ndarray
        One sinogram ``(angle, col)`` of attenuation (after ``-log``).
    theta : numpy.ndarray, optional
        Angles in radians. When given, the projections of the first half turn are used
        (:func:`half_turn_indices`); when omitted the rows must cover ``[0, pi)`` evenly.
    smin, smax : float
        Search range of the centre relative to the detector middle ``(n - 1) / 2``, in pixels.
        (TomoPy's ``find_center_vo`` counts the shift of the mirrored sinogram, twice this.)
        The range is clipped so that at least half of the detector overlaps.
    step : float
        Resolution of the fine search, in pixels.
    srad : float
        Half-width of the fine search around the coarse result, in pixels.
    ratio : float
        Expected object diameter as a fraction of the detector width (sets the wedge).
    drop : int
        Lowest angular harmonics left out of the metric (capped at 5 % of the rows).
    smooth : bool
        Smooth the sinogram (Gaussian sigma 3 along angles, 1 along columns) before the
        coarse search, as in Vo's implementation, to suppress noise.

    Returns
    -------
    float
        Centre in 0-based pixel coordinates (pixel i centred at i).
    """
    sino = np.asarray(sino, dtype=np.float32)
    if sino.ndim == 3 and sino.shape[1] == 1:
        sino = sino[:, 0, :]
    if sino.ndim != 2:
        raise InputError(f"find_center_vo needs one sinogram (angle, col), got shape {sino.shape}")
    if not np.all(np.isfinite(sino)):
        raise InputError(
            f"the sinogram holds {np.count_nonzero(~np.isfinite(sino))} non-finite values; "
            "preprocess it (preprocess_block) before finding the centre"
        )
    if smin > smax:
        raise InputError(f"smin ({smin}) must not exceed smax ({smax})")
    if not (step > 0 and srad >= 0 and ratio > 0):
        raise InputError(
            f"find_center_vo needs step > 0, srad >= 0 and ratio > 0, got step={step}, "
            f"srad={srad}, ratio={ratio}"
        )
    if theta is not None:
        theta = np.asarray(theta).ravel()
        if theta.size != sino.shape[0]:
            raise InputError(
                f"{theta.size} angles for a sinogram of {sino.shape[0]} projections; "
                "give one angle per projection"
            )
        sino = sino[half_turn_indices(theta)]
    n_ang, n_cols = sino.shape
    mid = (n_cols - 1) / 2.0
    reach = n_cols / 4.0
    lo, hi = max(float(smin), -reach), min(float(smax), reach)
    if lo > hi:
        raise InputError(
            f"the centre search range [{smin}, {smax}] (pixels from the detector middle) lies "
            f"outside the +/-{reach:.1f} pixels this detector allows; widen smin/smax or give "
            "the centre with --center FLOAT"
        )

    drop = int(min(drop, math.ceil(0.05 * 2 * n_ang)))
    mask = _vo_mask(2 * n_ang, n_cols, 0.5 * ratio * n_cols, drop)

    coarse_sino = ndimage.gaussian_filter(sino, (3, 1)) if smooth else sino
    # long scans: the coarse search does not need every angle (columns are kept as they are)
    every = max(1, n_ang // 360)
    if every > 1:
        coarse_sino = coarse_sino[::every]
        coarse_mask = _vo_mask(2 * coarse_sino.shape[0], n_cols, 0.5 * ratio * n_cols,
                               int(min(drop, math.ceil(0.1 * coarse_sino.shape[0]))))
    else:
        coarse_mask = mask
    coarse = mid + np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=np.float64)
    c0 = float(coarse[np.argmin(_vo_metrics(coarse_sino, coarse, coarse_mask))])

    n_fine = int(round(srad / step))
    fine = c0 + step * np.arange(-n_fine, n_fine + 1)
    fine = fine[(fine >= mid + lo - 0.5) & (fine <= mid + hi + 0.5)]
    metric = _vo_metrics(sino, fine, mask)
    return float(fine[np.argmin(metric)])


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
    n = a.shape[1]
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
