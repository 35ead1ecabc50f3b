"""Line profiles in any orientation and Gaussian fits of their peaks (FWHM with uncertainty).

Flenner et al. (2022, Fig. 5) fit a Gaussian to each peak of a line profile across the fine
periodic structure of a butterfly scale and report the mean FWHM (200 +/- 60 nm raw,
240 +/- 30 nm ML, 310 +/- 80 nm NLM): the width a filter adds is its loss of resolution.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage, optimize, signal

from ..errors import InputError

__all__ = [
    "FWHM_PER_SIGMA",
    "PeakFit",
    "line_profile",
    "fit_peaks",
    "summarize_fwhm",
]

#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class PeakFit:
    """One Gaussian(+offset) fit ``offset + amplitude * exp(-(d - center)^2 / (2 sigma^2))``.

    Every ``*_err`` is the one-standard-deviation uncertainty from the fit covariance.
    Distances are in the units of the profile's distance axis.
    """

    center: float
    center_err: float
    amplitude: float
    amplitude_err: float
    sigma: float
    sigma_err: float
    offset: float
    offset_err: float

    @property
    def fwhm(self) -> float:
        """Full width at half maximum, ``2 sqrt(2 ln 2) sigma``."""
        return FWHM_PER_SIGMA * abs(self.sigma)

    @property
    def fwhm_err(self) -> float:
        """Uncertainty of the FWHM, ``2 sqrt(2 ln 2) sigma_err``."""
        return FWHM_PER_SIGMA * self.sigma_err

    def to_dict(self) -> dict[str, float]:
        """Plain dict including ``fwhm`` and ``fwhm_err``."""
        d = asdict(self)
        d.update(fwhm=self.fwhm, fwhm_err=self.fwhm_err)
        return d


def _bounds_error(pt: np.ndarray, shape: tuple[int, ...], which: str) -> InputError:
    return InputError(
        f"the profile's {which} point {tuple(float(v) for v in pt)} lies outside the "
        f"{'volume' if len(shape) == 3 else 'image'} of shape {shape} (valid index range is "
        f"0 .. n-1 on every axis); choose points inside it"
    )


def line_profile(
    vol_or_img: Any,
    start: Sequence[float] | np.ndarray,
    end: Sequence[float] | np.ndarray,
    num: int | None = None,
    order: int = 1,
    *,
    pixel_size: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample values along a straight segment in any orientation, with interpolation.

    Points are index coordinates, ``(y, x)`` for an image or ``(z, y, x)`` for a volume, so
    a profile in a ``yz`` view is simply one with a constant ``x``. Values are interpolated
    with :func:`scipy.ndimage.map_coordinates` (spline ``order``, 1 = linear). Only the
    bounding box of the segment is read, so a lazy (Dask/xarray) volume is not loaded whole.

    Parameters
    ----------
    vol_or_img : array_like, 2D or 3D (numpy, Dask or xarray)
    start, end : sequence of float
        End points of the segment, one coordinate per axis.
    num : int, optional
        Number of samples (default: one per pixel of length, ``ceil(length) + 1``).
    order : int
        Spline order of the interpolation (0-5).
    pixel_size : float, optional
        Size of a pixel; the distance axis is then physical (same unit) instead of pixels.

    Returns
    -------
    distance, values : numpy.ndarray
        Distance from ``start`` along the segment, and the interpolated values.

    Raises
    ------
    InputError
        If the points do not match the dimensionality or lie outside the array, or the
        segment has zero length.
    """
    shape = tuple(int(s) for s in vol_or_img.shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise InputError(f"line_profile needs a 2D image or 3D volume, got shape {shape}")
    p0 = np.asarray(start, dtype=float)
    p1 = np.asarray(end, dtype=float)
    if p0.shape != (ndim,) or p1.shape != (ndim,):
        raise InputError(
            f"start and end must have {ndim} coordinates for an array of shape {shape} "
            f"({'(z, y, x)' if ndim == 3 else '(y, x)'}), got {tuple(p0)} and {tuple(p1)}"
        )
    for pt, which in ((p0, "start"), (p1, "end")):
        if not np.all(np.isfinite(pt)) or np.any(pt < 0) or np.any(pt > np.array(shape) - 1):
            raise _bounds_error(pt, shape, which)
    length = float(np.linalg.norm(p1 - p0))
    if length == 0:
        raise InputError("the profile's start and end points coincide; give a segment")
    if num is None:
        num = int(math.ceil(length)) + 1
    if num < 2:
        raise InputError(f"num must be >= 2, got {num}")
    t = np.linspace(0.0, 1.0, num)
    pts = p0[:, None] + (p1 - p0)[:, None] * t[None, :]
    # read only the bounding box (with a margin for the spline support)
    margin = order + 1
    lo = np.maximum(np.floor(pts.min(axis=1)).astype(int) - margin, 0)
    hi = np.minimum(np.ceil(pts.max(axis=1)).astype(int) + margin + 1, np.array(shape))
    box = np.asarray(vol_or_img[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))],
                     dtype=np.float64)
    values = ndimage.map_coordinates(box, pts - lo[:, None], order=order, mode="nearest")
    distance = t * length * (pixel_size if pixel_size is not None else 1.0)
    return distance, values


def _gauss(d: np.ndarray, center: float, amp: float, sigma: float, off: float) -> np.ndarray:
    return off + amp * np.exp(-0.5 * ((d - center) / sigma) ** 2)


def _fit_one(d: np.ndarray, v: np.ndarray, c0: float, sign: float, step: float) -> PeakFit | None:
    """Bounded least-squares fit in one window; None if it fails or the peak is unresolved."""
    if d.size < 5:
        return None
    span = float(d[-1] - d[0])
    rng = float(np.ptp(v)) or 1.0
    off0 = float(np.min(v * sign)) * sign
    amp0 = float(np.interp(c0, d, v)) - off0
    if amp0 * sign <= 0:
        amp0 = sign * rng
    above = np.abs(v - off0) >= abs(amp0) / 2.0
    s0 = float(np.clip(above.sum() * step / FWHM_PER_SIGMA, step, span / 2))
    amp_lo, amp_hi = (0.0, 3 * rng) if sign > 0 else (-3 * rng, 0.0)
    lower = [d[0], amp_lo, step / 4, float(v.min()) - rng]
    upper = [d[-1], amp_hi, span / 2, float(v.max()) + rng]
    p0 = np.clip([c0, amp0, s0, off0], np.add(lower, 1e-12 * rng), np.subtract(upper, 1e-12 * rng))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            popt, pcov = optimize.curve_fit(_gauss, d, v, p0=p0, bounds=(lower, upper),
                                            maxfev=4000)
    except (RuntimeError, ValueError):
        return None
    err = np.sqrt(np.clip(np.diag(pcov), 0, None))
    if not np.all(np.isfinite(err)) or popt[1] * sign <= 0:
        return None
    if FWHM_PER_SIGMA * popt[2] > span:  # wider than its window: not a resolved peak
        return None
    return PeakFit(float(popt[0]), float(err[0]), float(popt[1]), float(err[1]),
                   float(abs(popt[2])), float(err[2]), float(popt[3]), float(err[3]))


def _profile(distance: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(distance, values)`` as float arrays, checked: 1D, same length >= 5, increasing."""
    d = np.asarray(distance, dtype=float)
    v = np.asarray(values, dtype=float)
    if d.ndim != 1 or d.shape != v.shape or d.size < 5:
        raise InputError(
            f"distance and values must be 1D of the same length >= 5, got {d.shape} and {v.shape}"
        )
    if not np.all(np.diff(d) > 0):
        raise InputError("distance must be strictly increasing")
    return d, v


def fit_peaks(
    distance: Any,
    values: Any,
    *,
    peaks: Sequence[float] | None = None,
    polarity: str = "max",
    prominence: float | None = None,
    window: float | None = None,
    max_peaks: int | None = None,
) -> list[PeakFit]:
    """Fit a Gaussian plus constant offset to each peak of a profile.

    Peaks are found with :func:`scipy.signal.find_peaks` (minimum ``prominence``, default
    half the standard deviation of the profile), or given as positions ``peaks`` (in
    distance units; use the peaks of a clean reference profile to fit every method at the
    same features). Each peak is fitted by least squares
    (:func:`scipy.optimize.curve_fit`) on a window around it reaching halfway to the
    neighbouring peaks (or ``window`` wide). ``FWHM = 2 sqrt(2 ln 2) sigma`` and its
    uncertainty comes from the covariance of the fit. Fits that fail or give a peak of the
    wrong sign are dropped.

    Parameters
    ----------
    distance, values : array_like, 1D
        Profile, e.g. from :func:`line_profile`; ``distance`` increasing.
    peaks : sequence of float, optional
        Peak positions to fit instead of detecting them.
    polarity : {"max", "min"}
        Fit bright peaks (maxima) or dark ones (minima, negative amplitude).
    prominence : float, optional
        Minimum prominence of detected peaks.
    window : float, optional
        Full width of the fit window around each peak, in distance units.
    max_peaks : int, optional
        Keep only the most prominent detected peaks.

    Returns
    -------
    list of PeakFit
        Sorted by position.
    """
    d, v = _profile(distance, values)
    if polarity not in ("max", "min"):
        raise InputError(f"polarity must be 'max' or 'min', got {polarity!r}")
    sign = 1.0 if polarity == "max" else -1.0
    step = float(np.median(np.diff(d)))
    if peaks is None:
        prom = 0.5 * float(np.std(v)) if prominence is None else prominence
        idx, props = signal.find_peaks(sign * v, prominence=prom)
        if max_peaks is not None and idx.size > max_peaks:
            keep = np.sort(np.argsort(props["prominences"])[::-1][:max_peaks])
            idx = idx[keep]
        centers = d[idx]
    else:
        centers = np.sort(np.asarray(peaks, dtype=float))
        if centers.size and (centers.min() < d[0] or centers.max() > d[-1]):
            raise InputError(
                f"peak positions must lie within the profile [{d[0]:g}, {d[-1]:g}], "
                f"got {centers.min():g} .. {centers.max():g}"
            )
    fits = []
    for i, c in enumerate(centers):
        if window is not None:
            lo, hi = c - window / 2, c + window / 2
        else:
            lo = (centers[i - 1] + c) / 2 if i > 0 else c - (centers[1] - c if centers.size > 1
                                                             else d[-1] - d[0]) / 2
            hi = (centers[i + 1] + c) / 2 if i + 1 < centers.size else c + (
                c - centers[i - 1] if i > 0 else d[-1] - d[0]) / 2
        sel = (d >= lo) & (d <= hi)
        fit = _fit_one(d[sel], v[sel], float(c), sign, step)
        if fit is not None:
            fits.append(fit)
    return fits


def summarize_fwhm(fits: Sequence[PeakFit]) -> dict[str, float | int | None]:
    """Mean and spread of the FWHMs of several peaks, as reported in Flenner et al. (2022).

    Returns ``{"fwhm": mean, "fwhm_std": standard deviation over peaks (ddof=1; 0 for one
    peak), "fwhm_err": mean fit uncertainty, "n_peaks": n}``; ``None`` values without fits.
    """
    if not fits:
        return {"fwhm": None, "fwhm_std": None, "fwhm_err": None, "n_peaks": 0}
    w = np.array([f.fwhm for f in fits])
    e = np.array([f.fwhm_err for f in fits])
    return {
        "fwhm": float(w.mean()),
        "fwhm_std": float(w.std(ddof=1)) if w.size > 1 else 0.0,
        "fwhm_err": float(e.mean()),
        "n_peaks": int(w.size),
    }
