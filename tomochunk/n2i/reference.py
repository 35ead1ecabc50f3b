"""The Noise2Inverse prediction: every pairing of the K splits, averaged (the one reference).

Hendriksen, Pelt & Batenburg (2020, Eq. 9): the network is applied to every pairing ``k`` of
the K split reconstructions (for ``X:1`` the input is the mean of the other K-1 splits) and
the K predictions are averaged. :func:`denoise_slab` does this for the core slices of a slab
(chunked inference calls it per chunk); :func:`denoise_volume` for a whole volume in memory,
the reference that chunked inference must equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..chunks import Slab
from ..errors import InputError
from .pairs import context_indices, pair_input

__all__ = ["Predict", "denoise_slab", "denoise_volume"]

#: ``(B, context, H, W) -> (B, H, W)`` on un-normalised data.
Predict = Callable[[np.ndarray], np.ndarray]


def denoise_slab(slab: np.ndarray, info: Slab, predict: Predict, *, context: int,
                 strategy: str, batch_size: int = 4) -> np.ndarray:
    """Mean over the K pairings of the predictions for slices ``[info.z0, info.z1)``.

    Parameters
    ----------
    slab : numpy.ndarray, shape (K, hi - lo, H, W)
        The split slab ``[info.lo, info.hi)``, thick enough for the context of every core
        slice (mirrored at the volume ends as in training).
    info : Slab
        Where the slab and its core lie in the volume.
    predict : callable
        ``(B, context, H, W) -> (B, H, W)``.
    context : int
        Odd number of input slices.
    strategy : {"X:1", "1:X"}
    batch_size : int
        Slices per call of ``predict``.

    Returns
    -------
    numpy.ndarray, float32, shape (z1 - z0, H, W)
    """
    n_k = slab.shape[0]
    zs = list(range(info.z0, info.z1))
    idx = [context_indices(z, info.n_z, context) - info.lo for z in zs]
    if any(i.min() < 0 or i.max() >= slab.shape[1] for i in idx):
        raise ValueError(f"slab {info} is too thin for a context of {context} slices")
    out = np.zeros((len(zs),) + slab.shape[2:], np.float64)
    for k in range(n_k):
        # (hi - lo, H, W); strategy is the model metadata's string, which pair_input checks
        inputs = pair_input(slab, k, strategy)  # type: ignore[arg-type]
        for b0 in range(0, len(zs), batch_size):
            x = np.stack([inputs[i] for i in idx[b0:b0 + batch_size]])
            out[b0:b0 + len(x)] += predict(x)
    mean: np.ndarray = (out / n_k).astype(np.float32)
    return mean


def denoise_volume(splits: np.ndarray, model: Any, *, batch_size: int = 4,
                   predict: Predict | None = None) -> np.ndarray:
    """Denoise whole split volumes ``(K, Z, H, W)`` in memory (the exactness reference).

    Parameters
    ----------
    splits : numpy.ndarray, shape (K, Z, H, W)
        The split reconstructions; K must equal the model's ``n_splits``.
    model : TrainedModel
        Anything with ``metadata`` (``context``, ``strategy``, ``n_splits``) and
        ``predict((B, context, H, W)) -> (B, H, W)``.
    batch_size : int
        Slices per forward pass.
    predict : callable, optional
        Used instead of ``model.predict`` (inference passes its tiled, self-ensembled one).

    Returns
    -------
    numpy.ndarray, float32, shape (Z, H, W)
        The mean of the K predictions.
    """
    splits = np.asarray(splits, dtype=np.float32)
    meta = model.metadata
    if splits.ndim != 4 or splits.shape[0] != int(meta["n_splits"]):
        raise InputError(
            f"expected ({meta['n_splits']}, Z, H, W) split volumes for this model, got "
            f"shape {splits.shape}"
        )
    n_z = splits.shape[1]
    return denoise_slab(splits, Slab(0, n_z, 0, n_z, n_z), predict or model.predict,
                        context=int(meta["context"]), strategy=str(meta["strategy"]),
                        batch_size=batch_size)
