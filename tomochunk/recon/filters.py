"""Reconstruction filters of filtered backprojection: the ramp times an apodisation window.

Every filter is ``H(w) = R(w) * W(w)`` on the frequencies ``w`` (cycles per detector pixel,
``|w| <= 0.5``) of the zero-padded detector row. ``R`` is the ramp ``|w|`` computed the way
Kak & Slaney (1988, ch. 3, eq. 61) recommend: as the DFT of the band-limited ramp kernel
sampled in space (``h(0) = 1/4``, ``h(n) = -1/(pi n)^2`` for odd ``n``, 0 for even ``n``), so its
zero-frequency value is not forced to zero and a uniform object keeps its mean value.

The windows ``W`` are functions of ``u = |w| / (0.5 * cutoff)`` (``cutoff`` is a fraction of the
Nyquist frequency, 1.0 = no cut); frequencies above the cutoff are set to zero, except for the
Butterworth window, which is smooth and uses the cutoff as its half-power point:

============  ==========================================================================
name          window ``W(u)``
============  ==========================================================================
shepp         ``sinc(u / 2)``, Shepp & Logan (1974) -- the default, as in the paper
ramlak        ``1`` (pure ramp), Ramachandran & Lakshminarayanan (1971)
cosine        ``cos(pi u / 2)``
hann          ``0.5 + 0.5 cos(pi u)``
hamming       ``0.54 + 0.46 cos(pi u)``
parzen        ``1 - 6u^2 + 6u^3`` (``u <= 1/2``), ``2 (1 - u)^3`` (``u > 1/2``), Parzen (1962)
butterworth   ``1 / (1 + u^(2 order))``
none          ``1 / R`` -- no filtering at all (plain backprojection, not a reconstruction)
============  ==========================================================================

TomoPy's gridrec defines ``hann`` and ``hamming`` as ``cos(2 pi x / cutoff)`` over
``x = |w|`` in ``[0, 0.5]`` with its default ``cutoff = 0.5``, i.e. ``cos(4 pi |w|)``: that curve
reaches its minimum at a quarter of the sampling rate and rises again to 1 at Nyquist, unlike
the textbook windows above (a textbook Hann FBP correlates only about 0.88 with TomoPy's
stored ``hann`` result). We use the textbook windows; :func:`fourier_filter` with
``tomopy_windows=True`` (set by ``ReconConfig.tomopy_convention``) reproduces TomoPy's curves
for ``hann`` and ``hamming`` when matching TomoPy output matters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError

__all__ = ["RAMP_FILTERS", "window", "ramp", "fourier_filter", "check_filter"]


def _shepp(u: np.ndarray, order: int) -> np.ndarray:
    return np.sinc(u / 2.0)


def _ramlak(u: np.ndarray, order: int) -> np.ndarray:
    return np.ones_like(u)


def _cosine(u: np.ndarray, order: int) -> np.ndarray:
    return np.cos(np.pi * u / 2.0)


def _hann(u: np.ndarray, order: int) -> np.ndarray:
    return 0.5 + 0.5 * np.cos(np.pi * u)


def _hamming(u: np.ndarray, order: int) -> np.ndarray:
    return 0.54 + 0.46 * np.cos(np.pi * u)


def _parzen(u: np.ndarray, order: int) -> np.ndarray:
    return np.where(u <= 0.5, 1.0 - 6.0 * u**2 + 6.0 * u**3, 2.0 * (1.0 - u) ** 3)


def _butterworth(u: np.ndarray, order: int) -> np.ndarray:
    return 1.0 / (1.0 + u ** (2 * order))


def _none(u: np.ndarray, order: int) -> np.ndarray:  # handled specially in fourier_filter
    return np.ones_like(u)


#: Filter name -> window function ``W(u, order)`` of the normalised frequency ``u``.
RAMP_FILTERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "shepp": _shepp,
    "ramlak": _ramlak,
    "cosine": _cosine,
    "hann": _hann,
    "hamming": _hamming,
    "parzen": _parzen,
    "butterworth": _butterworth,
    "none": _none,
}


def check_filter(name: str, cutoff: float = 1.0, order: int = 8) -> None:
    """Raise :class:`~tomochunk.errors.ConfigError` for an unknown filter or bad parameters."""
    if name not in RAMP_FILTERS:
        raise ConfigError(
            f"unknown reconstruction filter {name!r}; valid filters are: {', '.join(RAMP_FILTERS)}"
        )
    if not (0.0 < float(cutoff) <= 1.0):
        raise ConfigError(
            f"filter_cutoff={cutoff} is outside (0, 1]; give the cutoff as a fraction of the "
            "Nyquist frequency (1.0 = no cut)"
        )
    if int(order) < 1:
        raise ConfigError(f"filter_order={order} must be a positive integer (Butterworth order)")


def window(
    name: str,
    freqs: np.ndarray,
    cutoff: float = 1.0,
    order: int = 8,
    *,
    tomopy_windows: bool = False,
) -> np.ndarray:
    """The apodisation window ``W`` of filter ``name`` at ``freqs`` (cycles per pixel).

    Parameters
    ----------
    name : str
        One of :data:`RAMP_FILTERS`.
    freqs : ndarray
        Frequencies in cycles per pixel, ``|freqs| <= 0.5``.
    cutoff : float
        Cutoff as a fraction of Nyquist, in ``(0, 1]``.
    order : int
        Butterworth order.
    tomopy_windows : bool
        Use TomoPy's definition of ``hann`` and ``hamming`` (see the module docstring).

    Returns
    -------
    ndarray
        Window values (float64), zero above the cutoff except for Butterworth.
    """
    check_filter(name, cutoff, order)
    w = np.abs(np.asarray(freqs, dtype=np.float64))
    if tomopy_windows and name in ("hann", "hamming"):
        a = 0.5 if name == "hann" else 0.54
        x = np.cos(2.0 * np.pi * w / (0.5 * cutoff))
        return np.where(w <= 0.5 * cutoff, a + (1.0 - a) * x, 0.0)
    u = w / (0.5 * cutoff)
    values = RAMP_FILTERS[name](u, int(order))
    if name in ("butterworth", "none"):
        return values
    return np.where(u <= 1.0, values, 0.0)


def ramp(n: int) -> np.ndarray:
    """The ramp ``|w|`` on the ``rfft`` frequencies of length ``n`` (Kak & Slaney 1988).

    It is the DFT of the band-limited ramp kernel sampled at the detector pixels, which keeps
    a small positive value at ``w = 0`` so that zero-padding does not bias the mean.

    Parameters
    ----------
    n : int
        Length of the (padded) detector row.

    Returns
    -------
    ndarray, shape (n // 2 + 1,)
        Real, non-negative filter values for ``numpy.fft.rfftfreq(n)``.
    """
    k = np.arange(n)
    k = np.minimum(k, n - k)  # circular distance
    h = np.zeros(n)
    h[0] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    return np.abs(np.fft.rfft(h).real)


def fourier_filter(
    name: str,
    n: int,
    cutoff: float = 1.0,
    order: int = 8,
    *,
    tomopy_windows: bool = False,
) -> np.ndarray:
    """The filter ``R * W`` on the ``rfft`` frequencies of a padded row of length ``n``.

    Parameters
    ----------
    name : str
        One of :data:`RAMP_FILTERS`; ``none`` returns all ones (no ramp).
    n : int
        Padded row length.
    cutoff, order, tomopy_windows
        See :func:`window`.

    Returns
    -------
    ndarray, shape (n // 2 + 1,)
        float64 filter values.

    Examples
    --------
    >>> h = fourier_filter("ramlak", 8)
    >>> h.shape
    (5,)
    """
    freqs = np.fft.rfftfreq(n)
    if name == "none":
        check_filter(name, cutoff, order)
        return np.ones_like(freqs)
    return ramp(n) * window(name, freqs, cutoff, order, tomopy_windows=tomopy_windows)
