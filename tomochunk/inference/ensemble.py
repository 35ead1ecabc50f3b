"""D4 self-ensemble: average a 2D predictor over the 8 symmetries of the square.

The 8 in-plane symmetries (4 quarter turns, each with and without a left-right flip) are the
ones :func:`tomochunk.training.dataset.augment` applies as training augmentation, so the
network has learned all of them. At inference each input is transformed, predicted, and the
prediction mapped back with the inverse symmetry; the mean of the 8 is the ensemble
(Timofte et al. 2016, "Seven ways to improve example-based single image super resolution").
Averaging removes the part of the network's error that is not symmetric, which for a
self-supervised denoiser is mostly residual noise.

Slices need not be square: a quarter turn swaps H and W of the input and the inverse turn
swaps them back. Each transformed prediction is exact with whole-slice or exactly tiled
inference, because tiling only depends on the (translation-equivariant) network, not on the
orientation of the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["D4_CODES", "d4_forward", "d4_inverse", "ensemble_codes", "ensemble_predict"]

#: The 8 symmetry codes: ``code % 4`` quarter turns, then a left-right flip when ``code >= 4``.
D4_CODES = tuple(range(8))


def d4_forward(a: np.ndarray, code: int) -> np.ndarray:
    """Apply symmetry ``code`` to the last two axes (as training augmentation does)."""
    out = np.rot90(a, code % 4, axes=(-2, -1))
    if code >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def d4_inverse(a: np.ndarray, code: int) -> np.ndarray:
    """Undo :func:`d4_forward`: ``d4_inverse(d4_forward(a, c), c) == a``."""
    out = a[..., ::-1] if code >= 4 else a
    return np.ascontiguousarray(np.rot90(out, -(code % 4), axes=(-2, -1)))


def ensemble_codes(n: int) -> Sequence[int]:
    """The symmetry codes of an ``n``-member ensemble: 1 (none), 2 (identity + flip),
    4 (quarter turns) or 8 (all of D4).

    Raises
    ------
    ConfigError
        ``n`` not in {1, 2, 4, 8}.
    """
    table = {1: (0,), 2: (0, 4), 4: (0, 1, 2, 3), 8: D4_CODES}
    if n not in table:
        raise ConfigError(f"ensemble must be 1, 2, 4 or 8 symmetries (got {n}); use 8 for the "
                          "full D4 self-ensemble or 1 to switch it off")
    return table[n]


def ensemble_predict(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                     n: int = 8) -> np.ndarray:
    """Mean of ``d4_inverse(predict(d4_forward(x, c)), c)`` over the ``n`` codes.

    Parameters
    ----------
    predict : callable
        ``(B, C, H, W) -> (B, H, W)`` (any ``H, W``; rotated inputs are ``(B, C, W, H)``).
    x : numpy.ndarray, shape (B, C, H, W)
    n : {1, 2, 4, 8}
        Ensemble size (1: plain prediction).

    Returns
    -------
    numpy.ndarray, float32, shape (B, H, W)
    """
    codes = ensemble_codes(n)
    if len(codes) == 1:
        return np.asarray(predict(x), dtype=np.float32)
    acc = np.zeros((x.shape[0],) + x.shape[2:], np.float64)
    for code in codes:
        acc += d4_inverse(np.asarray(predict(d4_forward(x, code))), code)
    return (acc / len(codes)).astype(np.float32)
