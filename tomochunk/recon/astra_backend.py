"""``astra`` backend: ASTRA Toolbox filtered backprojection behind the native interface.

Uses ASTRA's CPU ``FBP`` algorithm with a 2D ``parallel`` geometry (and ``FBP_CUDA`` when
ASTRA sees a GPU) on unit pixels, so values are linear attenuation per pixel like the native
backend (van Aarle et al. 2015, 2016). ASTRA's 2D FBP accepts only the plain ``parallel``
geometry, whose rotation axis projects onto the detector middle ``(n_det - 1) / 2``; a
different centre (per slice if need be) is applied by shifting each sinogram row by a
sub-pixel Fourier phase ramp before reconstruction. Orientation: ASTRA's 2D geometry is the
same as ours (see :mod:`tomochunk.recon.gridrec`), checked by the tests. ASTRA weights every
angle by ``pi / n_angles``, so it assumes equally spaced angles over 180 degrees.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..config import ReconConfig
from ..errors import ConfigError, InputError
from .filters import check_filter
from .geometry import check_finite, circle_mask, default_center

__all__ = ["is_available", "check_config", "reconstruct_block", "ASTRA_FILTERS", "shift_rows"]

#: Our filter names -> ASTRA ``FilterType`` names (ASTRA has no Butterworth filter).
ASTRA_FILTERS = {
    "shepp": "shepp-logan",
    "ramlak": "ram-lak",
    "cosine": "cosine",
    "hann": "hann",
    "hamming": "hamming",
    "parzen": "parzen",
    "none": "none",
}


def is_available() -> bool:
    """True when ``import astra`` works."""
    try:
        import astra  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means unavailable
        return False
    return True


def _use_cuda() -> bool:
    import astra

    try:
        return bool(astra.use_cuda())
    except Exception:  # noqa: BLE001
        return False


def shift_rows(sino: np.ndarray, shift: np.ndarray | float) -> np.ndarray:
    """Shift detector rows of ``sino`` (..., row, col) by ``shift`` pixels (one per row).

    A positive shift moves the content towards larger column indices. Rows are zero-padded
    to twice their length so the shift does not wrap around.
    """
    n = sino.shape[-1]
    m = sfft.next_fast_len(2 * n, real=True)
    spec = sfft.rfft(sino, n=m, axis=-1)
    k = np.arange(spec.shape[-1])
    shift = np.asarray(shift, dtype=np.float64)
    ramp = np.exp(-2j * np.pi * np.multiply.outer(shift, k) / m).astype(np.complex64)
    spec *= ramp
    return sfft.irfft(spec, n=m, axis=-1)[..., :n].astype(np.float32)


def check_config(config: ReconConfig) -> None:
    """Refuse the settings ASTRA's FBP does not implement (before any block is computed).

    Raises
    ------
    ConfigError
        A ramp filter ASTRA lacks (the message lists the ones it has) or
        ``tomopy_convention``.
    """
    if config.filter not in ASTRA_FILTERS:
        raise ConfigError(
            f"filter {config.filter!r} is not available in the astra backend; use one of "
            f"{', '.join(ASTRA_FILTERS)} or the native backend"
        )
    if config.tomopy_convention:
        raise ConfigError(
            "tomopy_convention is not supported by the astra backend; use backend='native'"
        )


def reconstruct_block(
    sino_block: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray,
    config: ReconConfig,
    *,
    nthreads: int | None = None,
) -> np.ndarray:
    """Reconstruct ``(angle, row, col)`` with ASTRA FBP; returns ``(row, n, n)`` float32.

    Parameters are as for :func:`tomochunk.recon.gridrec.reconstruct_block`. ``pad`` is
    ignored (ASTRA pads internally), ``filter_cutoff`` is passed as ASTRA's ``FilterD``.
    ``nthreads`` is accepted for interface compatibility; ASTRA's CPU FBP is single-threaded.
    """
    import astra

    check_filter(config.filter, config.filter_cutoff, config.filter_order)
    check_config(config)
    sino = np.asarray(sino_block, dtype=np.float32)
    if sino.ndim != 3:
        raise InputError(f"sinogram block must be (angle, row, col); got shape {sino.shape}")
    check_finite(sino)
    n_angles, n_rows, n_det = sino.shape
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if theta.size != n_angles:
        raise InputError(f"{theta.size} angles for {n_angles} projections")
    centers = np.broadcast_to(
        np.asarray(default_center(n_det) if center is None else center, dtype=np.float64),
        (n_rows,),
    )
    shifts = default_center(n_det) - centers
    if np.any(shifts != 0):
        sino = shift_rows(np.moveaxis(sino, 1, 0), shifts[:, None]).transpose(1, 0, 2)
    cuda = _use_cuda()
    vol_geom = astra.create_vol_geom(n_det, n_det)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n_det, theta)
    projector = None if cuda else astra.create_projector("linear", proj_geom, vol_geom)
    out = np.empty((n_rows, n_det, n_det), dtype=np.float32)
    try:
        for r in range(n_rows):
            sid = astra.data2d.create("-sino", proj_geom, np.ascontiguousarray(sino[:, r, :]))
            rid = astra.data2d.create("-vol", vol_geom, 0.0)
            cfg = astra.astra_dict("FBP_CUDA" if cuda else "FBP")
            cfg["ProjectionDataId"] = sid
            cfg["ReconstructionDataId"] = rid
            if projector is not None:
                cfg["ProjectorId"] = projector
            cfg["FilterType"] = ASTRA_FILTERS[config.filter]
            if config.filter_cutoff != 1.0:
                cfg["FilterD"] = float(config.filter_cutoff)
            aid = astra.algorithm.create(cfg)
            try:
                astra.algorithm.run(aid)
                out[r] = astra.data2d.get(rid)
            finally:
                astra.algorithm.delete(aid)
                astra.data2d.delete([sid, rid])
    finally:
        if projector is not None:
            astra.projector.delete(projector)
    if config.circle:
        out[:, ~circle_mask(n_det)] = 0.0
    return out
