"""The geometry of the gridding FBP: centres, angular weights, grid origin, circle mask.

Everything of one angle set that all slices of a block share (:class:`_Geometry`: padding,
filter, cropped length, NUFFT points and the weight and grid-origin factors), and the small
geometry helpers the other reconstructors use too. The conventions are described in
:mod:`tomochunk.recon.gridrec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from ..errors import ConfigError, InputError
from .filters import fourier_filter

__all__ = ["angle_weights", "check_finite", "circle_mask", "default_center", "grid_origin"]

def check_finite(sino: np.ndarray, row_offset: int = 0) -> None:
    """Raise :class:`InputError` naming the detector rows of a sinogram block with NaN/inf."""
    finite = np.isfinite(sino)
    if not finite.all():
        rows = np.nonzero(~finite.all(axis=(0, 2)))[0] + row_offset
        text = ", ".join(str(int(r)) for r in rows[:20]) + (" ..." if rows.size > 20 else "")
        raise InputError(
            f"the sinogram has NaN/inf values in detector row(s) {text}; in-fill or crop "
            "them before reconstruction (tomochunk.preprocess.preprocess_block does this)"
        )


def default_center(n_det: int, tomopy_convention: bool = False) -> float:
    """The centre used when none is given: the detector middle in each convention."""
    return n_det / 2.0 if tomopy_convention else (n_det - 1) / 2.0


def angle_weights(theta: np.ndarray) -> np.ndarray:
    """Angular quadrature weights ``w_theta`` of filtered backprojection.

    Each angle gets half the distance to its two neighbours modulo ``pi`` (projections at
    ``theta`` and ``theta + pi`` carry the same line integrals), so equally spaced angles over
    ``[0, pi)`` get ``pi / n`` each, interleaved subsets of them get ``pi / (n / K)``, and
    360-degree scans are weighted correctly. A gap wider than three times the median spacing
    (a missing wedge) counts as one median spacing.

    Parameters
    ----------
    theta : ndarray, shape (n_angles,)
        Angles in radians.

    Returns
    -------
    ndarray, shape (n_angles,)
        float64 weights that sum to about ``pi``.
    """
    theta = np.asarray(theta, dtype=np.float64)
    n = theta.size
    if n == 0:
        raise InputError("no projection angles given")
    if n == 1:
        return np.array([np.pi])
    t = np.mod(theta, np.pi)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    gaps = np.diff(np.append(ts, ts[0] + np.pi))
    median = float(np.median(gaps))
    if median > 0:
        gaps = np.where(gaps > 3.0 * median, median, gaps)
    w_sorted = 0.5 * (gaps + np.roll(gaps, 1))
    w = np.empty(n)
    w[order] = w_sorted
    return w


def grid_origin(n: int, tomopy_convention: bool = False) -> tuple[float, float]:
    """Pixel (row, col) of an ``n x n`` slice where the rotation axis lies.

    ``((n - 1) / 2, (n - 1) / 2)`` -- the middle -- by default; ``(n // 2 - 1, n // 2)`` with
    ``tomopy_convention`` (fitted to TomoPy's stored gridrec outputs, see
    :mod:`tomochunk.recon.gridrec`).
    """
    if tomopy_convention:
        return float(n // 2 - 1), float(n // 2)
    return (n - 1) / 2.0, (n - 1) / 2.0


def circle_mask(n: int, *, tomopy_convention: bool = False) -> np.ndarray:
    """Boolean ``(n, n)`` mask of the pixels within ``n / 2`` of the rotation axis."""
    cy, cx = grid_origin(n, tomopy_convention)
    y = np.arange(n) - cy
    x = np.arange(n) - cx
    return (y[:, None] ** 2 + x[None, :] ** 2) <= (n / 2.0) ** 2


def _odd_fast_len(target: int) -> int:
    """The smallest odd 3-5-7-smooth integer >= ``target`` (fast FFT length)."""
    n = max(int(target), 1)
    n += 1 - n % 2
    while True:
        m = n
        for p in (3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 2


@dataclass
class _Geometry:
    """Everything about one angle set that all slices of a block share."""

    n: int  # output side
    m_pad: int  # padded row length
    offset: int  # first detector pixel inside the padded row
    length: int  # cropped, odd length L of the filtered projections
    filt: np.ndarray  # (m_pad // 2 + 1,) float32 filter
    x1: np.ndarray  # NUFFT coordinates along axis 0 (rows)
    x2: np.ndarray  # NUFFT coordinates along axis 1 (cols)
    factor: np.ndarray  # (n_angles, L) complex64: weights, 1/L and grid-origin phase


def _geometry(
    n_det: int,
    theta: np.ndarray,
    *,
    n: int,
    filter: str,
    cutoff: float,
    order: int,
    pad: str,
    circle: bool,
    tomopy_convention: bool,
) -> _Geometry:
    if pad == "none":
        m_pad = n_det
        offset = 0
    elif pad == "zero":
        m_pad = sfft.next_fast_len(2 * n_det, real=True)
        offset = 0
    elif pad == "edge":
        m_pad = sfft.next_fast_len(2 * n_det, real=True)
        offset = (m_pad - n_det) // 2
    else:
        raise ConfigError(f"unknown padding {pad!r}; valid values are: zero, edge, none")
    filt = fourier_filter(filter, m_pad, cutoff, order, tomopy_windows=tomopy_convention)

    # Half-extent of the projections of the output pixels, plus a margin for the
    # band-limited interpolation near the periodic boundary.
    reach = (n - 1) / 2.0 + 1.0 if circle else (n - 1) / np.sqrt(2.0) + 1.0
    length = _odd_fast_len(int(np.ceil(2 * reach)) + 8)
    max_len = m_pad if m_pad % 2 else m_pad - 1
    length = min(length, max_len)

    freqs = np.fft.fftfreq(length).astype(np.float32)  # cycles/pixel, symmetric for odd L
    cos = np.cos(theta).astype(np.float32)[:, None]
    sin = np.sin(theta).astype(np.float32)[:, None]
    # image[row, col]: x = col - cx, y_up = cy - row; s = x cos + y_up sin.
    # finufft's integer modes are index - n // 2, so the grid origin adds a phase.
    cy, cx = grid_origin(n, tomopy_convention)
    ox, oy = n // 2 - cx, n // 2 - cy
    two_pi_w = np.float32(2.0 * np.pi) * freqs[None, :]
    x2 = (two_pi_w * cos).ravel()
    x1 = (-two_pi_w * sin).ravel()
    weights = (angle_weights(theta) / length).astype(np.float32)[:, None]
    if ox == 0 and oy == 0:
        factor = np.broadcast_to(weights, (theta.size, length)).astype(np.complex64)
    else:
        arg = two_pi_w * (cos * np.float32(ox) - sin * np.float32(oy))
        factor = np.empty((theta.size, length), dtype=np.complex64)
        factor.real = weights * np.cos(arg)
        factor.imag = weights * np.sin(arg)
    return _Geometry(
        n=n,
        m_pad=m_pad,
        offset=offset,
        length=length,
        filt=filt.astype(np.float32),
        x1=x1,
        x2=x2,
        factor=factor,
    )
