"""``tomopy`` backend: TomoPy's gridrec behind the native interface (Dowd et al. 1999,
Gürsoy et al. 2014), used only when ``import tomopy`` works.

Conventions are translated so the output matches the native backend: TomoPy takes the same
0-based centre, but its slice grid is offset by about half a pixel and it is run here with
``tomopy.recon(..., algorithm="gridrec")`` on the block as is. With
``ReconConfig.tomopy_convention=False`` the result is resampled onto our grid (rotation axis
at the slice middle) by a Fourier shift; with ``tomopy_convention=True`` TomoPy's own grid is
kept. TomoPy's filter parameter ``filter_par[0]`` is a cutoff in cycles per pixel (0.5 =
Nyquist), ours a fraction of Nyquist, hence the factor 0.5.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.ndimage as ndi

from ..config import ReconConfig
from ..errors import ConfigError, InputError
from .filters import check_filter
from .geometry import circle_mask, default_center, grid_origin

__all__ = ["is_available", "reconstruct_block"]

_TOMOPY_FILTERS = ("shepp", "ramlak", "cosine", "hann", "hamming", "parzen", "butterworth", "none")


def is_available() -> bool:
    """True when ``import tomopy`` works."""
    try:
        import tomopy  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means unavailable
        return False
    return True


def reconstruct_block(
    sino_block: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray,
    config: ReconConfig,
    *,
    nthreads: int | None = None,
) -> np.ndarray:
    """Reconstruct ``(angle, row, col)`` with TomoPy gridrec; returns ``(row, n, n)`` float32."""
    import tomopy

    check_filter(config.filter, config.filter_cutoff, config.filter_order)
    if config.filter not in _TOMOPY_FILTERS:
        raise ConfigError(f"filter {config.filter!r} is not available in the tomopy backend")
    sino = np.asarray(sino_block, dtype=np.float32)
    if sino.ndim != 3:
        raise InputError(f"sinogram block must be (angle, row, col); got shape {sino.shape}")
    n_det = sino.shape[-1]
    if center is None:
        center = default_center(n_det, config.tomopy_convention)
    centers = np.broadcast_to(np.asarray(center, dtype=np.float32), (sino.shape[1],))
    rec = tomopy.recon(
        sino,
        np.asarray(theta, dtype=np.float32),
        center=centers.copy(),
        algorithm="gridrec",
        filter_name=config.filter,
        filter_par=np.array([0.5 * config.filter_cutoff, config.filter_order], np.float32),
        ncore=nthreads or os.cpu_count(),
    ).astype(np.float32)
    if not config.tomopy_convention:
        (ty, tx), (oy, ox) = grid_origin(n_det, True), grid_origin(n_det, False)
        rec = np.stack([ndi.shift(s, (oy - ty, ox - tx), order=3, mode="constant") for s in rec])
    if config.circle:
        rec[:, ~circle_mask(n_det, tomopy_convention=config.tomopy_convention)] = 0.0
    return rec.astype(np.float32)
