"""The noise of one split reconstruction, estimated from the K splits themselves.

Training records it as the model's ``noise_sigma``; inference compares it with the scan to
be denoised (:func:`tomochunk.inference.check_transfer`).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["circle_mask", "estimate_noise_sigma", "estimate_split_noise"]


def circle_mask(h: int, w: int) -> np.ndarray:
    """Boolean ``(h, w)`` mask of the circle inscribed in the slice (the reconstruction's FOV)."""
    r = min(h, w) / 2.0
    y = np.arange(h) - (h - 1) / 2.0
    x = np.arange(w) - (w - 1) / 2.0
    return (y[:, None] ** 2 + x[None, :] ** 2) <= r * r


def estimate_noise_sigma(
    stack: np.ndarray, mask: np.ndarray | None = None, chunk: int = 8
) -> float:
    """Noise standard deviation of ONE split reconstruction, from the K splits.

    With independent noise of equal variance sigma^2 in each split, the deviation of a split
    from the mean of all K has variance ``sigma^2 (K - 1) / K``, so
    ``sigma^2 = K / (K - 1) * mean_k var(s_k - mean(s))``. For K = 2 this is the standard
    deviation of ``(a - b) / sqrt(2)``. Computed over ``mask`` (default: the inscribed circle
    of each slice), ``chunk`` slices at a time so that memory stays bounded.

    Parameters
    ----------
    stack : array, shape (K, Z, H, W) or (K, H, W)
    mask : bool array of shape (H, W), optional
    chunk : int
        Slices per step.
    """
    stack = np.asarray(stack)
    if stack.ndim == 3:
        stack = stack[:, None]
    k = stack.shape[0]
    if k < 2:
        raise InputError("the noise estimate needs at least 2 split reconstructions")
    if mask is None:
        mask = circle_mask(*stack.shape[-2:])
    s1 = np.zeros(k)
    s2 = np.zeros(k)
    n = 0
    for z0 in range(0, stack.shape[1], chunk):
        sub = stack[:, z0 : z0 + chunk][..., mask].astype(np.float64)  # (K, z, m)
        d = sub - sub.mean(axis=0)
        s1 += d.sum(axis=(1, 2))
        s2 += (d * d).sum(axis=(1, 2))
        n += d[0].size
    var = s2 / n - (s1 / n) ** 2
    return float(np.sqrt(k / (k - 1) * var.mean()))


def estimate_split_noise(split: Any, n_slices: int = 8) -> float:
    """Noise std of ONE split reconstruction from ``n_slices`` evenly spaced slices.

    Uses :func:`estimate_noise_sigma` (for K = 2,
    ``std((a - b) / sqrt 2)`` over the inscribed circle), as training does for the model's
    ``noise_sigma``; only the sampled slices are read.
    """
    n_z = split.shape[1]
    zs = np.unique(np.linspace(0, n_z - 1, min(n_slices, n_z)).round().astype(int))
    sample = split[:, zs]
    sample = sample.values if isinstance(sample, xr.DataArray) else sample
    sample = sample.compute() if isinstance(sample, da.Array) else sample
    return float(estimate_noise_sigma(np.asarray(sample, dtype=np.float32)))
