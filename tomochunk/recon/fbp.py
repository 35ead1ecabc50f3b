"""The device-independent gridding FBP: checks, filtering, row packing, batching, unpacking.

One implementation for the CPU (:mod:`tomochunk.recon.gridrec`, numpy and ``finufft``) and
the GPU (:mod:`tomochunk.recon.cufinufft_backend`, torch and ``cufinufft``) reconstructors:
:func:`prepare_fbp` checks a sinogram block and builds its geometry, :func:`fbp_pipeline`
runs it against an array module (``ops``) and a type-1 NUFFT (``nufft``), and
:func:`fbp_options` reads the filter and geometry options of a :class:`ReconConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import ReconConfig
from ..errors import InputError
from .filters import check_filter
from .geometry import _Geometry, _geometry, check_finite, circle_mask, default_center

__all__ = ["FbpInputs", "fbp_options", "fbp_pipeline", "prepare_fbp"]

#: Memory budget (bytes) of the NUFFT coefficients of one batch of slice pairs.
_BATCH_BYTES = 256 * 2**20


def fbp_options(config: ReconConfig) -> dict[str, Any]:
    """The filter and geometry keywords of :func:`prepare_fbp` from a :class:`ReconConfig`."""
    return {
        "filter": config.filter,
        "filter_cutoff": config.filter_cutoff,
        "filter_order": config.filter_order,
        "pad": config.pad,
        "circle": config.circle,
        "tomopy_convention": config.tomopy_convention,
    }


def _filtered(sino: Any, centers: np.ndarray, geo: _Geometry, pad: str, ops: Any) -> Any:
    """Filtered projections, axis moved to index 0, cropped to ``L``: (angle, row, L)."""
    n_det = sino.shape[-1]
    if pad == "edge":
        padded = ops.empty(tuple(sino.shape[:-1]) + (geo.m_pad,))
        padded[..., geo.offset : geo.offset + n_det] = sino
        padded[..., : geo.offset] = sino[..., :1]
        padded[..., geo.offset + n_det :] = sino[..., -1:]
        spec = ops.rfft(padded, geo.m_pad)
        del padded
    else:  # zero padding at the end of the row is the same as around it (periodic)
        spec = ops.rfft(sino, geo.m_pad)
    k = np.arange(spec.shape[-1])
    axis_pos = centers + geo.offset  # (row,)
    shift = np.exp(2j * np.pi * np.outer(axis_pos, k) / geo.m_pad).astype(np.complex64)
    spec *= ops.asarray(geo.filt * shift)
    q = ops.irfft(spec, geo.m_pad)
    del spec
    half = (geo.length - 1) // 2
    # FFT order around s = 0: s = 0..half, then s = -half..-1.
    return ops.concat([q[..., : half + 1], q[..., geo.m_pad - half :]])


@dataclass
class FbpInputs:
    """A checked sinogram block and everything that does not depend on the device."""

    sino: np.ndarray  # (angle, row, col) float32
    centers: np.ndarray  # (row,) float64
    geo: _Geometry
    pad: str
    circle: bool
    tomopy_convention: bool
    squeeze: bool


def prepare_fbp(
    sino: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray | None = None,
    *,
    n: int | None = None,
    filter: str = "shepp",
    filter_cutoff: float = 1.0,
    filter_order: int = 8,
    pad: str = "zero",
    circle: bool = False,
    tomopy_convention: bool = False,
) -> FbpInputs:
    """Check a sinogram block and build its geometry (filter, weights, phases, points)."""
    sino = np.asarray(sino)
    squeeze = sino.ndim == 2
    if squeeze:
        sino = sino[:, None, :]
    if sino.ndim != 3:
        raise InputError(
            f"sinogram block must have shape (angle, row, col); got shape {sino.shape}"
        )
    n_angles, n_rows, n_det = sino.shape
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if theta.size != n_angles:
        raise InputError(
            f"{theta.size} angles given for a sinogram with {n_angles} projections; "
            "give one angle (radians) per projection"
        )
    check_filter(filter, filter_cutoff, filter_order)
    check_finite(sino)
    if center is None:
        center = default_center(n_det, tomopy_convention)
    centers = np.broadcast_to(np.asarray(center, dtype=np.float64), (n_rows,)).copy()
    geo = _geometry(
        n_det,
        theta,
        n=int(n or n_det),
        filter=filter,
        cutoff=filter_cutoff,
        order=filter_order,
        pad=pad,
        circle=circle,
        tomopy_convention=tomopy_convention,
    )
    return FbpInputs(
        sino.astype(np.float32, copy=False), centers, geo, pad, circle, tomopy_convention,
        squeeze,
    )


def fbp_pipeline(inp: FbpInputs, ops: Any, nufft: Any) -> np.ndarray:
    """Filter, pack two rows per complex transform, FFT, weight, NUFFT and unpack.

    ``ops`` is the array module (:class:`~tomochunk.recon.gridrec.NumpyOps` or the GPU one)
    and ``nufft`` maps a ``(n_trans, n_angles * L)`` complex64 coefficient batch to
    ``(n_trans, n, n)`` images;
    everything else is this one implementation.
    """
    geo = inp.geo
    n, n_rows = geo.n, inp.sino.shape[1]
    q = _filtered(ops.asarray(inp.sino), inp.centers, geo, inp.pad, ops)
    packed = ops.pack(q, n_rows)
    del q
    n_pairs = packed.shape[0]
    coeffs = ops.fft(packed)
    del packed
    coeffs *= ops.asarray(geo.factor[None])
    coeffs = coeffs.reshape(n_pairs, -1)

    out = np.empty((n_rows, n, n), dtype=np.float32)
    per_pair = coeffs.shape[1] * 8
    batch = int(max(1, min(n_pairs, _BATCH_BYTES // max(per_pair, 1))))
    for start in range(0, n_pairs, batch):
        stop = min(start + batch, n_pairs)
        nt = stop - start
        img = nufft(ops.contiguous(coeffs[start:stop]))
        img = img.reshape(nt, n, n)
        out[2 * start : 2 * stop : 2] = ops.to_host(img.real)
        n_odd = min(stop, n_rows // 2) - start
        if n_odd > 0:
            out[2 * start + 1 : 2 * (start + n_odd) : 2] = ops.to_host(img.imag[:n_odd])
    if inp.circle:
        out[:, ~circle_mask(n, tomopy_convention=inp.tomopy_convention)] = 0.0
    return out[0] if inp.squeeze else out
