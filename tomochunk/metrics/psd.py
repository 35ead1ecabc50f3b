"""One-dimensional power spectral density of an image region (Flenner et al. 2022, Fig. 6).

The PSD shows which spatial frequencies a filter suppresses: local filters (median, NLM)
remove high frequencies, a CNN can also remove low-frequency haze, and the peaks of a
periodic structure should survive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import signal

from ..errors import InputError

__all__ = ["psd_1d", "peak_frequency"]


def psd_1d(
    region: Any,
    pixel_size: float | None = None,
    window: str | None = "hann",
    *,
    detrend: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean one-sided periodogram of the rows of a region.

    For each row ``r`` (the last axis; every leading axis counts as rows) with ``n`` samples
    spaced ``d`` apart, window ``w`` and mean removed (``detrend``)::

        P_r(f_k) = c_k * d * |sum_j w_j r_j exp(-2 pi i j k / n)|^2 / sum_j w_j^2

    with ``f_k = k / (n d)`` for ``k = 0 .. n//2`` and ``c_k = 2`` except at zero and Nyquist
    frequency (``c_k = 1``); the result is the mean of ``P_r`` over rows. This is
    :func:`scipy.signal.periodogram` with ``scaling="density"``, so the integral of the PSD
    over frequency equals the variance of the (windowed) rows (Parseval).

    Parameters
    ----------
    region : array_like, 1D, 2D or 3D
        Grey values; rows run along the last axis (use ``region.T`` for columns).
    pixel_size : float, optional
        Pixel size ``d`` in nanometres: frequencies are then in 1/nm, else in cycles/pixel.
    window : str or None
        A :func:`scipy.signal.get_window` name ("hann", "hamming", ...) or None (boxcar).
    detrend : bool
        Subtract each row's mean first, so the zero-frequency term does not dominate.

    Returns
    -------
    freq, psd : numpy.ndarray
        Frequencies (cycles/pixel or 1/nm) and the mean PSD (value^2 x pixel or x nm).
    """
    a = np.asarray(region, dtype=np.float64)
    if a.ndim not in (1, 2, 3):
        raise InputError(f"psd_1d needs a 1D, 2D or 3D region, got shape {a.shape}")
    if a.shape[-1] < 4:
        raise InputError(
            f"rows of {a.shape[-1]} samples are too short for a spectrum; use >= 4 columns"
        )
    if not np.all(np.isfinite(a)):
        raise InputError("the region contains non-finite values; crop them away first")
    if pixel_size is not None and not pixel_size > 0:
        raise InputError(f"pixel_size must be positive, got {pixel_size}")
    rows = a.reshape(-1, a.shape[-1])
    fs = 1.0 / pixel_size if pixel_size is not None else 1.0
    freq, p = signal.periodogram(
        rows, fs=fs, window=window if window is not None else "boxcar",
        detrend="constant" if detrend else False, scaling="density", axis=-1,
    )
    return freq, p.mean(axis=0)


def peak_frequency(freq: Any, psd: Any, fmin: float = 0.0) -> float:
    """Frequency of the largest PSD value above ``fmin`` (excluding zero frequency)."""
    f = np.asarray(freq)
    p = np.asarray(psd)
    sel = (f > max(fmin, 0.0))
    if not sel.any():
        raise InputError(f"no frequency above fmin={fmin}")
    return float(f[sel][np.argmax(p[sel])])
