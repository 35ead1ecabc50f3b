"""Segmentation accuracy: Otsu / multi-Otsu labels, Dice and IoU per phase, porosity error.

The reason to denoise a tomogram is usually to segment it (Flenner et al. 2022), so a
denoiser is judged by how well a standard, parameter-free segmentation of its output agrees
with the true phases:

- :func:`otsu_labels`: ``n_phases`` labels by Otsu's threshold (Otsu 1979) or, for more than
  two phases, multi-Otsu (Liao, Chen & Chung 2001), via scikit-image, computed inside a mask;
- :func:`threshold_labels`: labels by given grey-value thresholds, for phases whose grey
  values are known (a calibrated scan, a phantom). Multi-Otsu assumes classes of comparable
  size: with a rare phase (a few per cent of the voxels) it splits a large phase instead,
  and a cleaner volume, whose peaks are narrower, can score lower than a noisy one;
- :func:`dice_iou`: Dice ``2|A∩B|/(|A|+|B|)`` and IoU ``|A∩B|/|A∪B|`` of every phase;
- :func:`porosity_error`: estimated minus true pore fraction inside a mask.

Labels are integers ``0..n_phases-1`` ordered by grey value (0 = darkest); voxels outside
the mask are ``-1`` and are never counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .cnr import check_mask

__all__ = ["SegmentationScore", "otsu_labels", "threshold_labels", "dice_iou", "porosity_error",
           "score_segmentation"]


def _mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """All voxels when ``mask`` is None, else the checked mask (:func:`check_mask`)."""
    return np.ones(shape, bool) if mask is None else check_mask(mask, shape)


def otsu_labels(vol: Any, n_phases: int = 2, mask: Any = None, bins: int = 256) -> np.ndarray:
    """Labels ``0..n_phases-1`` by (multi-)Otsu thresholds of the voxels inside ``mask``.

    Parameters
    ----------
    vol : array_like
        Image or volume.
    n_phases : int
        Number of classes (2: Otsu; more: multi-Otsu).
    mask : array_like of bool, optional
        Voxels to segment (and to take the histogram from); the others are labelled -1.
    bins : int
        Histogram bins of the threshold search.

    Returns
    -------
    numpy.ndarray of int8, the shape of ``vol``.
    """
    from skimage.filters import threshold_multiotsu, threshold_otsu

    v = np.asarray(vol, dtype=np.float64)
    m = _mask(mask, v.shape) & np.isfinite(v)
    if not isinstance(n_phases, int | np.integer) or n_phases < 2:
        raise InputError(f"n_phases must be an integer >= 2, got {n_phases!r}")
    values = v[m]
    if values.size < n_phases or np.ptp(values) == 0:
        raise InputError(f"cannot split {values.size} voxels (constant or too few) into "
                         f"{n_phases} phases; pass a larger mask or a non-constant volume")
    if n_phases == 2:
        thresholds = np.array([threshold_otsu(values, nbins=bins)])
    else:
        thresholds = threshold_multiotsu(values, classes=n_phases, nbins=bins)
    return _labels(v.shape, m, values, thresholds)


def threshold_labels(vol: Any, thresholds: Any, mask: Any = None) -> np.ndarray:
    """Labels ``0..len(thresholds)`` by increasing grey-value ``thresholds`` inside ``mask``.

    A voxel equal to a threshold goes to the upper phase (:func:`numpy.digitize`); voxels
    outside the mask, and non-finite ones, are labelled -1.
    """
    v = np.asarray(vol, dtype=np.float64)
    th = np.asarray(thresholds, dtype=np.float64).ravel()
    if th.size == 0 or not np.all(np.isfinite(th)) or np.any(np.diff(th) <= 0):
        raise InputError(f"thresholds must be finite and strictly increasing, got {th.tolist()}; "
                         "give one threshold between each pair of adjacent phases")
    m = _mask(mask, v.shape) & np.isfinite(v)
    return _labels(v.shape, m, v[m], th)


def _labels(shape: tuple[int, ...], m: np.ndarray, values: np.ndarray, thresholds: Any
            ) -> np.ndarray:
    """int8 labels of ``shape``: ``values`` (the voxels of mask ``m``) digitised by
    ``thresholds``, -1 outside the mask."""
    labels = np.full(shape, -1, np.int8)
    labels[m] = np.digitize(values, thresholds).astype(np.int8)
    return labels


def dice_iou(labels: Any, truth_labels: Any, n_phases: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU of every phase ``0..n_phases-1`` (voxels labelled -1 in either are ignored).

    A phase absent from both label sets scores NaN (nothing to agree on).
    """
    a = np.asarray(labels)
    b = np.asarray(truth_labels)
    if a.shape != b.shape:
        raise InputError(f"labels {a.shape} and true labels {b.shape} differ in shape; "
                         "segment the same region as the truth")
    valid = (a >= 0) & (b >= 0)
    n = int(max(a.max(), b.max()) + 1) if n_phases is None else int(n_phases)
    dice = np.full(n, np.nan)
    iou = np.full(n, np.nan)
    for k in range(n):
        pa, pb = (a == k) & valid, (b == k) & valid
        inter = np.count_nonzero(pa & pb)
        sa, sb = np.count_nonzero(pa), np.count_nonzero(pb)
        if sa + sb:
            dice[k] = 2.0 * inter / (sa + sb)
            iou[k] = inter / (sa + sb - inter)
    return dice, iou


def porosity_error(labels: Any, truth_labels: Any, pore: int = 0, mask: Any = None) -> float:
    """Estimated minus true fraction of ``pore``-labelled voxels inside ``mask`` (signed)."""
    a = np.asarray(labels)
    b = np.asarray(truth_labels)
    m = _mask(mask, a.shape) & (a >= 0) & (b >= 0)
    if not m.any():
        raise InputError("no labelled voxel inside the mask; pass a mask that covers the sample")
    return float(np.mean(a[m] == pore) - np.mean(b[m] == pore))


@dataclass
class SegmentationScore:
    """Agreement of an Otsu segmentation with the true phases (see :func:`score_segmentation`)."""

    dice: list[float] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    porosity_error: float = float("nan")

    @property
    def mean_dice(self) -> float:
        """Mean Dice over the phases present."""
        return float(np.nanmean(self.dice))

    @property
    def mean_iou(self) -> float:
        """Mean IoU over the phases present."""
        return float(np.nanmean(self.iou))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (per-phase lists, means and the porosity error)."""
        return {"dice": list(self.dice), "iou": list(self.iou), "mean_dice": self.mean_dice,
                "mean_iou": self.mean_iou, "porosity_error": self.porosity_error}


def score_segmentation(vol: Any, truth_labels: Any, mask: Any = None, pore: int = 0,
                       thresholds: Any = None) -> SegmentationScore:
    """Segment ``vol`` into as many phases as ``truth_labels`` holds and score it.

    ``truth_labels`` uses ``0..n-1`` for the phases (0 = the pores, the darkest) and -1 for
    voxels not scored; ``mask`` further restricts both segmentation and scoring. The
    segmentation is (multi-)Otsu (:func:`otsu_labels`), or :func:`threshold_labels` with the
    ``n - 1`` given ``thresholds``.
    """
    t = np.asarray(truth_labels)
    m = _mask(mask, t.shape) & (t >= 0)
    n = int(t[m].max()) + 1 if m.any() else 0
    if n < 2:
        raise InputError("the true labels hold fewer than 2 phases inside the mask; "
                         "score a region that contains every phase")
    if thresholds is None:
        labels = otsu_labels(vol, n, mask=m)
    else:
        if np.size(thresholds) != n - 1:
            raise InputError(f"{np.size(thresholds)} thresholds for {n} true phases; give "
                             f"{n - 1}, one between each pair of adjacent phases")
        labels = threshold_labels(vol, thresholds, mask=m)
    dice, iou = dice_iou(labels, np.where(m, t, -1), n)
    return SegmentationScore([float(x) for x in dice], [float(x) for x in iou],
                             porosity_error(labels, t, pore=pore, mask=m))
