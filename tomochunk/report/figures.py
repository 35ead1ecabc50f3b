"""Matplotlib figures of the report (PNG), one function per figure.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no ``pyplot``, no global
backend or state) with a local ``rc_context`` for legible fonts. Slice panels of all methods
share one grey scale (Flenner et al. 2022, Fig. 4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import MaxNLocator

from .collect import LABELS
from .slices import slices_figure
from .style import COLORS, RC, axis_scale, few_ticks, image_extent, shared_range
from .units import format_length_nm

__all__ = ["write_all", "slices_figure", "profiles_figure", "psd_figure", "frc_figure",
           "noise_figure", "difference_figure", "training_figure", "masks_figure"]


def _save(fig: Figure, folder: Path, name: str) -> str:
    fig.savefig(folder / name, facecolor="white")
    return name


def profiles_figure(
    profiles: dict[str, tuple[np.ndarray, np.ndarray]],
    fits: dict[str, list[Any]],
    unit: str,
    reference: tuple[Any, np.ndarray, np.ndarray, list[Any]] | None = None,
) -> Figure:
    """Line profiles of all methods, shifted vertically, with fitted Gaussians (Fig. 5).

    ``reference`` = (label, distance, values, fits) of the ground truth, whose peaks the
    methods' fits are centred on, drawn on top (scaled to the methods' range: other units).
    """
    if reference is not None:
        _, d_ref, v_ref, _ = reference
        first = next(iter(profiles.values()))[1]
        span = max(float(np.ptp(first)), 1e-12) / max(float(np.ptp(v_ref)), 1e-12)
        profiles = {"truth": (d_ref, (v_ref - np.median(v_ref)) * span), **profiles}
    ranges = [np.ptp(v) for _, v in profiles.values()]
    step = 1.1 * max(max(ranges), 1e-12)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(11, 1.1 * len(profiles) + 2.2), layout="constrained")
        ax = fig.subplots()
        for k, (m, (d, v)) in enumerate(profiles.items()):
            shift = -k * step
            base = float(np.median(v))
            ws = [f.fwhm for f in fits.get(m, [])]
            lab = LABELS[m]
            if ws:
                sd = np.std(ws, ddof=1) if len(ws) > 1 else 0.0
                lab += f": FWHM {np.mean(ws):.3g} ± {sd:.2g} {unit} (n={len(ws)})"
            ax.plot(d, v - base + shift, color=COLORS.get(m, None), lw=1.6, label=lab)
            fine = np.linspace(d[0], d[-1], 4 * d.size)
            for f in fits.get(m, []):
                sel = np.abs(fine - f.center) < 2 * f.sigma
                g = f.offset + f.amplitude * np.exp(-0.5 * ((fine[sel] - f.center) / f.sigma) ** 2)
                ax.plot(fine[sel], g - base + shift, "--", color="black", lw=1.0)
        ax.set_xlabel(f"distance along the profile ({unit})")
        ax.set_ylabel("grey value (each profile shifted down by "
                      f"{step:.3g}; truth rescaled)" if reference is not None else
                      f"grey value (each profile shifted down by {step:.3g})")
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_title("Line profiles with Gaussian fits of the peaks (dashed)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def psd_figure(psds: dict[str, tuple[np.ndarray, np.ndarray]], unit: str) -> Figure:
    """1D power spectral densities of all methods on one plot (Fig. 6)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(9, 5), layout="constrained")
        ax = fig.subplots()
        for m, (f, p) in psds.items():
            ax.semilogy(f[1:], np.maximum(p[1:], 1e-30), color=COLORS.get(m), lw=1.8,
                        label=LABELS[m])
        ax.set_xlabel(f"spatial frequency ({unit})")
        ax.set_ylabel("PSD (grey value² · nm)" if unit == "1/nm" else "PSD (grey value² · px)")
        ax.set_title("1D power spectral density across the profiled structure")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(frameon=False)
    return fig


def frc_figure(curves: dict[str, Any], pixel_size_nm: float | None) -> Figure:
    """FRC curves with the half-bit threshold and the crossing frequency."""
    unit = "1/nm" if pixel_size_nm else "cycles/px"
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(12.5, 5), layout="constrained")
        ax = fig.subplots()
        palette = ["#000000", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#d62728"]
        for k, (name, r) in enumerate(curves.items()):
            f = r.freq_nm if pixel_size_nm else r.freq
            c = palette[k % len(palette)]
            lab = name
            if r.crossing is not None:
                res = (format_length_nm(r.resolution_nm) if r.resolution_nm is not None
                       else f"{r.resolution_px:.3g} px")
                lab += f" (half-bit: {res})"
                xc = r.crossing / pixel_size_nm if pixel_size_nm else r.crossing
                ax.axvline(xc, color=c, ls=":", lw=1.2)
            else:
                lab += " (no crossing before Nyquist)"
            ax.plot(f[1:], r.frc[1:], color=c, lw=1.8 if k == 0 else 1.3, label=lab)
            if k == 0:
                ax.plot(f[1:], r.threshold[1:], "--", color="#ff7f0e", lw=1.5,
                        label="half-bit threshold (van Heel & Schatz 2005)")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_ylim(-0.2, 1.05)
        ax.set_xlabel(f"spatial frequency ({unit})")
        ax.set_ylabel("Fourier ring correlation")
        ax.set_title("Fourier ring correlation (central slice)")
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False, fontsize=10, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def noise_figure(noise_map: np.ndarray, z: list[int], per_slice: list[float],
                 origin: tuple[float, float], pixel_size_nm: float | None) -> Figure:
    """Noise map in xy and noise per slice, from the two halves."""
    scale, unit = axis_scale(pixel_size_nm)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(12.5, 5), layout="constrained")
        cast(ConstrainedLayoutEngine, fig.get_layout_engine()).set(wspace=0.12)
        a, b = fig.subplots(1, 2, width_ratios=[1.15, 1])
        im = a.imshow(noise_map, cmap="magma",
                      extent=image_extent(origin, noise_map.shape, scale))
        fig.colorbar(im, ax=a, shrink=0.9).set_label("noise std of one half")
        few_ticks(a)
        a.set_xlabel(f"x ({unit})")
        a.set_ylabel(f"y ({unit})")
        a.set_title("Noise map: std of (split0 − split1)/√2")
        b.plot(z, per_slice, "o-", color="#1f77b4")
        b.set_xlabel("slice z")
        b.set_ylabel("noise std (mean over the slice)")
        b.set_title("Noise per slice")
        b.grid(True, alpha=0.3)
        lo, hi = min(per_slice), max(per_slice)
        pad = 0.2 * max(hi - lo, 0.05 * hi)
        b.set_ylim(max(lo - pad, 0), hi + pad)
    return fig


def difference_figure(diffs: dict[str, np.ndarray], origin: tuple[float, float],
                      pixel_size_nm: float | None) -> Figure:
    """Difference images (filtered − unfiltered) with one symmetric colour scale."""
    scale, unit = axis_scale(pixel_size_nm)
    lim = float(np.percentile(np.abs(np.concatenate([d.ravel() for d in diffs.values()])), 99.5))
    lim = lim if lim > 0 else 1.0
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.6 * len(diffs) + 1.2, 4.2), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(diffs)))
        im = None
        for j, (m, d) in enumerate(diffs.items()):
            im = axes[j].imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim,
                                extent=image_extent(origin, d.shape, scale))
            few_ticks(axes[j])
            axes[j].set_title(f"{LABELS[m]} − unfiltered")
            axes[j].set_xlabel(f"x ({unit})")
            if j == 0:
                axes[j].set_ylabel(f"y ({unit})")
        fig.colorbar(cast(AxesImage, im), ax=list(axes),
                     shrink=0.85).set_label("difference (grey value)")
    return fig


def training_figure(history: dict[str, Any]) -> Figure:
    """Training and validation loss per epoch, best epoch marked (Fig. 3)."""
    ep = history["epochs"]
    e = [r["epoch"] for r in ep]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(9, 5), layout="constrained")
        ax = fig.subplots()
        ax.plot(e, [r.get("train_loss") for r in ep], "o-", ms=3, color="#1f77b4",
                label="training loss")
        val = [(r["epoch"], r["val_loss"]) for r in ep if r.get("val_loss") is not None]
        if val:
            ax.plot(*zip(*val, strict=True), "s-", ms=3, color="#d62728",
                    label="validation loss")
        best = history.get("best_epoch")
        if best is not None:
            ax.axvline(best, color="black", ls="--", lw=1.2, label=f"best epoch ({best})")
            bv = [v for k, v in val if k == best]
            if bv:
                ax.plot([best], bv, "*", ms=16, color="#ffbf00", mec="black", zorder=5)
        losses = [v for r in ep for v in (r.get("train_loss"), r.get("val_loss"))
                  if v is not None]
        if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss (MSE, normalised units)")
        stopped = history.get("stopped")
        ax.set_title("Training curve" + (f" (stopped: {stopped})" if stopped else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False)
    return fig


def masks_figure(image: np.ndarray, masks: tuple[np.ndarray, np.ndarray],
                 origin: tuple[float, float], pixel_size_nm: float | None) -> Figure:
    """The CNR's material (red) and air (blue) masks over the unfiltered central slice."""
    scale, unit = axis_scale(pixel_size_nm)
    ext = image_extent(origin, image.shape, scale)
    lo, hi = shared_range([image])
    overlay = np.zeros(image.shape + (4,))
    overlay[masks[0]] = (0.9, 0.1, 0.1, 0.45)
    overlay[masks[1]] = (0.1, 0.3, 0.95, 0.45)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6, 5.4), layout="constrained")
        ax = fig.subplots()
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, extent=ext)
        ax.imshow(overlay, extent=ext, interpolation="nearest")
        few_ticks(ax)
        ax.set_title("CNR masks: material (red), air (blue)")
        ax.set_xlabel(f"x ({unit})")
        ax.set_ylabel(f"y ({unit})")
    return fig


def write_all(data: dict[str, Any], folder: Path) -> dict[str, str]:
    """Draw every figure the data allow into ``folder``; return {figure key: file name}."""
    folder = Path(folder)
    px = data["pixel_size_nm"]
    off = data["offsets"]
    out: dict[str, str] = {}
    prof = data["profile"]
    line = None
    if prof["in_xy"]:
        line = ((prof["p0"][1] - off["y"], prof["p0"][2] - off["x"]),
                (prof["p1"][1] - off["y"], prof["p1"][2] - off["x"]))
    fig = slices_figure(data["xy"], zoom=data["zoom_xy"], origin=(off["y"], off["x"]),
                        pixel_size_nm=px, axes_names=("y", "x"),
                        title=f"xy slice z = {off['z']}", truth=data["truth_xy"], line=line)
    out["slices_xy"] = _save(fig, folder, "slices_xy.png")
    line_yz = None
    if prof["in_yz"]:
        line_yz = ((prof["p0"][0] - off["yz_z"], prof["p0"][1] - off["y"]),
                   (prof["p1"][0] - off["yz_z"], prof["p1"][1] - off["y"]))
    fig = slices_figure(data["yz"], zoom=data["zoom_yz"], origin=(off["yz_z"], off["y"]),
                        pixel_size_nm=px, axes_names=("z", "y"),
                        title=f"yz slice x = {off['yz_x']}", truth=data.get("truth_yz"),
                        line=line_yz)
    out["slices_yz"] = _save(fig, folder, "slices_yz.png")
    out["profiles"] = _save(profiles_figure(data["profiles"], data["fits"], data["unit"],
                                            data.get("reference_profile")),
                            folder, "profiles.png")
    unit_f = "1/nm" if px else "cycles/px"
    out["psd"] = _save(psd_figure(data["psds"], unit_f), folder, "psd.png")
    if data["masks"] is not None:
        out["masks"] = _save(masks_figure(data["xy"]["unfiltered"], data["masks"],
                                          (off["y"], off["x"]), px), folder, "cnr_masks.png")
    if data["frc"]:
        out["frc"] = _save(frc_figure(data["frc"], px), folder, "frc.png")
    if data["noise_map"] is not None:
        z, per = data["noise_per_slice"]
        out["noise"] = _save(noise_figure(data["noise_map"], z, per, (off["y"], off["x"]), px),
                             folder, "noise.png")
    if data["diffs"]:
        out["difference"] = _save(difference_figure(data["diffs"], (off["y"], off["x"]), px),
                                  folder, "difference.png")
    hist = data["history"]
    if hist and hist.get("epochs"):
        out["training"] = _save(training_figure(hist), folder, "training.png")
    return out
