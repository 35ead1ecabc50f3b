"""Compute the report's metrics from a run directory and write the static report.

What is measured where (all documented on the page as well):

- **Central slab**: slices ``slice_z - 4 .. slice_z + 4`` (default the middle slice), in-plane
  the central ``<= 1024 x 1024`` pixels. CNR, PSNR/SSIM, the noise map and the slice
  figures use it; nothing else of the volumes is read, except a ``yz`` slice (at most 256
  slices around ``slice_z``) and the line-profile segments.
- **Reference image** for automatic choices: the truth if known, else the ML result, else
  the unfiltered slab smoothed (Gaussian sigma 2 px).
- **CNR masks**: :func:`tomochunk.metrics.auto_masks` on the reference slab (Otsu, eroded by
  2 voxels), the same masks for every method (Flenner et al. 2022, Table 1).
- **Line profile**: ``ReportConfig.profile`` or automatic: in the reference's central ``xy``
  slice, a 64 px segment across the most periodic fine structure (the 32 px segment, over a
  grid of centres and 12 directions, whose band-pass has the strongest secondary
  autocorrelation peak, among those with at least 1 % of the largest band-pass variance;
  see ``_auto_profile``). Peaks are found on the reference profile and every method is fitted at
  the same positions (Fig. 5).
- **PSD**: 17 segments parallel to the profile (1 px apart), mean windowed periodogram
  (Fig. 6), so the spectrum is taken across the same structure.
- **FRC**: split 0 vs split 1 on the central slice, Hann-apodised, half-bit threshold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..config import ReportConfig, to_dict
from ..errors import InputError
from ..io.jsonsafe import json_safe
from ..io.store import atomic_store, check_output_path
from ..metrics import (
    FRCResult,
    auto_masks,
    cnr,
    difference_structure,
    fit_peaks,
    frc,
    line_profile,
    noise_from_halves,
    psd_1d,
    psnr,
    ssim,
    summarize_fwhm,
)
from ..progress import get_logger
from . import figures
from .collect import LABELS, RunData, collect_run
from .html import render_html
from .quality import check_reference, quality_sections

__all__ = ["make_report", "analyse"]

log = get_logger("report")

SLAB_HALF = 4
MAX_INPLANE = 1024
YZ_HALF = 128
PROFILE_LEN = 64
PATCH = 32
PSD_OFFSETS = 8


def _central(n: int, size: int) -> slice:
    size = min(n, size)
    start = (n - size) // 2
    return slice(start, start + size)


def _read(arr: Any, *index: slice | int) -> np.ndarray:
    return np.asarray(arr[index], dtype=np.float32)


def _periodicity(rows: np.ndarray) -> np.ndarray:
    """Per row: the highest local maximum of the normalised autocorrelation at lags 3 .. n/2.

    1 for a perfectly periodic row; a single edge or blob has no such secondary maximum
    (its autocorrelation only decays), so it scores ~0.
    """
    v = rows - rows.mean(axis=1, keepdims=True)
    n = v.shape[1]
    e = np.einsum("ij,ij->i", v, v)
    lags = np.arange(2, n // 2 + 2)
    ac = np.stack([np.einsum("ij,ij->i", v[:, : n - k], v[:, k:]) for k in lags], axis=1)
    ac = ac / np.where(e > 0, e, np.inf)[:, None]
    inner = ac[:, 1:-1]
    is_max = (inner > ac[:, :-2]) & (inner >= ac[:, 2:])
    return np.where(is_max, inner, 0.0).max(axis=1).clip(min=0.0)


def _auto_profile(ref_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment (y, x) end points across the most pronounced fine periodic structure.

    The reference is band-passed (difference of Gaussians, sigma 1 and 4 px: structure of
    ~2-8 px). Short segments (32 px) through centres on a regular grid (about 1000 of them)
    in 12 directions are sampled; a segment's *periodicity* is the highest secondary maximum
    of its autocorrelation (lags 3-16 px): a grid of holes or lines gives a strong one, a
    single edge or blob none. Among segments whose band-pass variance is at least 1 % of the
    largest (flat background and residual noise do not count) the most periodic wins (ties
    go to the larger variance), and the profile is the 64 px segment on the same line.
    """
    band = ndimage.gaussian_filter(ref_xy, 1.0) - ndimage.gaussian_filter(ref_xy, 4.0)
    ny, nx = ref_xy.shape
    short = min(PATCH, ny - 1, nx - 1) / 2.0
    if short < 4:
        raise InputError(f"slices of shape {ref_xy.shape} are too small for a line profile")
    stride = max(8, int(math.sqrt(ny * nx / 1000.0)))
    cy, cx = np.meshgrid(np.arange(short, ny - short, stride),
                         np.arange(short, nx - short, stride), indexing="ij")
    cy, cx = cy.ravel(), cx.ravel()
    ang = np.deg2rad(np.arange(0, 180, 15))
    t = np.linspace(-short, short, int(2 * short) + 1)
    # coordinates (2, centres, angles, samples)
    yy = cy[:, None, None] + np.sin(ang)[None, :, None] * t[None, None, :]
    xx = cx[:, None, None] + np.cos(ang)[None, :, None] * t[None, None, :]
    rows = ndimage.map_coordinates(band, [yy.ravel(), xx.ravel()], order=1, mode="nearest")
    rows = rows.reshape(-1, t.size)
    var = rows.var(axis=1)
    score = _periodicity(rows) + 0.1 * var / max(float(var.max()), 1e-300)
    score[var < 0.01 * var.max()] = -1.0
    k = int(np.argmax(score))
    c, a = divmod(k, ang.size)
    half = min(PROFILE_LEN, ny - 1, nx - 1) / 2.0
    d = np.array([math.sin(ang[a]), math.cos(ang[a])]) * half
    centre = np.array([cy[c], cx[c]], dtype=float)
    p0 = np.clip(centre - d, 0, [ny - 1, nx - 1])
    p1 = np.clip(centre + d, 0, [ny - 1, nx - 1])
    return p0, p1


def _polarity(values: np.ndarray, samples_per_px: float) -> str:
    """'max' for narrow bright features, 'min' for narrow dark ones.

    The sign of the skewness of the high-passed profile (minus a Gaussian smoothing of 4 px)
    tells which: narrow peaks on a background give a long tail on their side.
    """
    hp = values - ndimage.gaussian_filter1d(values, 4.0 * samples_per_px)
    hp = hp - hp.mean()
    skew = float(np.mean(hp**3))
    return "max" if skew >= 0 else "min"


def _parallel_rows(vol: Any, p0: np.ndarray, p1: np.ndarray, num: int) -> np.ndarray:
    """Profiles parallel to p0-p1 at 1 px offsets (in-plane normal); those inside the volume."""
    direc = (p1 - p0) / np.linalg.norm(p1 - p0)
    ax = np.array([1.0, 0, 0]) if abs(direc[0]) < 0.9 else np.array([0, 0, 1.0])
    nrm = np.cross(direc, ax)
    nrm /= np.linalg.norm(nrm)
    upper = np.array(vol.shape) - 1
    rows = []
    for k in range(-PSD_OFFSETS, PSD_OFFSETS + 1):
        a, b = p0 + k * nrm, p1 + k * nrm
        if np.all(a >= 0) and np.all(b >= 0) and np.all(a <= upper) and np.all(b <= upper):
            rows.append(line_profile(vol, a, b, num=num)[1])
    return np.array(rows)


def analyse(run: RunData, config: ReportConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure everything the report shows.

    Returns
    -------
    metrics : dict
        JSON-serialisable (``metrics.json``).
    data : dict
        Arrays and curves for the figures.
    """
    nz, ny, nx = run.shape
    z0 = nz // 2 if config.slice_z is None else int(config.slice_z)
    if not 0 <= z0 < nz:
        raise InputError(f"slice_z={z0} is outside the volume's 0..{nz - 1} slices")
    zs = slice(max(z0 - SLAB_HALF, 0), min(z0 + SLAB_HALF + 1, nz))
    ys, xs = _central(ny, MAX_INPLANE), _central(nx, MAX_INPLANE)
    zi = z0 - zs.start
    px_nm = run.pixel_size_nm
    methods = list(run.volumes)
    log.info("report: reading the central slab z=%d..%d of %d methods", zs.start, zs.stop - 1,
             len(methods))
    slabs = {m: _read(v, zs, ys, xs) for m, v in run.volumes.items()}
    truth = _read(run.truth, zs, ys, xs) if run.truth is not None else None
    halves = (_read(run.splits, 0, zs, ys, xs), _read(run.splits, 1, zs, ys, xs)) \
        if run.splits is not None else None

    if truth is not None:
        ref, ref_name, smooth = truth, "truth", 0.0
    elif "ml" in slabs:
        ref, ref_name, smooth = slabs["ml"], "ml", 1.0
    else:
        ref = ndimage.gaussian_filter(slabs["unfiltered"], (0, 2, 2))
        ref_name, smooth = "unfiltered (smoothed, sigma 2 px)", 0.0

    notes: list[str] = []
    per: dict[str, dict[str, Any]] = {m: {"label": LABELS[m]} for m in methods}

    # ---- CNR (Table 1)
    masks = None
    try:
        masks = auto_masks(ref, erode=2, smooth=smooth)
    except InputError as exc:
        # the report has no erode option: name what the user can change
        notes.append(f"CNR not computed: {str(exc).split(';')[0]} (the slab has too little "
                     "material or air for the masks; the volume is too small or too uniform)")
    for m in methods:
        if masks is None:
            per[m].update(cnr=None)
            continue
        img = slabs[m]
        mat, air = masks
        per[m].update(cnr=cnr(img, mat, air), mean_mat=float(img[mat].mean()),
                      mean_air=float(img[air].mean()), std_mat=float(img[mat].std()),
                      std_air=float(img[air].std()))

    # ---- PSNR / SSIM against the truth
    for m in methods:
        if truth is None:
            per[m].update(psnr=None, ssim=None)
        else:
            per[m].update(psnr=psnr(slabs[m], truth, fit="affine"),
                          ssim=ssim(slabs[m], truth, fit="affine"))

    quality = quality_sections(run, config, slabs, truth, (zs, ys, xs))

    # ---- line profile and FWHM (Fig. 5)
    if config.profile is not None:
        if len(config.profile) != 6:
            raise InputError(
                f"profile must be [z0, y0, x0, z1, y1, x1], got {config.profile!r}"
            )
        p0, p1 = np.array(config.profile[:3], float), np.array(config.profile[3:], float)
        prof_src = "config"
    else:
        a2, b2 = _auto_profile(ref[zi])
        p0 = np.array([z0, a2[0] + ys.start, a2[1] + xs.start], float)
        p1 = np.array([z0, b2[0] + ys.start, b2[1] + xs.start], float)
        prof_src = f"automatic (fine structure of the {ref_name} image)"
    num = int(math.ceil(np.linalg.norm(p1 - p0) * 2)) + 1  # half-pixel sampling
    scale = px_nm if px_nm is not None else 1.0
    unit = "nm" if px_nm is not None else "px"
    if run.truth is not None:
        ref_vol = run.truth
    elif "ml" in run.volumes:
        ref_vol = run.volumes["ml"]
    else:
        ref_vol = run.volumes["unfiltered"]
    dist, ref_vals = line_profile(ref_vol, p0, p1, num=num, pixel_size=scale)
    if ref_vol is run.volumes["unfiltered"]:
        ref_vals = ndimage.gaussian_filter1d(ref_vals, 2.0 * 2)  # 2 px at half-px sampling
    polarity = _polarity(ref_vals, (num - 1) / max(np.linalg.norm(p1 - p0), 1e-9))
    ref_fits = fit_peaks(dist, ref_vals, polarity=polarity)
    centers = [f.center for f in ref_fits]
    profiles: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    fits: dict[str, list[Any]] = {}
    for m, vol in run.volumes.items():
        _, vals = line_profile(vol, p0, p1, num=num, pixel_size=scale)
        profiles[m] = (dist, vals)
        fits[m] = fit_peaks(dist, vals, peaks=centers, polarity=polarity) if centers else []
        per[m].update(summarize_fwhm(fits[m]))
    if not centers:
        notes.append("no peak found on the reference profile: FWHM not measured")

    # ---- PSD across the same structure (Fig. 6)
    psds = {}
    for m, vol in run.volumes.items():
        rows = _parallel_rows(vol, p0, p1, num=max(int(np.linalg.norm(p1 - p0)) + 1, 8))
        psds[m] = psd_1d(rows, pixel_size=px_nm)
    # ---- difference images (Fig. 8e) and their structure fraction
    diffs = {}
    for m in methods:
        if m == "unfiltered":
            continue
        r = difference_structure(slabs[m][zi], slabs["unfiltered"][zi],
                                 reference=None if truth is None else truth[zi])
        diffs[m] = r.pop("difference")
        per[m].update(structure_fraction=r["structure_fraction"],
                      structure_signal=r["signal"], difference_rms=r["rms"])

    # ---- FRC of the halves, noise from the halves
    frc_out: dict[str, Any] = {}
    frc_curves: dict[str, FRCResult] = {}
    noise_out: dict[str, Any] = {}
    noise_map = None
    if halves is not None:
        frc_curves["split 0 vs split 1"] = frc(halves[0][zi], halves[1][zi], px_nm,
                                               window="hann")
        frc_out["halves"] = frc_curves["split 0 vs split 1"].to_dict()
        per_slice, noise_map = noise_from_halves(halves[0], halves[1])
        noise_out = {
            "definition": "std of (split0 - split1)/sqrt(2): noise of one half",
            "z": list(range(zs.start, zs.stop)),
            "per_slice_std": per_slice.tolist(),
            "mean_std": float(per_slice.mean()),
            "map_min": float(noise_map.min()),
            "map_max": float(noise_map.max()),
            "map_max_over_min": float(noise_map.max() / max(noise_map.min(), 1e-30)),
        }
        if masks is not None:
            noise_out["full_std_in_air"] = per["unfiltered"].get("std_air")
    if truth is not None:
        frc_out["vs_truth"] = {}
        for m in methods:
            r = frc(slabs[m][zi], truth[zi], px_nm, window="hann")
            frc_curves[f"{LABELS[m]} vs truth"] = r
            frc_out["vs_truth"][m] = r.to_dict(curves=False)

    # ---- views: xy of the slab's central slice, yz through the profile's centre
    xc = int(round((p0[2] + p1[2]) / 2))
    yc, zc = (p0[1] + p1[1]) / 2, (p0[0] + p1[0]) / 2
    zyz = slice(max(z0 - YZ_HALF, 0), min(z0 + YZ_HALF + 1, nz))
    yz = {m: _read(v, zyz, ys, xc) for m, v in run.volumes.items()}
    half_zoom = max(16, min(ys.stop - ys.start, xs.stop - xs.start) // 8)
    zoom_xy = (int(np.clip(yc - ys.start - half_zoom, 0, max(ys.stop - ys.start - 2 * half_zoom,
                                                            0))),
               int(np.clip(xc - xs.start - half_zoom, 0, max(xs.stop - xs.start - 2 * half_zoom,
                                                            0))),
               2 * half_zoom)
    zoom_yz = (int(np.clip(zc - zyz.start - half_zoom, 0,
                           max(zyz.stop - zyz.start - 2 * half_zoom, 0))),
               zoom_xy[0], 2 * half_zoom)
    data = {
        "methods": methods,
        "xy": {m: s[zi] for m, s in slabs.items()},
        "yz": yz,
        "truth_xy": None if truth is None else truth[zi],
        "truth_yz": None if run.truth is None else _read(run.truth, zyz, ys, xc),
        "offsets": {"z": z0, "y": ys.start, "x": xs.start, "yz_z": zyz.start, "yz_x": xc},
        "zoom_xy": zoom_xy,
        "zoom_yz": zoom_yz,
        "profile": {"p0": p0, "p1": p1, "in_xy": bool(p0[0] == p1[0] == z0),
                    "in_yz": bool(p0[2] == p1[2] == xc)},
        "profiles": profiles,
        "reference_profile": ("truth", dist, ref_vals, ref_fits)
        if run.truth is not None else None,
        "fits": fits,
        "psds": psds,
        "frc": frc_curves,
        "noise_map": noise_map,
        "noise_per_slice": (noise_out.get("z"), noise_out.get("per_slice_std")),
        "diffs": diffs,
        "masks": None if masks is None else (masks[0][zi], masks[1][zi]),
        "pixel_size_nm": px_nm,
        "unit": unit,
        "history": run.history,
    }
    metrics = {
        "run_dir": str(run.run_dir),
        "pixel_size_nm": px_nm,
        "slice_z": z0,
        "slab": {"z": [zs.start, zs.stop], "y": [ys.start, ys.stop], "x": [xs.start, xs.stop]},
        "reference": ref_name,
        "truth": run.truth_source,
        "methods": per,
        "profile": {
            "start_zyx": p0.tolist(), "end_zyx": p1.tolist(), "source": prof_src,
            "polarity": polarity, "distance_unit": unit,
            "peaks": {m: [f.to_dict() for f in fs] for m, fs in fits.items()},
        },
        "psd": {"unit": "1/nm" if px_nm else "cycles/px",
                "peak_frequency": {m: float(f[1:][np.argmax(p[1:])]) for m, (f, p) in
                                   psds.items()}},
        "frc": frc_out,
        "noise": noise_out,
        "training": _training_summary(run.history),
        **quality,
        "skipped": list(run.notes) + notes,
    }
    return json_safe(metrics), data


def _training_summary(history: dict[str, Any] | None) -> dict[str, Any]:
    if not history or not history.get("epochs"):
        return {}
    ep = history["epochs"]
    return {
        "epochs": len(ep),
        "best_epoch": history.get("best_epoch"),
        "stopped": history.get("stopped"),
        "final_train_loss": ep[-1].get("train_loss"),
        "min_val_loss": min((e["val_loss"] for e in ep if e.get("val_loss") is not None),
                            default=None),
        "seconds": sum(float(e.get("seconds") or 0) for e in ep),
    }


def make_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    config: ReportConfig | None = None,
    overwrite: bool = False,
    storage_options: Any = None,
) -> Any:
    """Write the static comparison report of a run directory.

    The folder holds ``index.html`` (relative links only, no JavaScript, readable from disk),
    PNG figures and ``metrics.json``; it is written under a temporary name and renamed when
    complete. See the module docstring for what is measured where. ``run_dir`` and ``out``
    may be fsspec URLs (read and written with ``storage_options``; ``index.html`` is
    uploaded last).

    Parameters
    ----------
    run_dir : path-like
        A run directory (``recon.zarr`` required; other stores optional).
    out : path-like, optional
        Report folder (default ``run_dir/report``).
    config : ReportConfig, optional
        ``truth`` (.npy or .zarr), ``slice_z``, ``profile``.
    overwrite : bool
        Replace an existing report folder.

    Returns
    -------
    pathlib.Path
        The report folder.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is false (checked first).
    InputError
        On a missing run directory or reconstruction, or a truth of another shape.
    """
    config = config or ReportConfig()
    from ..io.urls import is_url, location

    run_dir: Any = location(run_dir, storage_options)
    out = location(out, storage_options) if out is not None else run_dir / "report"
    out = check_output_path(str(out) if is_url(str(out)) else out, overwrite, storage_options)
    run = collect_run(run_dir, truth=location(config.truth, storage_options)
                      if config.truth else None)
    if config.truth_free_reference:
        check_reference(config.truth_free_reference, run.shape)
    metrics, data = analyse(run, config)
    metrics["report_config"] = to_dict(config)
    with atomic_store(out, overwrite=overwrite, storage_options=storage_options) as tmp:
        tmp.mkdir(parents=True)
        figs = figures.write_all(data, tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (tmp / "index.html").write_text(render_html(metrics, figs, run), encoding="utf-8")
    log.info("report written to %s", location(out) / "index.html")
    return out
