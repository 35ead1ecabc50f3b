"""Noise2Inverse pairing: the 2.5D context of a slice, the input/target of a pairing, merging.

Noise2Inverse (Hendriksen, Pelt & Batenburg 2020, IEEE Trans. Comput. Imaging 6, 1320)
reconstructs K interleaved subsets of the projections separately; a network maps one
combination of the splits to another. Flenner et al. (2022, J. Synchrotron Rad. 29, 230) feed
2.5D input: the slice and its neighbours along z as channels. Training and inference build
their input with these functions, so both see exactly the same data.

Slices beyond the volume ends are mirrored *without repeating the edge slice*: index -1 reads
slice 1, index Z reads slice Z-2 (``numpy.pad(mode="reflect")``).
"""

from __future__ import annotations

from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from ..errors import InputError, ModelError

__all__ = ["Strategy", "context_indices", "merge_splits", "pair_input", "pair_target",
           "reflect_indices"]

#: ``X:1``: the mean of K-1 splits predicts the remaining one; ``1:X`` the reverse.
Strategy = Literal["X:1", "1:X"]


def reflect_indices(idx: np.ndarray | int, n: int) -> np.ndarray:
    """Map (possibly out-of-range) indices into ``[0, n)`` by mirroring at both ends.

    The edge element is not repeated: for ``n = 5``, ``-1 -> 1``, ``-2 -> 2``, ``5 -> 3``,
    ``6 -> 2``. Indices further out keep reflecting (period ``2 (n - 1)``), which is what
    ``numpy.pad(a, w, mode="reflect")`` does. For ``n = 1`` every index maps to 0.

    Parameters
    ----------
    idx : int or array of int
    n : int
        Length of the axis, >= 1.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if n < 1:
        raise InputError(f"cannot index an axis of length {n}")
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    r = np.abs(idx) % period
    folded: np.ndarray = np.where(r >= n, period - r, r)
    return folded


def context_indices(z: int, n_z: int, context: int) -> np.ndarray:
    """Slice indices of the 2.5D input for slice ``z``: ``z - context//2 ... z + context//2``.

    Indices outside ``[0, n_z)`` are mirrored without repeating the edge slice (see
    :func:`reflect_indices`): ``context_indices(0, 10, 5) == [2, 1, 0, 1, 2]`` and
    ``context_indices(9, 10, 5) == [7, 8, 9, 8, 7]``. The centre channel is slice ``z``.

    Parameters
    ----------
    z : int
        Centre slice, ``0 <= z < n_z``.
    n_z : int
        Number of slices of the volume.
    context : int
        Odd number of input slices (channels).

    Returns
    -------
    numpy.ndarray of int64, shape (context,)
    """
    if context < 1 or context % 2 == 0:
        raise InputError(f"context must be an odd number >= 1, got {context}")
    if not 0 <= z < n_z:
        raise InputError(f"slice {z} is outside the volume of {n_z} slices")
    half = context // 2
    return reflect_indices(np.arange(z - half, z + half + 1), n_z)


def pair_input(stack: np.ndarray, k: int, strategy: Strategy = "X:1") -> np.ndarray:
    """Network input of Noise2Inverse pairing ``k`` from a split stack ``(K, ...)``.

    ``X:1``: the mean of every split except ``k``; ``1:X``: split ``k`` itself
    (Hendriksen et al. 2020, Sec. III-C). Returns float32 of shape ``stack.shape[1:]``.
    """
    n = stack.shape[0]
    if strategy == "X:1":
        total = stack.sum(axis=0, dtype=np.float64)
        mean_others: np.ndarray = ((total - stack[k]) / (n - 1)).astype(np.float32)
        return mean_others
    if strategy == "1:X":
        return np.asarray(stack[k], dtype=np.float32)
    raise InputError(f"unknown strategy {strategy!r}; use 'X:1' or '1:X'")


def pair_target(stack: np.ndarray, k: int, strategy: Strategy = "X:1") -> np.ndarray:
    """Training target of pairing ``k``.

    Split ``k`` (``X:1``) or the mean of the other splits (``1:X``).
    """
    return pair_input(stack, k, "1:X" if strategy == "X:1" else "X:1")


def merge_splits(split: Any, k_model: int) -> Any:
    """Average ``K_store = m * k_model`` splits into ``k_model`` interleaved splits.

    Split ``j`` of the result is the mean of store splits ``j, j + k_model, ...``: with
    projection ``i`` in split ``i mod K``, that is the (linear) reconstruction of the
    model's split ``j``. Works on numpy, Dask and xarray ``(K, z, y, x)`` arrays.
    """
    k_store = split.shape[0]
    if k_store == k_model:
        return split
    if k_store % k_model:
        raise ModelError(f"{k_store} splits cannot be merged into {k_model}")
    parts = [split[j::k_model].mean(axis=0) if not isinstance(split, xr.DataArray)
             else split[j::k_model].mean("split") for j in range(k_model)]
    if isinstance(split, xr.DataArray):
        return xr.concat(parts, dim="split").transpose("split", ...)
    stack = da.stack if isinstance(split, da.Array) else np.stack
    return stack(parts).astype(np.float32)
