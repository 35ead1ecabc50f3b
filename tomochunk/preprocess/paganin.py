"""Paganin (TIE-Hom) single-distance phase retrieval of projections.

For a homogeneous object (fixed ratio ``delta / beta``) in the near field, the transmitted
intensity ``I / I0`` after propagation over ``z`` is low-pass filtered back to the contact
image (Paganin et al., J. Microsc. 206, 33 (2002))::

    T_retrieved = F^-1[ F[I / I0] / (1 + pi * lambda * z * (delta / beta) * |f|^2) ]

with ``f`` the spatial frequency in cycles per metre and ``lambda = 12.398 / E[keV]``
Angstrom. ``-log(T_retrieved)`` is then the attenuation line integral ``mu t`` the
reconstruction expects. It is a 2-D filter on each projection, so it couples detector rows:
its real-space kernel is ``K0(r / L) / (2 pi L^2)`` with ``L = sqrt(pi lambda z delta/beta)
/ (2 pi)`` (a modified Bessel function, decaying like ``exp(-r / L)``), and
:func:`paganin_halo` rows above and below a block (``L (ln(1e6) + 3)``, beyond which less
than about 1e-6 of the kernel's mass lies) make blockwise results equal whole-projection ones.

Every projection is padded by the halo on all sides with its edge values before the FFT
(float64), so the filter does not wrap around.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft

from ..config import PreprocessConfig, replace
from ..errors import ConfigError

__all__ = ["wavelength_m", "paganin_strength_px", "paganin_length_px", "paganin_halo",
           "paganin_filter", "retrieve_phase", "check_paganin", "resolve_paganin"]

#: ``h c`` in keV * metre: ``lambda [m] = HC_KEV_M / E [keV]``.
HC_KEV_M = 12.398419843320026e-10
#: The kernel tail left out of a block's halo, relative: ``exp(-halo / L)``.
HALO_TOLERANCE = 1e-6
_ANGLES_PER_FFT = 8  # projections filtered per FFT call (bounds the padded float64 copies)


def wavelength_m(energy_kev: float) -> float:
    """X-ray wavelength in metres for a photon energy in keV."""
    return HC_KEV_M / float(energy_kev)


def check_paganin(config: PreprocessConfig) -> None:
    """Raise :class:`ConfigError` for non-positive Paganin parameters (when enabled)."""
    if not config.paganin:
        return
    for name, unit in (("paganin_energy_kev", "keV"), ("paganin_distance_m", "m"),
                       ("paganin_delta_beta", ""), ("paganin_pixel_um", "um")):
        value = getattr(config, name)
        if value is None:
            continue
        if not (math.isfinite(value) and value > 0):
            where = f" in {unit}" if unit else ""
            raise ConfigError(f"{name}={value!r} must be a positive number{where}; fix the "
                              "Paganin parameters or set paganin: false")


def resolve_paganin(config: PreprocessConfig, pixel_size_um: float | None) -> PreprocessConfig:
    """``config`` with ``paganin_pixel_um`` filled in from the scan when it is None.

    Raises
    ------
    ConfigError
        Bad parameters, or Paganin enabled with no pixel size in the config or the scan.
    """
    check_paganin(config)
    if not config.paganin or config.paganin_pixel_um is not None:
        return config
    if not pixel_size_um:
        raise ConfigError("paganin needs the detector pixel size: the scan has no "
                          "pixel_size_um; set preprocess.paganin_pixel_um (micrometres)")
    return replace(config, paganin_pixel_um=float(pixel_size_um))


def paganin_strength_px(config: PreprocessConfig) -> float:
    """``pi lambda z (delta/beta)`` in square pixels: the filter is ``1 / (1 + this f^2)``
    with ``f`` in cycles per pixel."""
    if config.paganin_pixel_um is None:
        raise ConfigError("paganin_pixel_um is not set; resolve it from the scan first")
    px = float(config.paganin_pixel_um) * 1e-6
    return (math.pi * wavelength_m(config.paganin_energy_kev) * config.paganin_distance_m
            * config.paganin_delta_beta / px**2)


def paganin_length_px(config: PreprocessConfig) -> float:
    """Decay length ``L`` (pixels) of the real-space kernel ``K0(r / L)``."""
    return math.sqrt(paganin_strength_px(config)) / (2.0 * math.pi)


def paganin_halo(config: PreprocessConfig) -> int:
    """Rows of halo a block needs on each side: ``ceil(L (ln(1 / HALO_TOLERANCE) + 3)) + 1``
    (0 when Paganin is off). The kernel's mass beyond ``R`` falls like
    ``sqrt(R / L) exp(-R / L)``; the ``+ 3`` covers the square-root factor."""
    if not config.paganin:
        return 0
    reach = math.log(1.0 / HALO_TOLERANCE) + 3.0
    return int(math.ceil(paganin_length_px(config) * reach)) + 1


def paganin_filter(transmission: np.ndarray, strength_px: float, pad: int) -> np.ndarray:
    """Apply ``1 / (1 + strength_px |f|^2)`` to every 2-D image ``(..., row, col)``.

    Each image is padded by ``pad`` pixels on every side with its edge values, filtered in
    float64 and cropped back.
    """
    t = np.asarray(transmission, dtype=np.float64)
    lead = [(0, 0)] * (t.ndim - 2)
    rows, cols = t.shape[-2:]
    m = sp_fft.next_fast_len(rows + 2 * pad, real=True)
    n = sp_fft.next_fast_len(cols + 2 * pad, real=True)
    # edge values all the way to the FFT length (zeros there would leak into the image)
    padded = np.pad(t, lead + [(pad, m - rows - pad), (pad, n - cols - pad)], mode="edge")
    fy = sp_fft.fftfreq(m)[:, None]
    fx = sp_fft.rfftfreq(n)[None, :]
    kernel = 1.0 / (1.0 + strength_px * (fx * fx + fy * fy))
    spec = sp_fft.rfft2(padded, axes=(-2, -1))
    out: np.ndarray = sp_fft.irfft2(spec * kernel, s=(m, n), axes=(-2, -1))
    return out[..., pad : pad + t.shape[-2], pad : pad + t.shape[-1]]


def retrieve_phase(att: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Paganin retrieval of attenuation projections ``(angle, row, col)`` (``-log`` of the
    transmission): ``-log(filter(exp(-att)))`` in float32, clipped at ``config.log_floor``."""
    pad = paganin_halo(config)
    strength = paganin_strength_px(config)
    att = np.asarray(att)
    out = np.empty(att.shape, dtype=np.float32)
    for a0 in range(0, att.shape[0], _ANGLES_PER_FFT):  # bounded float64 temporaries
        part = att[a0 : a0 + _ANGLES_PER_FFT]
        filtered = paganin_filter(np.exp(-part.astype(np.float64)), strength, pad)
        out[a0 : a0 + part.shape[0]] = -np.log(np.maximum(filtered, config.log_floor))
    return out
