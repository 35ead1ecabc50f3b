"""Angle order: monotonic, interleaved and golden-angle acquisitions.

The choice (documented in the README):

* **Splits follow the acquisition order.** Projection ``i`` (the ``i``-th acquired) goes to
  subset ``i mod K`` (:func:`tomochunk.recon.split.split_indices`), whatever its angle. For a
  golden-angle sequence every K-th projection is itself a low-discrepancy sequence, so each
  subset covers the half turn about evenly; and projections acquired at different times carry
  independent counting noise, so the subsets are independent as Noise2Inverse needs.
  Splitting by sorted angle instead would pair neighbouring angles acquired far apart in time,
  which is also independent, but gives uneven subsets for golden-angle scans.
* **Reconstruction sorts by angle.** Each subset (and the full set) is handed to the
  reconstructor sorted by angle (:func:`by_angle`). The result of a linear FBP does not depend
  on the order, but backends that assume ordered angles are safe.
* **Angle weights.** The native backend weights every projection by half the gap to its
  neighbours modulo ``pi`` (:func:`tomochunk.recon.geometry.angle_weights`), so uneven
  coverage (golden-angle subsets, missing projections, 360-degree scans) is weighted
  correctly. Backends that assume ``pi / n`` per angle (astra, tomopy) get the projections
  pre-scaled by ``w_i n / pi`` (:func:`weight_factors`), which is the same thing for a linear
  reconstructor.
"""

from __future__ import annotations

import numpy as np

from .geometry import angle_weights

__all__ = ["by_angle", "is_monotonic", "weight_factors", "order_name"]


def by_angle(idx: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``idx`` reordered so that ``theta[idx]`` increases (stable for equal angles)."""
    idx = np.asarray(idx)
    return idx[np.argsort(np.asarray(theta)[idx], kind="stable")]


def is_monotonic(theta: np.ndarray) -> bool:
    """True when the angles strictly increase or strictly decrease."""
    d = np.diff(np.asarray(theta, dtype=np.float64))
    return bool(np.all(d > 0) or np.all(d < 0))


def order_name(theta: np.ndarray) -> str:
    """``"monotonic"`` or ``"interleaved"`` (the ``angle_order`` attribute of a recon)."""
    return "monotonic" if is_monotonic(theta) else "interleaved"


def weight_factors(theta: np.ndarray, rtol: float = 1e-6) -> np.ndarray | None:
    """Per-projection factors ``w_i n / pi`` that turn a ``pi / n`` quadrature into the
    angle weights ``w_i``; None when the angles are evenly weighted already (all ~1)."""
    theta = np.asarray(theta, dtype=np.float64)
    f = angle_weights(theta) * theta.size / np.pi
    if np.all(np.abs(f - 1.0) <= rtol):
        return None
    return f
