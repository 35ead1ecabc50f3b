"""Noise estimate from two independent half reconstructions.

The halves of a split scan share the signal and have independent noise of equal variance,
``a = s + n_a`` and ``b = s + n_b``, so ``(a - b) / sqrt(2)`` is pure noise with the
standard deviation of one half (Hendriksen et al. 2020, IEEE Trans. Comput. Imaging 6:1320;
the same idea as the odd/even frame estimate in electron microscopy). The full
reconstruction (mean of K=2 halves) has ``1 / sqrt(2)`` of it. A map of it over ``xy``
shows inhomogeneous illumination (Flenner et al. 2022, Fig. 4 and 7: noise rises towards
the edge of the field of view).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .cnr import as_image

__all__ = ["noise_from_halves"]


def noise_from_halves(a: Any, b: Any, *, window: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Noise standard deviation per slice and as an ``xy`` map from two halves.

    With ``d = (a - b) / sqrt(2)`` and each slice's mean of ``d`` removed (a constant offset
    between the halves is not noise)::

        per_slice_std[z] = std_{y,x}(d[z])
        xy_map[y, x]     = sqrt( box_window( mean_z d^2 )[y, x] )

    where ``box_window`` is a ``window`` x ``window`` moving average
    (:func:`scipy.ndimage.uniform_filter`), so a thin slab or a single slice still gives a
    smooth local estimate.

    Parameters
    ----------
    a, b : array_like, 2D ``(y, x)`` or 3D ``(z, y, x)``, same shape
        Two reconstructions from disjoint halves of the projections.
    window : int
        Side of the in-plane averaging window of the map, in pixels (>= 1).

    Returns
    -------
    per_slice_std : numpy.ndarray, shape (z,)
        Noise std of one half per slice (``(1,)`` for 2D input).
    xy_map : numpy.ndarray, shape (y, x)
        Local noise std of one half.
    """
    x = as_image(a, "half a")
    y = as_image(b, "half b")
    if x.shape != y.shape:
        raise InputError(
            f"the two halves must have the same shape, got {x.shape} and {y.shape}; pass "
            "split[0] and split[1] of the same recon store"
        )
    if window < 1:
        raise InputError(f"window must be >= 1, got {window}")
    d = (x - y) / np.sqrt(2.0)
    if d.ndim == 2:
        d = d[None]
    d = d - np.nanmean(d, axis=(1, 2), keepdims=True)
    per_slice = np.nanstd(d, axis=(1, 2))
    power = np.nanmean(d**2, axis=0)
    xy_map = np.sqrt(np.maximum(ndimage.uniform_filter(power, size=window, mode="reflect"), 0))
    return per_slice, xy_map
