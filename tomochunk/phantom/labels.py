"""True phases and regions of a simulated phantom, for segmentation and quality scores.

All masks and labels are on the grid of :func:`tomochunk.phantom.make_truth` (and so of the
reconstruction: the rotation axis at ``(n_xy - 1) / 2``): array row ``i`` at ``y = c - i``,
column ``j`` at ``x = j - c``.

- :func:`sample_mask`: voxels inside the body, a margin away from its edge;
- :func:`lattice_mask`: voxels inside the hole-lattice patch, away from its rim and caps;
- :func:`lattice_labels`: 0 = hole, 1 = wall inside :func:`lattice_mask`, -1 elsewhere (the
  segmentation near the resolution limit: its porosity is the holes' volume fraction);
- :func:`phase_labels`: three attenuation phases (0 low, 1 matrix, 2 dense) in the sample,
  split at :func:`phase_thresholds`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .objects import lattice_patch
from .spec import BODY_RADIUS, ROI_BODY_RADIUS, ScanSpec

__all__ = ["sample_mask", "lattice_mask", "lattice_labels", "phase_labels", "phase_thresholds"]


def _xy(spec: ScanSpec) -> tuple[np.ndarray, np.ndarray]:
    c = (spec.n_xy - 1) / 2.0
    i = np.arange(spec.n_xy, dtype=np.float64)
    return (i - c)[None, :], (c - i)[:, None]  # x (columns), y (rows)


def sample_mask(spec: ScanSpec, margin: float = 2.0) -> np.ndarray:
    """Boolean ``(n_z, n_xy, n_xy)``: inside the body (and the field of view), ``margin`` px in."""
    x, y = _xy(spec)
    body = (ROI_BODY_RADIUS if spec.roi else BODY_RADIUS) * spec.n_xy * 0.95
    fov = (spec.n_xy - 1) / 2.0
    disc = np.hypot(x, y) < min(body, fov) - margin
    return np.broadcast_to(disc, (spec.n_z, spec.n_xy, spec.n_xy)).copy()


def lattice_mask(spec: ScanSpec, margin: float = 1.0) -> np.ndarray:
    """Boolean ``(n_z, n_xy, n_xy)``: inside the lattice patch, ``margin`` px from its rim."""
    if not spec.lattice or spec.kind != "cells":
        raise ConfigError("this phantom has no hole lattice; simulate kind='cells' with "
                          "lattice=True")
    px, py, pr, z0, z1 = lattice_patch(spec)
    x, y = _xy(spec)
    disc = np.hypot(x - px, y - py) < pr - max(margin, 0.3 * spec.lattice_period + 0.75)
    z = np.arange(spec.n_z)
    wall = max(1.0, float(round(0.2 * spec.lattice_period)))
    rows = (z >= np.ceil(z0 + wall + margin)) & (z <= np.floor(z1 - wall - margin))
    mask: np.ndarray = rows[:, None, None] & disc[None]
    return mask


def lattice_labels(spec: ScanSpec, truth: np.ndarray) -> np.ndarray:
    """int8 labels: 0 = hole, 1 = wall inside :func:`lattice_mask`, -1 outside.

    From the voxel-averaged ``truth`` (:func:`make_truth`): the wall is ``1.8 mu`` and a hole
    ``mu``, so a voxel more than half covered by a hole (below ``1.4 mu``) is a hole voxel.
    """
    t = np.asarray(truth)
    m = lattice_mask(spec)
    if t.shape != m.shape:
        raise ConfigError(f"truth of shape {t.shape} does not match the spec's volume "
                          f"{m.shape}; pass make_truth(spec)")
    labels = np.full(t.shape, -1, np.int8)
    labels[m] = (t[m] >= 1.4 * spec.mu).astype(np.int8)
    return labels


def phase_thresholds(spec: ScanSpec) -> tuple[float, float]:
    """The attenuations between the phases of :func:`phase_labels`: ``0.7 mu`` and ``1.3 mu``."""
    return 0.7 * spec.mu, 1.3 * spec.mu


def phase_labels(spec: ScanSpec, truth: np.ndarray) -> np.ndarray:
    """int8 labels in :func:`sample_mask` by attenuation level, -1 outside.

    0: below ``0.7 mu`` (low-density cells), 1: the matrix around ``mu`` (body, holes,
    nuclei-free cytoplasm), 2: above ``1.3 mu`` (dense cells, nuclei, granules, lattice walls).
    """
    t = np.asarray(truth)
    m = sample_mask(spec)
    labels = np.full(t.shape, -1, np.int8)
    labels[m] = np.digitize(t[m], phase_thresholds(spec)).astype(np.int8)
    return labels
