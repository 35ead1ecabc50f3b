"""Fourier ring (2D) and shell (3D) correlation with the half-bit threshold.

Two reconstructions from independent halves of the projections (the splits of
Noise2Inverse) share the signal but not the noise, so their correlation per spatial
frequency measures the signal-to-noise ratio there (Saxton & Baumeister 1982; van Heel
1987). The resolution is the frequency at which the correlation drops below the half-bit
threshold of van Heel & Schatz (2005), J. Struct. Biol. 151:250-262::

    FRC(r) = Re sum_{k in ring r} A(k) B*(k) / sqrt(sum |A(k)|^2 * sum |B(k)|^2)

    T_1/2bit(r) = (0.2071 + 1.9102 / sqrt(n_r)) / (1.2071 + 0.9102 / sqrt(n_r))

with ``n_r`` the number of Fourier pixels (voxels) in ring (shell) ``r``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["FRCResult", "frc", "fsc", "half_bit_threshold", "fourier_correlation"]


@dataclass(frozen=True)
class FRCResult:
    """Fourier ring/shell correlation curve and its half-bit resolution.

    Attributes
    ----------
    freq : numpy.ndarray
        Ring centres in cycles/pixel (0 .. 0.5).
    frc : numpy.ndarray
        Correlation per ring.
    threshold : numpy.ndarray
        Half-bit threshold per ring.
    n_per_ring : numpy.ndarray
        Fourier pixels per ring.
    crossing : float or None
        First frequency (cycles/pixel) where ``frc`` falls below ``threshold``, linearly
        interpolated; None if it never does (resolution at or beyond Nyquist).
    pixel_size : float or None
        Pixel size in nm, if known.
    """

    freq: np.ndarray
    frc: np.ndarray
    threshold: np.ndarray
    n_per_ring: np.ndarray
    crossing: float | None
    pixel_size: float | None = None

    @property
    def freq_nm(self) -> np.ndarray | None:
        """Ring centres in 1/nm (None without pixel size)."""
        return None if self.pixel_size is None else self.freq / self.pixel_size

    @property
    def resolution_px(self) -> float | None:
        """Resolution (period at the crossing) in pixels, ``1 / crossing``."""
        return None if not self.crossing else 1.0 / self.crossing

    @property
    def resolution_nm(self) -> float | None:
        """Resolution in nm (None without pixel size or crossing)."""
        r = self.resolution_px
        return None if r is None or self.pixel_size is None else r * self.pixel_size

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        """JSON-friendly dict (curves as lists when ``curves``)."""
        d: dict[str, Any] = {
            "crossing_per_px": self.crossing,
            "crossing_per_nm": (None if self.crossing is None or self.pixel_size is None
                                else self.crossing / self.pixel_size),
            "resolution_px": self.resolution_px,
            "resolution_nm": self.resolution_nm,
            "pixel_size_nm": self.pixel_size,
            "threshold": "half-bit (van Heel & Schatz 2005)",
        }
        if curves:
            d.update(freq_per_px=self.freq.tolist(), frc=self.frc.tolist(),
                     half_bit=self.threshold.tolist())
        return d


def half_bit_threshold(n: Any) -> np.ndarray:
    """Half-bit threshold (van Heel & Schatz 2005) for rings/shells of ``n`` pixels."""
    s: np.ndarray = np.sqrt(np.maximum(np.asarray(n, dtype=float), 1.0))
    return (0.2071 + 1.9102 / s) / (1.2071 + 0.9102 / s)


def _crossing(freq: np.ndarray, c: np.ndarray, t: np.ndarray) -> float | None:
    below = np.nonzero(c[1:] < t[1:])[0] + 1  # ignore the zero-frequency ring
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(freq[0])
    # linear interpolation of (c - t) between rings i-1 and i
    g0, g1 = c[i - 1] - t[i - 1], c[i] - t[i]
    if g0 <= 0 or g0 == g1:
        return float(freq[i])
    return float(freq[i - 1] + (freq[i] - freq[i - 1]) * g0 / (g0 - g1))


def fourier_correlation(
    a: Any, b: Any, ndim: int, pixel_size: float | None = None, *, window: str | None = None,
) -> FRCResult:
    """Fourier correlation in rings (``ndim=2``) or shells (``ndim=3``); see :func:`frc`."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    kind = "image" if ndim == 2 else "volume"
    if x.ndim != ndim:
        raise InputError(f"expected a {ndim}D {kind}, got shape {x.shape}")
    if x.shape != y.shape:
        raise InputError(
            f"the two {kind}s must have the same shape, got {x.shape} and {y.shape}"
        )
    if min(x.shape) < 8:
        raise InputError(f"{kind} of shape {x.shape} is too small; every axis needs >= 8")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("the inputs contain non-finite values; crop or replace them first")
    x = x - x.mean()
    y = y - y.mean()
    if window is not None:
        from scipy.signal import get_window

        w = np.ones(x.shape)
        for ax, n in enumerate(x.shape):
            sh = [1] * ndim
            sh[ax] = n
            w = w * get_window(window, n, fftbins=False).reshape(sh)
        x, y = x * w, y * w
    fx = np.fft.fftn(x)
    fy = np.fft.fftn(y)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in x.shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))  # cycles/pixel
    step = 1.0 / max(x.shape)
    nbins = int(np.floor(0.5 / step)) + 1
    idx = np.rint(radius / step).astype(int).ravel()
    keep = idx < nbins
    idx = idx[keep]
    cross = np.bincount(idx, (fx * np.conj(fy)).real.ravel()[keep], nbins)
    px = np.bincount(idx, (np.abs(fx) ** 2).ravel()[keep], nbins)
    py = np.bincount(idx, (np.abs(fy) ** 2).ravel()[keep], nbins)
    n = np.bincount(idx, minlength=nbins)
    denom = np.sqrt(px * py)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(denom > 0, cross / denom, 0.0)
    freq = np.arange(nbins) * step
    t = half_bit_threshold(n)
    return FRCResult(freq, c, t, n, _crossing(freq, c, t), pixel_size)


def frc(a: Any, b: Any, pixel_size: float | None = None, *, window: str | None = None) -> FRCResult:
    """Fourier ring correlation of two 2D images with the half-bit threshold.

    Rings are one Fourier pixel wide (``1 / max(shape)`` cycles/pixel) from zero to Nyquist
    (0.5 cycles/pixel); the means are removed first. For the two halves of a split scan the
    crossing with the half-bit threshold (van Heel & Schatz 2005) is the resolution of a
    half reconstruction.

    Parameters
    ----------
    a, b : array_like, 2D, same shape
    pixel_size : float, optional
        Pixel size in nm, to report the crossing and resolution in nm.
    window : str, optional
        Apodisation window (e.g. "hann") against edge effects; None = none.

    Returns
    -------
    FRCResult
    """
    return fourier_correlation(a, b, 2, pixel_size, window=window)


def fsc(a: Any, b: Any, pixel_size: float | None = None, *, window: str | None = None) -> FRCResult:
    """Fourier shell correlation of two 3D volumes with the half-bit threshold.

    As :func:`frc` with spherical shells one Fourier voxel wide.
    """
    return fourier_correlation(a, b, 3, pixel_size, window=window)
