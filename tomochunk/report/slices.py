"""The slice figure of the report: every method side by side, with zoomed regions."""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .collect import LABELS
from .style import RC, axis_scale, few_ticks, image_extent, shared_range

__all__ = ["slices_figure"]


def _marks(top: Any, zoom: tuple[int, int, int], origin: tuple[float, float], scale: float,
           line: tuple[tuple[float, float], tuple[float, float]] | None,
           ext: tuple[float, float, float, float]) -> None:
    """The zoomed square and the dashed line profile on a slice panel."""
    zr, zc, zs = zoom
    r0, c0 = origin
    top.add_patch(Rectangle(((c0 + zc) * scale, (r0 + zr) * scale), zs * scale,
                            zs * scale, fill=False, ec="#ffbf00", lw=1.5))
    if line is not None:
        (a_r, a_c), (b_r, b_c) = line
        top.plot([(c0 + a_c) * scale, (c0 + b_c) * scale],
                 [(r0 + a_r) * scale, (r0 + b_r) * scale], "--", color="#00e5ff",
                 lw=1.5)
        top.set_xlim(ext[0], ext[1])
        top.set_ylim(ext[2], ext[3])


def slices_figure(
    images: dict[str, np.ndarray],
    *,
    zoom: tuple[int, int, int],
    origin: tuple[float, float],
    pixel_size_nm: float | None,
    axes_names: tuple[str, str],
    title: str,
    truth: np.ndarray | None = None,
    line: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> Figure:
    """Side-by-side slices (top) and zoomed regions (bottom) with one shared grey scale.

    Parameters
    ----------
    images : dict
        Method key to 2D image (rows = first axis name).
    zoom : (row0, col0, size)
        Zoomed square, in image pixels.
    origin : (row0, col0)
        Position of the image's first pixel in the volume (for the axis labels).
    pixel_size_nm : float or None
        Axes in micrometres when known, else in pixels.
    axes_names : (row axis, column axis), e.g. ("y", "x")
    truth : 2D array, optional
        Shown first with its own grey scale (it has other units).
    line : (start, end) in image pixels (row, col), optional
        The line profile, drawn dashed.
    """
    panels = ([("truth", truth)] if truth is not None else []) + list(images.items())
    ncol = len(panels)
    filtered = [v for k, v in images.items() if k != "unfiltered"]
    vmin, vmax = shared_range(filtered or list(images.values()))
    scale, unit = axis_scale(pixel_size_nm)
    r0, c0 = origin
    with matplotlib.rc_context(RC):
        first = panels[0][1]
        aspect = first.shape[0] / first.shape[1]
        zaspect = min(zoom[2], first.shape[0]) / min(zoom[2], first.shape[1])
        # a volume of a few slices gives a yz strip: stretch it (aspect "auto") to be seen
        stretch = {"aspect": "auto"} if aspect < 0.25 else {}
        aspect, zaspect = max(aspect, 0.35), max(zaspect, 0.35)
        height = 3.0 * (min(aspect, 1.5) + min(zaspect, 1.5)) + 1.6
        fig = Figure(figsize=(3.3 * ncol + 1.2, height), layout="constrained")
        axes = fig.subplots(2, ncol, squeeze=False)
        im = None
        zr, zc, zs = zoom
        for j, (key, img) in enumerate(panels):
            ext = image_extent(origin, img.shape, scale)
            kw = {} if key == "truth" else {"vmin": vmin, "vmax": vmax}
            top, bot = axes[0, j], axes[1, j]
            h = top.imshow(img, cmap="gray", extent=ext, interpolation="nearest", **kw,
                           **stretch)
            if key != "truth":
                im = h
            top.set_title(LABELS[key] + (" (own scale)" if key == "truth" else ""))
            _marks(top, zoom, origin, scale, line, ext)
            crop = img[zr:zr + zs, zc:zc + zs]
            zext = image_extent((r0 + zr, c0 + zc), crop.shape, scale)
            bot.imshow(crop, cmap="gray", extent=zext, interpolation="nearest", **kw, **stretch)
            bot.set_title("zoom", fontsize=11)
            for ax in (top, bot):
                few_ticks(ax)
                ax.set_xlabel(f"{axes_names[1]} ({unit})")
                if j == 0:
                    ax.set_ylabel(f"{axes_names[0]} ({unit})")
                for s in ax.spines.values():
                    s.set_edgecolor("#ffbf00" if ax is bot else "black")
        if im is not None:
            cb = fig.colorbar(im, ax=axes[:, -1], shrink=0.8, pad=0.02)
            cb.set_label("grey value (shared scale)")
        fig.suptitle(title, fontsize=14)
    return fig
