"""PSNR and SSIM against a ground truth, with an optional least-squares affine fit.

A reconstruction need not share the truth's grey scale (a phantom in arbitrary units, a
gridrec scale factor, a constant offset from the filter), so by default ``x`` is first
mapped to the truth by the affine map that minimises the squared error inside the mask::

    (a, b) = argmin sum_{i in mask} (a x_i + b - t_i)^2
           a = cov(x, t) / var(x),  b = mean(t) - a mean(x)

This makes PSNR/SSIM invariant to the scale and offset of ``x`` (and never penalises a
method for them) while still penalising noise, blur and structure errors. Use
``fit="none"`` to compare raw values.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import InputError
from .cnr import as_image, check_mask

__all__ = ["affine_fit", "psnr", "ssim", "mse"]

Fit = Literal["affine", "none"]


def _prepare(x: Any, truth: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = as_image(truth, "truth")
    xa = as_image(x, "image")
    if xa.shape != t.shape:
        raise InputError(
            f"the image has shape {xa.shape} but the truth has shape {t.shape}; compare "
            "volumes of the same shape (crop the truth to the reconstructed region)"
        )
    m = np.ones(t.shape, bool) if mask is None else check_mask(mask, t.shape, "mask")
    m = m & np.isfinite(t) & np.isfinite(xa)
    if m.sum() < 2:
        raise InputError("fewer than 2 finite voxels inside the mask; use a larger mask")
    return xa, t, m


def affine_fit(x: Any, truth: Any, mask: Any = None) -> tuple[float, float]:
    """Least-squares ``(a, b)`` with ``a x + b ~ truth`` inside ``mask`` (see module doc)."""
    xa, t, m = _prepare(x, truth, mask)
    return _affine(xa[m], t[m])


def _affine(xv: np.ndarray, tv: np.ndarray) -> tuple[float, float]:
    vx = xv.var()
    if vx == 0:
        return 0.0, float(tv.mean())
    a = float(np.mean((xv - xv.mean()) * (tv - tv.mean())) / vx)
    return a, float(tv.mean() - a * xv.mean())


def _fitted(xa: np.ndarray, t: np.ndarray, m: np.ndarray, fit: str) -> np.ndarray:
    if fit == "none":
        return xa
    if fit == "affine":
        a, b = _affine(xa[m], t[m])
        return a * xa + b
    raise InputError(f"fit must be 'affine' or 'none', got {fit!r}")


def mse(x: Any, truth: Any, mask: Any = None, fit: Fit = "affine") -> float:
    """Mean squared error inside ``mask`` after the optional affine fit."""
    xa, t, m = _prepare(x, truth, mask)
    y = _fitted(xa, t, m, fit)
    return float(np.mean((y[m] - t[m]) ** 2))


def psnr(
    x: Any,
    truth: Any,
    mask: Any = None,
    fit: Fit = "affine",
    *,
    data_range: float | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    Parameters
    ----------
    x, truth : array_like, 2D or 3D, same shape
    mask : array_like of bool, optional
        Voxels to compare (default: all).
    fit : {"affine", "none"}
        Fit ``x`` to the truth by least squares first (module doc).
    data_range : float, optional
        Default: ``max - min`` of the truth inside the mask.

    Returns
    -------
    float
        PSNR in dB (``inf`` for a perfect match).
    """
    xa, t, m = _prepare(x, truth, mask)
    y = _fitted(xa, t, m, fit)
    err = float(np.mean((y[m] - t[m]) ** 2))
    rng = float(np.ptp(t[m])) if data_range is None else float(data_range)
    if rng <= 0:
        raise InputError("the truth is constant inside the mask; give data_range explicitly")
    if err == 0:
        return float("inf")
    return float(10.0 * np.log10(rng**2 / err))


def ssim(
    x: Any,
    truth: Any,
    mask: Any = None,
    fit: Fit = "affine",
    *,
    data_range: float | None = None,
    win_size: int = 7,
) -> float:
    """Mean structural similarity (Wang et al. 2004, IEEE Trans. Image Process. 13:600).

    The SSIM map comes from :func:`skimage.metrics.structural_similarity` (Gaussian-free
    7x7 window); a volume is treated slice by slice (2D SSIM of each ``z`` slice), and the
    map is averaged over ``mask``. The optional affine fit is as in :func:`psnr`.

    Returns
    -------
    float
        Mean SSIM inside the mask (1 = identical).
    """
    from skimage.metrics import structural_similarity

    xa, t, m = _prepare(x, truth, mask)
    y = _fitted(xa, t, m, fit)
    rng = float(np.ptp(t[m])) if data_range is None else float(data_range)
    if rng <= 0:
        raise InputError("the truth is constant inside the mask; give data_range explicitly")
    if min(t.shape[-2:]) < win_size:
        raise InputError(
            f"slices of shape {t.shape[-2:]} are smaller than the SSIM window {win_size}"
        )
    y3 = y.reshape((-1,) + y.shape[-2:])
    t3 = np.nan_to_num(t).reshape(y3.shape)
    smap = np.stack([
        structural_similarity(np.nan_to_num(a), b, data_range=rng, win_size=win_size,
                              full=True)[1]
        for a, b in zip(y3, t3, strict=True)
    ]).reshape(t.shape)
    return float(smap[m].mean())
