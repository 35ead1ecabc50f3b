"""Stripe (ring-artifact) removal on sinograms: Fourier-wavelet and sorting-based methods.

Both functions take a block of sinograms ``(angle, row, col)`` (or one sinogram
``(angle, col)``) and treat every detector row independently, so the result of a block does
not depend on how the detector was cut into blocks.
"""

from __future__ import annotations

import math

import numpy as np
import pywt

from ..errors import InputError

__all__ = ["remove_stripe_fw", "remove_stripe_sorting", "fw_level"]


def _as_block(sino_block: np.ndarray) -> tuple[np.ndarray, bool]:
    a = np.asarray(sino_block)
    if a.ndim == 2:
        return a[:, None, :], True
    if a.ndim != 3:
        raise InputError(
            f"a sinogram block must be (angle, row, col) or (angle, col), got shape {a.shape}"
        )
    return a, False


def fw_level(n_angles: int, n_cols: int) -> int:
    """Default decomposition level: ``ceil(log2(max(n_angles, n_cols)))``.

    TomoPy takes the largest dimension of the whole 3D array; here the sinogram's own
    dimensions are used, so the result does not depend on the number of rows in a block
    (identical to TomoPy whenever rows are not the largest dimension).
    """
    return int(math.ceil(math.log2(max(n_angles, n_cols, 2))))


def _damping(n: int, sigma: float) -> np.ndarray:
    """Gaussian high-pass ``1 - exp(-k**2 / (2 sigma**2))`` over the FFT bins of length ``n``.

    The bins are counted in fftshift order with the offset ``k = i - n/2 + 1/2`` used by
    TomoPy (exactly 0 at the zero frequency when ``n`` is odd), returned in unshifted order.
    """
    k = (np.arange(-n, n, 2, dtype=np.float64) + 1.0) / 2.0
    damp = -np.expm1(-(k**2) / (2.0 * sigma**2))
    return np.fft.ifftshift(damp)


def remove_stripe_fw(
    sino_block: np.ndarray,
    *,
    level: int | None = None,
    wname: str = "db5",
    sigma: float = 2.0,
    pad: bool = True,
) -> np.ndarray:
    """Remove vertical stripes with the combined wavelet-Fourier filter.

    Münch, Trtik, Marone & Stampanoni, "Stripe and ring artifact removal with combined
    wavelet-Fourier filtering", Opt. Express 17, 8567-8591 (2009).

    Each sinogram is decomposed by a 2D discrete wavelet transform over ``level`` levels. The
    detail band that holds column-wise (vertical) structure is Fourier transformed along the
    angle axis, and its low angular frequencies, where stripes live, are damped with a Gaussian
    high-pass of width ``sigma``; the sinogram is then rebuilt. With the defaults this matches
    TomoPy's ``remove_stripe_fw`` (to ~1e-6 relative on TomoPy's test data).

    Parameters
    ----------
    sino_block : numpy.ndarray
        ``(angle, row, col)`` block of sinograms, or one sinogram ``(angle, col)``.
    level : int, optional
        Number of wavelet levels; default :func:`fw_level` of the sinogram size.
    wname : str
        PyWavelets wavelet name.
    sigma : float
        Width of the Gaussian damping in Fourier bins.
    pad : bool
        Zero-pad the angle axis by ``n_angles // 8`` rows, split evenly on both sides,
        before filtering (reduces wrap-around effects of the Fourier filter).

    Returns
    -------
    numpy.ndarray
        float32, same shape as the input.
    """
    block, single = _as_block(sino_block)
    n_ang, n_rows, n_cols = block.shape
    if sigma <= 0:
        raise InputError(f"fw sigma must be > 0, got {sigma}")
    if level is None:
        level = fw_level(n_ang, n_cols)
    if level < 1:
        raise InputError(f"fw level must be >= 1, got {level}")
    try:
        wavelet = pywt.Wavelet(wname)
    except ValueError as exc:
        raise InputError(f"unknown wavelet {wname!r}; use a PyWavelets name such as 'db5'") from exc

    total = n_ang + n_ang // 8 if pad else n_ang
    start = (total - n_ang) // 2
    # sinograms of all rows at once: (row, angle, col), transforms over the last two axes
    approx = np.zeros((n_rows, total, n_cols), dtype=np.float32)
    approx[:, start : start + n_ang, :] = np.moveaxis(block, 1, 0)

    details = []
    for _ in range(level):
        approx, (c_h, c_v, c_d) = pywt.dwt2(approx, wavelet, axes=(-2, -1))
        details.append((c_h, c_v, c_d))

    filtered = []
    for c_h, c_v, c_d in details:
        # c_v: low-pass along angles, high-pass along columns -> holds the stripes
        spec = np.fft.fft(c_v, axis=-2)
        spec *= _damping(c_v.shape[-2], sigma)[:, None]
        filtered.append((c_h, np.real(np.fft.ifft(spec, axis=-2)), c_d))

    for c_h, c_v, c_d in reversed(filtered):
        approx = approx[..., : c_h.shape[-2], : c_h.shape[-1]]
        approx = pywt.idwt2((approx, (c_h, c_v, c_d)), wavelet, axes=(-2, -1))

    out = np.moveaxis(approx[:, start : start + n_ang, :n_cols], 0, 1).astype(np.float32)
    return out[:, 0, :] if single else np.ascontiguousarray(out)


def _median_along_cols(block: np.ndarray, size: int) -> np.ndarray:
    """1D median of ``size`` along the last axis; equals ``scipy.ndimage.median_filter`` with
    ``size=(1, 1, size)`` and ``mode="reflect"`` but is ~5x faster (a partial sort of sliding
    windows, a few million window values at a time)."""
    half = size // 2
    padded = np.pad(block, ((0, 0), (0, 0), (half, size - 1 - half)), mode="symmetric")
    out = np.empty_like(block)
    per_angle = block.shape[1] * block.shape[2] * size
    step = max(1, 4_000_000 // max(per_angle, 1))
    for a in range(0, block.shape[0], step):
        windows = np.lib.stride_tricks.sliding_window_view(padded[a : a + step], size, axis=-1)
        out[a : a + step] = np.partition(windows, half, axis=-1)[..., half]
    return out


def remove_stripe_sorting(sino_block: np.ndarray, *, size: int = 21) -> np.ndarray:
    """Remove stripes with the sorting-based method.

    Vo, Atwood & Drakopoulos, "Superior techniques for eliminating ring artifacts in X-ray
    micro-tomography", Opt. Express 26, 28396-28412 (2018), algorithm 3.

    Each detector column is sorted over the angles, which turns a stripe (a column with an
    offset or gain error) into a smooth-in-angle column that differs from its neighbours. A 1D
    median of ``size`` columns across the detector in the sorted image removes that
    difference, and the values are put back in their original angular order.

    Parameters
    ----------
    sino_block : numpy.ndarray
        ``(angle, row, col)`` block of sinograms, or one sinogram ``(angle, col)``.
    size : int
        Median window across detector columns (odd values are centred; Vo et al. use 21-31).

    Returns
    -------
    numpy.ndarray
        float32, same shape as the input.
    """
    block, single = _as_block(sino_block)
    if size < 1:
        raise InputError(f"sorting median size must be >= 1, got {size}")
    block = np.asarray(block, dtype=np.float32)
    order = np.argsort(block, axis=0, kind="stable")
    sorted_ = np.take_along_axis(block, order, axis=0)
    smoothed = _median_along_cols(sorted_, size)
    out = np.empty_like(block)
    np.put_along_axis(out, order, smoothed, axis=0)
    return out[:, 0, :] if single else out
