"""Half-acquisition (offset-axis) 360-degree scans: stitch opposite projections.

With the rotation axis near one edge of the detector, the projection at ``theta + pi`` is the
mirror image (about the axis) of the missing half of the projection at ``theta``. Joining each
projection of the first half turn with its mirrored partner gives a double-width 180-degree
sinogram; over the ``overlap`` columns seen by both (around the axis) the two are blended
linearly (Vo et al., Opt. Express 29, 17849 (2021) call it the 360-degree overlap).

Noise2Inverse independence: the two projections of a pair are always in the same split,
because the splits are made over the pairs (pair ``p``, in the acquisition order of its first
projection, goes to split ``p mod K``): stitching happens within a split, never across.

Geometry: with the axis at detector column ``c`` (0-based) on the right half, the stitched
row has ``round(2 c) + 1`` columns and keeps the axis at column ``c``; column ``x`` is the
original column ``x`` (left of the overlap) or the partner's column ``2 c - x`` (right of it,
linearly interpolated when ``2 c`` is not an integer). An axis on the left half is the
mirror case.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..runtime.logs import get_logger

__all__ = ["opposite_pairs", "stitched_width", "overlap_width", "stitch_pairs",
           "stitch_half_acquisition"]

_log = get_logger("recon.stitch")


def overlap_width(n_det: int, center: float) -> float:
    """Columns seen by both projections of a pair: ``2 * distance(axis, far edge) + 1``."""
    c = float(center)
    side = (n_det - 1 - c) if c >= (n_det - 1) / 2 else c
    return 2.0 * side + 1.0


def stitched_width(n_det: int, center: float) -> int:
    """Columns of the stitched sinogram: ``round(2 c') + 1`` with ``c'`` the axis measured
    from the edge farther from it."""
    c = float(center)
    far = c if c >= (n_det - 1) / 2 else n_det - 1 - c
    return int(math.floor(2.0 * far + 0.5)) + 1


def opposite_pairs(theta: np.ndarray, tol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(a, b)`` of projections with ``theta[b] = theta[a] + pi`` (modulo 2 pi).

    ``a`` runs over the projections of the first half turn ``[theta_min, theta_min + pi)`` in
    acquisition order; each ``b`` is the projection closest to ``theta[a] + pi``. Projections
    without a partner within ``tol`` (default: half the median angular step) are dropped with
    a log line.

    Raises
    ------
    InputError
        When fewer than 2 pairs are found (not a 360-degree scan).
    """
    theta = np.asarray(theta, dtype=np.float64).ravel()
    n = theta.size
    t = np.mod(theta - theta.min(), 2 * np.pi)
    ts = np.sort(t)
    step = float(np.median(np.diff(ts))) if n > 2 else np.pi
    tol = 0.5 * step if tol is None else float(tol)
    first = np.flatnonzero(t < np.pi - tol)
    order = np.argsort(t, kind="stable")
    want = np.mod(t[first] + np.pi, 2 * np.pi)
    pos = np.searchsorted(ts, want)
    cand = np.stack([order[np.mod(pos - 1, n)], order[np.mod(pos, n)]])
    dist = np.abs(np.mod(t[cand] - want[None] + np.pi, 2 * np.pi) - np.pi)
    pick = np.argmin(dist, axis=0)
    b = cand[pick, np.arange(first.size)]
    ok = dist[pick, np.arange(first.size)] <= tol + 1e-12
    a, b = first[ok], b[ok]
    if a.size < 2:
        raise InputError(
            f"half acquisition needs a 360-degree scan with projections 180 degrees apart; "
            f"only {a.size} such pairs among {n} angles spanning "
            f"{np.degrees(np.ptp(theta)):.1f} degrees: check the angles or turn off "
            "half_acquisition"
        )
    if 2 * a.size < n:
        _log.info("half acquisition: %d of %d projections have no partner 180 degrees away "
                  "and are not used", n - 2 * a.size, n)
    return a, b


def stitch_pairs(first: np.ndarray, second: np.ndarray, center: float) -> np.ndarray:
    """Stitch projections ``first`` (..., n_det) with their opposite ``second`` into rows of
    :func:`stitched_width` columns, blended linearly over the overlap; axis kept at ``center``
    (right-half axis) or at ``width - 1 - (n_det - 1 - center)`` (left-half axis)."""
    first = np.asarray(first, dtype=np.float32)
    second = np.asarray(second, dtype=np.float32)
    n = first.shape[-1]
    c = float(center)
    if c < (n - 1) / 2:  # axis on the left: mirror, stitch, mirror back
        return stitch_pairs(first[..., ::-1], second[..., ::-1], n - 1 - c)[..., ::-1]
    width = stitched_width(n, c)
    x = np.arange(width, dtype=np.float64)
    lo, hi = 2 * c - (n - 1), n - 1.0  # overlap [lo, hi] in stitched columns
    w_first = np.clip((hi - x) / max(hi - lo, 1e-9), 0.0, 1.0)
    w_first[x <= lo] = 1.0
    w_first[x > hi] = 0.0
    out = np.zeros(first.shape[:-1] + (width,), dtype=np.float32)
    m = min(n, width)
    out[..., :m] = first[..., :m] * w_first[:m].astype(np.float32)
    src = 2 * c - x  # partner's column, for x >= lo
    use = x >= lo - 1e-9
    i0 = np.clip(np.floor(src[use]).astype(int), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    frac = (src[use] - np.floor(src[use])).astype(np.float32)
    mirrored = second[..., i0] * (1 - frac) + second[..., i1] * frac
    out[..., use] += mirrored * (1.0 - w_first[use]).astype(np.float32)
    return out


def stitch_half_acquisition(
    att: np.ndarray, theta: np.ndarray, center: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Stitch a 360-degree offset-axis block ``(angle, row, col)`` into a 180-degree one.

    Returns
    -------
    stitched : ndarray, shape (n_pairs, row, width)
        Pair ``p`` in the acquisition order of its first projection (so ``p mod K`` splits
        keep both projections of a pair in one split).
    theta : ndarray, shape (n_pairs,)
        Angle of each pair's first projection.
    center : float
        The axis in the stitched columns.
    """
    if np.ndim(center) != 0:
        raise InputError("half acquisition needs one global centre of rotation, not one per "
                         "row; turn off center_per_slice")
    c = float(center)
    n = att.shape[-1]
    a, b = opposite_pairs(theta)
    stitched = stitch_pairs(att[a], att[b], c)
    new_c = c if c >= (n - 1) / 2 else stitched.shape[-1] - 1 - (n - 1 - c)
    return np.ascontiguousarray(stitched), np.asarray(theta)[a], float(new_c)
