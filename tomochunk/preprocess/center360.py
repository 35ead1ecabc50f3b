"""Axis and overlap of 360-degree (half-acquisition) scans, as in Vo's 360-degree method.

For a 360-degree scan the projection at ``theta + pi`` is the mirror image, about the rotation
axis, of the projection at ``theta``. With the axis at column ``c`` of an ``n``-column
detector (right half), the last ``w = 2 (n - 1 - c) + 1`` columns of the first projection
equal the first ``w`` columns of the mirrored opposite one. :func:`find_overlap_360`
compares, for every candidate overlap ``w`` and both sides, the two sinograms of opposite
half turns over that overlap (mean squared difference, after removing each one's mean, over
their power; featureless windows are skipped), takes
the best ``w`` and refines it to sub-pixel by a parabola through its neighbours (Vo, Atwood,
Drakopoulos, Opt. Express 29, 17849 (2021), "360-degree overlap").
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..config import PreprocessConfig
from ..errors import InputError
from ..runtime.logs import get_logger

__all__ = ["find_overlap_360", "find_center_360"]

_log = get_logger("preprocess.center360")


def _metric(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> float:
    """Mean squared difference of the mean-free windows over their mean power; ``inf`` for
    windows with less power than ``floor`` (featureless air matches at any overlap)."""
    a = a - a.mean()
    b = b - b.mean()
    norm = float(np.mean(a * a) + np.mean(b * b))
    return float(np.mean((a - b) ** 2)) / norm if norm > max(floor, 0.0) and norm > 0 else np.inf


def find_overlap_360(
    sino: np.ndarray, theta: np.ndarray, *, min_overlap: int = 4
) -> tuple[float, float, str]:
    """Axis, overlap and side of a 360-degree sinogram ``(angle, col)``.

    Returns
    -------
    center : float
        Rotation axis, 0-based detector column.
    overlap : float
        Columns seen by both opposite projections.
    side : {"right", "left"}
        Detector side the axis lies on.

    Raises
    ------
    InputError
        When the angles do not hold opposite pairs (not a 360-degree scan).
    """
    from ..recon.stitch import opposite_pairs

    sino = np.asarray(sino, dtype=np.float64)
    n = sino.shape[-1]
    a, b = opposite_pairs(theta)
    s1, s2 = sino[a], sino[b][:, ::-1]
    widths = np.arange(max(2, min_overlap), n + 1)
    floor = 1e-3 * float(np.var(s1) + np.var(s2))  # windows with features only
    best: tuple[float, float, str] | None = None
    best_cost = np.inf
    for side in ("right", "left"):
        if side == "right":
            costs = np.array([_metric(s1[:, n - w :], s2[:, :w], floor) for w in widths])
        else:
            costs = np.array([_metric(s1[:, :w], s2[:, n - w :], floor) for w in widths])
        i = int(np.argmin(costs))
        w = float(widths[i])
        if 0 < i < widths.size - 1:
            c0, c1, c2 = costs[i - 1], costs[i], costs[i + 1]
            den = c0 - 2 * c1 + c2
            if np.isfinite(den) and den > 0:
                w += float(np.clip(0.5 * (c0 - c2) / den, -0.5, 0.5))
        if costs[i] < best_cost:
            best_cost = float(costs[i])
            center = n - 1 - (w - 1) / 2 if side == "right" else (w - 1) / 2
            best = (center, w, side)
    assert best is not None
    return best


def find_center_360(scan: xr.Dataset, config: PreprocessConfig,
                    rows: np.ndarray | list[int] | None = None) -> float:
    """Rotation axis of a 360-degree scan dataset (median of a few rows, see
    :func:`find_overlap_360`); a float ``config.center`` is returned as given."""
    from .center import _attenuation, _default_rows

    if config.center != "auto":
        return float(config.center)
    n_rows = scan.sizes["row"]
    rows = np.asarray(_default_rows(n_rows, False) if rows is None else rows, dtype=int)
    if rows.size == 0 or rows.min() < 0 or rows.max() >= n_rows:
        raise InputError(f"rows {rows.tolist()} are outside the detector's 0..{n_rows - 1}")
    theta = np.asarray(scan["theta"].values, dtype=np.float64)
    att = _attenuation(scan, slice(None), rows, config)
    found = [find_overlap_360(att[:, r, :], theta) for r in range(att.shape[1])]
    center = float(np.median([f[0] for f in found]))
    _log.info("360-degree axis %.2f (overlap %.1f columns, axis on the %s) by matching "
              "opposite projections (rows %s)", center, found[len(found) // 2][1],
              found[len(found) // 2][2], rows.tolist())
    return center
