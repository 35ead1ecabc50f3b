"""Noise2Inverse training data: 2.5D slabs, input/target pairs, patches and augmentation.

Noise2Inverse (Hendriksen, Pelt & Batenburg 2020, IEEE Trans. Comput. Imaging 6, 1320)
reconstructs K interleaved subsets of the projections separately; their noise is
independent, so a network trained to map one reconstruction to another learns the signal
only. Flenner et al. (2022, J. Synchrotron Rad. 29, 230) feed the network 2.5D input: the
slice and its neighbours along z as channels.

Everything here is numpy; the training loop (:mod:`tomochunk.training.n2i`) turns batches into
tensors. The functions that define what the network sees (:func:`context_indices`,
:func:`pair_input`, :func:`pair_target`) are public, because inference must build its input
exactly as training did.

Conventions
-----------
- A volume stack is ``(K, Z, H, W)``: split, slice, row, column.
- ``z`` counts from the top of the detector (row 0): ``val_end="top"`` takes the validation
  slab from the lowest z, ``"bottom"`` (default) from the highest.
- Slices beyond the volume ends are mirrored *without repeating the edge slice*: index -1 reads
  slice 1, index Z reads slice Z-2 (``numpy.pad(mode="reflect")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from ..errors import InputError
from ..n2i import (
    Strategy,
    circle_mask,
    context_indices,
    estimate_noise_sigma,
    pair_input,
    pair_target,
    reflect_indices,
)

__all__ = [
    "context_indices",
    "reflect_indices",
    "pair_input",
    "pair_target",
    "augment",
    "N_AUGMENTATIONS",
    "SlabLayout",
    "slab_layout",
    "circle_mask",
    "estimate_noise_sigma",
    "check_finite",
    "N2IData",
    "TrainingData",
]

#: The 8 symmetries of the square (4 rotations x optional flip) used as augmentation.
N_AUGMENTATIONS = 8


def augment(a: np.ndarray, code: int) -> np.ndarray:
    """Apply symmetry ``code`` (0..7) of the square to the last two axes of ``a``.

    ``code % 4`` quarter turns (:func:`numpy.rot90`), then a left-right flip when
    ``code >= 4``; code 0 is the identity. The last two axes must be equal for rotations to
    keep the shape.
    """
    if not 0 <= code < N_AUGMENTATIONS:
        raise InputError(f"augmentation code must be in 0..7, got {code}")
    out = np.rot90(a, code % 4, axes=(-2, -1))
    if code >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class SlabLayout:
    """Which slices train, which validate, and which must be read.

    Training slices are ``range(*train)``, validation slices ``range(*val)``; between them lie
    ``gap = context // 2`` slices that are neither, so that no training input (a slice and its
    ``context // 2`` neighbours) contains a validation slice. ``read`` is the slab of the
    volume that holds every slice any of those inputs reads.
    """

    n_z: int
    context: int
    train: tuple[int, int]
    val: tuple[int, int]
    gap: int
    read: tuple[int, int]
    #: In-plane validation (few-slice scans, :mod:`tomochunk.training.validation`): training
    #: patches lie within columns ``train_cols``, validation uses columns ``val_cols``.
    train_cols: tuple[int, int] | None = None
    val_cols: tuple[int, int] | None = None

    @property
    def train_slices(self) -> np.ndarray:
        return np.arange(*self.train)

    @property
    def val_slices(self) -> np.ndarray:
        return np.arange(*self.val)


def slab_layout(
    n_z: int,
    context: int,
    val_fraction: float = 0.1,
    val_end: Literal["top", "bottom"] = "bottom",
    max_train_slices: int | None = None,
) -> SlabLayout:
    """Split ``n_z`` slices into a training slab, a gap and a validation slab at one end.

    The validation slab has ``max(1, round(val_fraction * n_z))`` slices; the gap
    ``context // 2``; the training slab the rest (at most ``max_train_slices``, taken next to
    the gap), and it must hold at least ``context`` slices.

    Raises
    ------
    InputError
        If the volume has too few slices; the message gives the count needed.
    """
    if context < 1 or context % 2 == 0:
        raise InputError(f"context must be an odd number >= 1, got {context}")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    gap = context // 2
    n_val = max(1, int(round(val_fraction * n_z)))
    n_train = n_z - n_val - gap
    needed = context + gap + n_val
    if n_train < context:
        raise InputError(
            f"the reconstruction has {n_z} slices but training with context={context} needs at "
            f"least {needed} ({context} training + {gap} gap + {n_val} validation slices); "
            "use a smaller --context or reconstruct more slices"
        )
    if max_train_slices is not None:
        n_train = min(n_train, max(context, int(max_train_slices)))
    if val_end == "bottom":
        val = (n_z - n_val, n_z)
        train = (val[0] - gap - n_train, val[0] - gap)
    elif val_end == "top":
        val = (0, n_val)
        train = (n_val + gap, n_val + gap + n_train)
    else:
        raise InputError(f"val_end must be 'top' or 'bottom', got {val_end!r}")
    used = np.concatenate(
        [context_indices(z, n_z, context) for z in (*range(*train), *range(*val))]
    )
    return SlabLayout(n_z, context, train, val, gap, (int(used.min()), int(used.max()) + 1))


def check_finite(stack: np.ndarray, z0: int = 0, what: str = "split") -> None:
    """Raise :class:`InputError` if the stack ``(K, Z, H, W)`` holds NaN or infinity.

    ``z0`` is the volume index of the stack's first slice, used in the message.
    """
    bad = ~np.isfinite(stack)
    n_bad = int(bad.sum())
    if n_bad:
        s, z = np.argwhere(bad)[0][:2]
        raise InputError(
            f"the {what} volumes hold {n_bad} non-finite values (NaN/inf), the first in split "
            f"{s} at slice z={z0 + z}; fix the reconstruction (e.g. re-run 'tomochunk recon' "
            "with a valid centre and log floor) before training"
        )


class TrainingData(Protocol):
    """What the training loop reads from its data: an :class:`N2IData`, or one rank's share of
    it (:class:`tomochunk.training.cuda.RankShard`)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def val_pair(self, z: int, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def validation_pairs(self) -> list[tuple[int, int]]: ...

    def sample_patches(self, rng: np.random.Generator, n: int,
                       patch: int) -> tuple[np.ndarray, np.ndarray]: ...


class N2IData:
    """The training and validation data of one Noise2Inverse run, held in memory.

    Parameters
    ----------
    slab : array, shape (K, R, H, W)
        The split reconstructions of the slices ``layout.read`` (R = read[1] - read[0]).
    layout : SlabLayout
    strategy : {"X:1", "1:X"}
    """

    def __init__(self, slab: np.ndarray, layout: SlabLayout, strategy: Strategy = "X:1"):
        slab = np.asarray(slab, dtype=np.float32)
        if slab.ndim != 4 or slab.shape[0] < 2:
            raise InputError(f"expected a split stack (K>=2, Z, H, W), got shape {slab.shape}")
        if slab.shape[1] != layout.read[1] - layout.read[0]:
            raise InputError(
                f"slab has {slab.shape[1]} slices but the layout reads {layout.read}"
            )
        self.slab = slab
        self.layout = layout
        self.strategy = strategy
        self.n_splits = slab.shape[0]
        self.shape = slab.shape[2:]

    # -- whole slices -------------------------------------------------------------------
    def stack_at(self, z: int) -> np.ndarray:
        """The split stack of the 2.5D input around volume slice ``z``: (K, context, H, W)."""
        idx = context_indices(z, self.layout.n_z, self.layout.context) - self.layout.read[0]
        return self.slab[:, idx]

    def pair(self, z: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-normalised ``(input (context, H, W), target (H, W))`` of slice ``z``, pairing k."""
        stack = self.stack_at(z)
        centre = self.layout.context // 2
        return pair_input(stack, k, self.strategy), pair_target(stack[:, centre], k, self.strategy)

    def val_pair(self, z: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`pair` restricted to the validation columns (all columns for a z slab)."""
        x, y = self.pair(z, k)
        if self.layout.val_cols is None:
            return x, y
        c0, c1 = self.layout.val_cols
        return np.ascontiguousarray(x[..., c0:c1]), np.ascontiguousarray(y[..., c0:c1])

    def validation_pairs(self) -> list[tuple[int, int]]:
        """All ``(z, k)``: every validation slice in every pairing."""
        return [(int(z), k) for z in self.layout.val_slices for k in range(self.n_splits)]

    # -- statistics -----------------------------------------------------------------------
    def norm_stats(self, chunk: int = 8) -> dict[str, dict[str, float]]:
        """Mean and standard deviation of inputs and targets over the training slices.

        Taken over every training slice (the centre slices, all K pairings), ``chunk``
        slices at a time; the input statistics are those of the paired input (for X:1 the
        mean of K-1 splits, whose noise is lower than a single split's).
        """
        lo, hi = self.layout.train
        r0 = self.layout.read[0]
        out = {}
        for name, fn in (("input", pair_input), ("output", pair_target)):
            s = s2 = 0.0
            n = 0
            for z0 in range(lo - r0, hi - r0, chunk):
                sub = self.slab[:, z0 : min(z0 + chunk, hi - r0)]
                for k in range(self.n_splits):
                    v = fn(sub, k, self.strategy).astype(np.float64)
                    s += float(v.sum())
                    s2 += float((v * v).sum())
                    n += v.size
            mean = s / n
            std = float(np.sqrt(max(s2 / n - mean * mean, 0.0)))
            if not std > 0:
                raise InputError(
                    f"the training slices are constant ({name} std = 0): nothing to learn; "
                    "check the reconstruction"
                )
            out[name] = {"mean": float(mean), "std": std}
        return out

    def noise_sigma(self) -> float:
        """Noise of one split over the training slices (:func:`estimate_noise_sigma`)."""
        lo, hi = self.layout.train
        r0 = self.layout.read[0]
        return estimate_noise_sigma(self.slab[:, lo - r0 : hi - r0])

    # -- random patches -----------------------------------------------------------------
    def sample_patches(
        self, rng: np.random.Generator, n: int, patch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random augmented training patches.

        Each patch draws, in this order, a training slice, a pairing k, a corner and one of the
        8 symmetries from ``rng``, so a seeded generator gives the same batch every time.

        Returns
        -------
        x : float32 (n, context, patch, patch)
        y : float32 (n, 1, patch, patch)
        """
        h, w = self.shape
        x0, x1 = self.layout.train_cols or (0, w)  # in-plane validation keeps its columns
        if patch > min(h, x1 - x0):
            raise InputError(f"patch {patch} is larger than the {h}x{x1 - x0} training area")
        lo, hi = self.layout.train
        zs = rng.integers(lo, hi, size=n)
        ks = rng.integers(0, self.n_splits, size=n)
        ys = rng.integers(0, h - patch + 1, size=n)
        xs = rng.integers(x0, x1 - patch + 1, size=n)
        codes = rng.integers(0, N_AUGMENTATIONS, size=n)
        c = self.layout.context
        x = np.empty((n, c, patch, patch), np.float32)
        y = np.empty((n, 1, patch, patch), np.float32)
        r0 = self.layout.read[0]
        for i in range(n):
            idx = context_indices(int(zs[i]), self.layout.n_z, c) - r0
            win = self.slab[:, idx, ys[i] : ys[i] + patch, xs[i] : xs[i] + patch]
            k = int(ks[i])
            x[i] = augment(pair_input(win, k, self.strategy), int(codes[i]))
            y[i, 0] = augment(pair_target(win[:, c // 2], k, self.strategy), int(codes[i]))
        return x, y
