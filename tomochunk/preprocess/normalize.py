"""Flat/dark normalisation, ``-log`` with a floor, and checks of flats, darks and finiteness.

Everything here is plain numpy on in-memory blocks ``(angle, row, col)``; the Dask layer maps
it over blocks of detector rows (see :mod:`tomochunk.preprocess.chain`).

Policy for bad values (documented once, used by :func:`~tomochunk.preprocess.preprocess_block`):

* **Zero or negative flat-minus-dark.** :func:`normalize` clamps the denominator
  ``flat - dark`` to ``eps`` exactly like TomoPy. :func:`check_flat_dark` counts such pixels
  ("dead pixels", including non-finite flats/darks); isolated ones (e.g. the Diamond TIFFs,
  whose pixel ``[0, 0]`` is 0 in every frame) are only counted and later in-filled, while more
  than ``max_fraction`` of the detector raises :class:`~tomochunk.errors.InputError`.
* **Transmission <= floor.** :func:`minus_log` clips transmission to ``floor`` (default 1e-6,
  so the largest attenuation is ``-log(1e-6) = 13.8``) and returns how many values it clipped.
* **NaN / inf.** :func:`count_nonfinite` counts them; :func:`fill_invalid` replaces them by the
  median of the finite values among the 2 columns on each side in the same detector row of
  the same projection (0 when there are none). Staying in one detector row keeps the result
  independent of how the detector is cut into blocks of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError

__all__ = [
    "normalize",
    "reduce_stack",
    "minus_log",
    "count_nonfinite",
    "fill_invalid",
    "check_flat_dark",
    "dead_pixel_mask",
]

_REDUCERS = ("mean", "median")


def reduce_stack(stack: np.ndarray, how: str = "mean") -> np.ndarray:
    """Reduce a stack of flats or darks ``(n, row, col)`` to one float32 image ``(row, col)``.

    A 2D array is taken as already reduced and only cast to float32. The mean is accumulated in
    float32 like TomoPy's ``normalize`` (so results match it bit for bit).

    Parameters
    ----------
    stack : numpy.ndarray
        ``(n, row, col)`` or ``(row, col)``.
    how : {"mean", "median"}
        Reduction over the first axis.
    """
    if how not in _REDUCERS:
        raise InputError(f"flat/dark reduction {how!r} is unknown; use one of {_REDUCERS}")
    stack = np.asarray(stack)
    if stack.ndim == 2:
        return stack.astype(np.float32, copy=False)
    if stack.ndim != 3:
        raise InputError(
            f"flats/darks must have shape (n, row, col) or (row, col), got {stack.shape}"
        )
    if stack.shape[0] == 0:
        raise InputError("the stack of flats/darks is empty; provide at least one frame")
    if how == "mean":
        return np.asarray(np.mean(stack, axis=0, dtype=np.float32))
    return np.asarray(np.median(stack.astype(np.float32, copy=False), axis=0))


def normalize(
    proj: np.ndarray,
    flat: np.ndarray,
    dark: np.ndarray,
    *,
    flat_reduce: str = "mean",
    dark_reduce: str = "mean",
    eps: float = 1e-6,
) -> np.ndarray:
    """Flat/dark normalisation ``(proj - dark) / (flat - dark)``.

    The flats and darks are reduced over their first axis (mean in float32, or median), and the
    denominator ``flat - dark`` is clamped from below to ``eps``. With the defaults this equals
    TomoPy's ``tomopy.prep.normalize.normalize`` exactly (float32 throughout).

    Parameters
    ----------
    proj : numpy.ndarray
        Raw projections ``(angle, row, col)`` (any real dtype).
    flat, dark : numpy.ndarray
        ``(n, row, col)`` stacks or already reduced ``(row, col)`` images.
    flat_reduce, dark_reduce : {"mean", "median"}
        How the stacks are reduced.
    eps : float
        Lower clamp of ``flat - dark``.

    Returns
    -------
    numpy.ndarray
        Transmission, float32, same shape as ``proj``.
    """
    proj = np.asarray(proj).astype(np.float32, copy=False)
    flat_img = reduce_stack(flat, flat_reduce)
    dark_img = reduce_stack(dark, dark_reduce)
    _check_image_shape(proj.shape, flat_img.shape, "flat")
    _check_image_shape(proj.shape, dark_img.shape, "dark")
    denom = flat_img - dark_img
    denom = np.where(denom < np.float32(eps), np.float32(eps), denom)
    out: np.ndarray = proj - dark_img
    out /= denom
    return out


def minus_log(trans: np.ndarray, floor: float = 1e-6) -> tuple[np.ndarray, int]:
    """Attenuation ``-log(max(trans, floor))`` and the number of clipped values.

    Transmission at or below ``floor`` (zero, negative values from noisy dark subtraction,
    ...) is clipped to ``floor`` before the logarithm, so the largest attenuation is
    ``-log(floor)`` (13.8 for the default 1e-6). Non-finite input stays non-finite and is
    not counted as clipped: NaN and ``-inf`` give NaN, ``+inf`` gives ``-inf`` (count them
    with :func:`count_nonfinite`).

    Parameters
    ----------
    trans : numpy.ndarray
        Transmission (e.g. from :func:`normalize`).
    floor : float
        Smallest transmission kept, > 0.

    Returns
    -------
    attenuation : numpy.ndarray
        float32, same shape.
    clipped : int
        Number of finite values below ``floor``.
    """
    if not floor > 0:
        raise InputError(f"the -log floor must be > 0, got {floor}; use e.g. 1e-6")
    trans = np.asarray(trans, dtype=np.float32)
    f = np.float32(floor)
    low = (trans < f) & np.isfinite(trans)
    clipped = int(np.count_nonzero(low))
    out = np.where(low, f, trans)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.log(out, out=out)
    np.negative(out, out=out)
    return out, clipped


def count_nonfinite(a: np.ndarray) -> int:
    """Number of NaN or infinite values in ``a`` (0 for integer arrays)."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.inexact):
        return 0
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def fill_invalid(
    a: np.ndarray, mask: np.ndarray | None = None, *, reach: int = 2
) -> tuple[np.ndarray, int]:
    """Replace invalid values by the median of the valid values beside them in their row.

    The neighbours are the ``reach`` columns on each side in the same detector row of the same
    projection (clipped at the detector edges), so no information crosses angles or detector
    rows, and blocks of rows give the same result as the whole detector. Values with no valid
    neighbour become 0.

    Parameters
    ----------
    a : numpy.ndarray
        ``(..., col)`` array, e.g. ``(angle, row, col)``; a float32 copy is returned.
    mask : numpy.ndarray of bool, optional
        Extra invalid positions (broadcastable to ``a``), e.g. dead detector pixels; non-finite
        values are always invalid.
    reach : int
        Columns on each side taken as neighbours.

    Returns
    -------
    filled : numpy.ndarray
        float32 copy of ``a`` with every invalid value replaced.
    n : int
        Number of values replaced.
    """
    out = np.array(a, dtype=np.float32, copy=True)
    bad = ~np.isfinite(out)
    if mask is not None:
        bad |= np.broadcast_to(np.asarray(mask, dtype=bool), out.shape)
    n = int(np.count_nonzero(bad))
    if n == 0:
        return out, 0
    out[bad] = np.nan
    idx = np.nonzero(bad)
    n_cols = out.shape[-1]
    offsets = [d for d in range(-reach, reach + 1) if d != 0]
    neigh = [out[(*idx[:-1], np.clip(idx[-1] + d, 0, n_cols - 1))] for d in offsets]
    vals = np.stack(neigh, axis=0)
    any_finite = np.isfinite(vals).any(axis=0)
    med = np.zeros(vals.shape[1], dtype=np.float32)
    if any_finite.any():
        med[any_finite] = np.nanmedian(vals[:, any_finite], axis=0)
    out[idx] = med
    return out, n


def dead_pixel_mask(flat_img: np.ndarray, dark_img: np.ndarray) -> np.ndarray:
    """Pixels whose ``flat - dark`` is <= 0 or non-finite (reduced 2D images in, bool out)."""
    with np.errstate(invalid="ignore"):
        diff = np.asarray(flat_img, dtype=np.float32) - np.asarray(dark_img, dtype=np.float32)
        return ~(diff > 0)


def check_flat_dark(
    flat: np.ndarray,
    dark: np.ndarray,
    *,
    projections_shape: Sequence[int] | None = None,
    max_fraction: float = 0.01,
) -> None:
    """Check flats and darks before normalisation.

    Isolated dead pixels (``flat - dark <= 0`` or non-finite, after reducing each stack by its
    mean) are allowed: :func:`normalize` clamps them and the pipeline in-fills them. When more
    than ``max_fraction`` of the detector is dead, the flats and darks are almost certainly
    swapped, empty or from another detector setting, and an error is raised.

    Parameters
    ----------
    flat, dark : numpy.ndarray
        ``(n, row, col)`` stacks or reduced ``(row, col)`` images.
    projections_shape : sequence of int, optional
        Shape ``(angle, row, col)`` of the projections; the (row, col) of flats and darks
        must equal its last two entries.
    max_fraction : float
        Largest tolerated fraction of dead pixels.

    Raises
    ------
    InputError
        On mismatching shapes (both shapes named) or too many dead pixels (fraction named).
    """
    flat = np.asarray(flat)
    dark = np.asarray(dark)
    for name, arr in (("flat", flat), ("dark", dark)):
        if arr.ndim not in (2, 3):
            raise InputError(
                f"{name} must have shape (n, row, col) or (row, col), got {arr.shape}; "
                f"give the {name} frames as a stack"
            )
    if flat.shape[-2:] != dark.shape[-2:]:
        raise InputError(
            f"flat frames have shape {flat.shape} but dark frames have shape {dark.shape}; "
            "their (row, col) must match: take flats and darks from the same detector region"
        )
    if projections_shape is not None:
        _check_image_shape(tuple(projections_shape), flat.shape, "flat")
        _check_image_shape(tuple(projections_shape), dark.shape, "dark")
    dead = dead_pixel_mask(reduce_stack(flat, "mean"), reduce_stack(dark, "mean"))
    frac = float(dead.mean()) if dead.size else 0.0
    if frac > max_fraction:
        raise InputError(
            f"flat - dark is <= 0 (or not finite) on {frac:.1%} of the detector pixels "
            f"checked ({int(dead.sum())} of the {dead.size} pixels of {dead.shape[-2]} detector "
            f"row(s) x {dead.shape[-1]} columns; at most {max_fraction:.1%} are tolerated as "
            "dead pixels). Check that flats and darks are not swapped and come from this scan, "
            "or pass already normalised data without flats/darks"
        )


def _check_image_shape(proj_shape: tuple[int, ...], img_shape: tuple[int, ...], name: str) -> None:
    if tuple(img_shape[-2:]) != tuple(proj_shape[-2:]):
        raise InputError(
            f"{name} frames have shape {tuple(img_shape)} but projections have shape "
            f"{tuple(proj_shape)}; the (row, col) of the {name} frames must equal the "
            f"projections' (row, col): crop or select the same detector rows for both"
        )
