"""Centre of rotation by Vo's Fourier metric (Vo et al. 2014, Opt. Express 22, 19078)."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage

from ..errors import InputError

__all__ = ["find_center_vo"]


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
    weighted: np.ndarray = mask * weight[None, :] / float(n_rows * n_cols)
    return weighted


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
    shifted: np.ndarray = ndimage.shift(img, (0.0, shift), order=3, mode="nearest")
    return shifted


def _vo_metrics(sino: np.ndarray, centers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked Fourier energy of the 360 degree sinogram built for each candidate centre."""
    n_ang, n_cols = sino.shape
    flipped = sino[:, ::-1]
    mid = (n_cols - 1) / 2.0
    out = np.empty(len(centers))
    for idx, c in enumerate(centers):
        # the mirrored half turn of an axis at c equals the flipped sinogram moved by 2(c-mid)
        second = _shift_cols(flipped, 2.0 * (c - mid))
        full = np.concatenate([sino, second], axis=0)
        out[idx] = float(np.sum(np.abs(sp_fft.rfft2(full)) * mask))
    return out


def _checked_sinogram(sino: np.ndarray, theta: np.ndarray | None, smin: float, smax: float,
                      step: float, srad: float, ratio: float) -> np.ndarray:
    """The half-turn sinogram ``(angle, col)`` as float32, after checking every argument."""
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
        from .center import half_turn_indices

        sino = sino[half_turn_indices(theta)]
    return sino


def _coarse_centre(sino: np.ndarray, mask: np.ndarray, mid: float, lo: float, hi: float,
                   ratio: float, drop: int, smooth: bool) -> float:
    """The best centre on the whole-pixel grid ``mid + [lo, hi]``."""
    n_ang, n_cols = sino.shape
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
    return float(coarse[np.argmin(_vo_metrics(coarse_sino, coarse, coarse_mask))])


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
        (:func:`~tomochunk.preprocess.center.half_turn_indices`); when omitted the rows must
        cover ``[0, pi)`` evenly.
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
    sino = _checked_sinogram(sino, theta, smin, smax, step, srad, ratio)
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
    c0 = _coarse_centre(sino, mask, mid, lo, hi, ratio, drop, smooth)
    n_fine = int(round(srad / step))
    fine = c0 + step * np.arange(-n_fine, n_fine + 1)
    fine = fine[(fine >= mid + lo - 0.5) & (fine <= mid + hi + 0.5)]
    metric = _vo_metrics(sino, fine, mask)
    return float(fine[np.argmin(metric)])
