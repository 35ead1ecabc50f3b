"""The measurements of the report, one function per section (CNR, profile, PSD, FRC, views).

:func:`tomochunk.report.build.analyse` reads the central slab once (:class:`CentralSlab`) and calls
these in turn; each adds its per-method numbers to ``per`` and returns what the figures need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..config import ReportConfig
from ..errors import InputError
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
from ..runtime.logs import get_logger
from .collect import LABELS, RunData

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
    best: np.ndarray = np.where(is_max, inner, 0.0).max(axis=1).clip(min=0.0)
    return best


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
    gy, gx = np.meshgrid(np.arange(short, ny - short, stride),
                         np.arange(short, nx - short, stride), indexing="ij")
    cy, cx = gy.ravel(), gx.ravel()
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


@dataclass
class CentralSlab:
    """The central slab of every volume, read once, and the reference chosen from it."""

    z0: int
    zs: slice
    ys: slice
    xs: slice
    slabs: dict[str, np.ndarray]
    truth: np.ndarray | None
    halves: tuple[np.ndarray, np.ndarray] | None
    ref: np.ndarray
    ref_name: str
    smooth: float

    @property
    def zi(self) -> int:
        """Index of the central slice in the slab."""
        return self.z0 - int(self.zs.start)


def read_slab(run: RunData, config: ReportConfig) -> CentralSlab:
    """Read the central slab (``SLAB_HALF`` slices around ``slice_z``) of every volume."""
    nz, ny, nx = run.shape
    z0 = nz // 2 if config.slice_z is None else int(config.slice_z)
    if not 0 <= z0 < nz:
        raise InputError(f"slice_z={z0} is outside the volume's 0..{nz - 1} slices")
    zs = slice(max(z0 - SLAB_HALF, 0), min(z0 + SLAB_HALF + 1, nz))
    ys, xs = _central(ny, MAX_INPLANE), _central(nx, MAX_INPLANE)
    log.info("report: reading the central slab z=%d..%d of %d methods", zs.start, zs.stop - 1,
             len(run.volumes))
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
    return CentralSlab(z0, zs, ys, xs, slabs, truth, halves, ref, ref_name, smooth)


def cnr_section(sl: CentralSlab, per: dict[str, dict[str, Any]],
                notes: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """CNR (Table 1) and PSNR/SSIM against the truth; returns the masks (or None)."""
    masks = None
    try:
        masks = auto_masks(sl.ref, erode=2, smooth=sl.smooth)
    except InputError as exc:
        # the report has no erode option: name what the user can change
        notes.append(f"CNR not computed: {str(exc).split(';')[0]} (the slab has too little "
                     "material or air for the masks; the volume is too small or too uniform)")
    for m, img in sl.slabs.items():
        if masks is None:
            per[m].update(cnr=None)
            continue
        mat, air = masks
        per[m].update(cnr=cnr(img, mat, air), mean_mat=float(img[mat].mean()),
                      mean_air=float(img[air].mean()), std_mat=float(img[mat].std()),
                      std_air=float(img[air].std()))
    for m in sl.slabs:
        if sl.truth is None:
            per[m].update(psnr=None, ssim=None)
        else:
            per[m].update(psnr=psnr(sl.slabs[m], sl.truth, fit="affine"),
                          ssim=ssim(sl.slabs[m], sl.truth, fit="affine"))
    return masks


def profile_ends(sl: CentralSlab, config: ReportConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """``(p0, p1, source)`` of the line profile: from the config or automatic."""
    if config.profile is not None:
        if len(config.profile) != 6:
            raise InputError(
                f"profile must be [z0, y0, x0, z1, y1, x1], got {config.profile!r}"
            )
        return (np.array(config.profile[:3], float), np.array(config.profile[3:], float),
                "config")
    a2, b2 = _auto_profile(sl.ref[sl.zi])
    p0 = np.array([sl.z0, a2[0] + sl.ys.start, a2[1] + sl.xs.start], float)
    p1 = np.array([sl.z0, b2[0] + sl.ys.start, b2[1] + sl.xs.start], float)
    return p0, p1, f"automatic (fine structure of the {sl.ref_name} image)"


def profile_section(run: RunData, p0: np.ndarray, p1: np.ndarray, scale: float,
                    per: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """Line profiles and FWHM fits at the reference's peaks (Fig. 5)."""
    num = int(math.ceil(np.linalg.norm(p1 - p0) * 2)) + 1  # half-pixel sampling
    if run.truth is not None:
        ref_vol = run.truth
    elif "ml" in run.volumes:
        ref_vol = run.volumes["ml"]
    else:
        ref_vol = run.volumes["unfiltered"]
    dist, ref_vals = line_profile(ref_vol, p0, p1, num=num, pixel_size=scale)
    if ref_vol is run.volumes["unfiltered"]:
        ref_vals = ndimage.gaussian_filter1d(ref_vals, 2.0 * 2)  # 2 px at half-px sampling
    polarity = _polarity(ref_vals, (num - 1) / max(float(np.linalg.norm(p1 - p0)), 1e-9))
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
    return {"dist": dist, "ref_vals": ref_vals, "ref_fits": ref_fits, "polarity": polarity,
            "profiles": profiles, "fits": fits}


def psd_section(run: RunData, p0: np.ndarray, p1: np.ndarray,
                px_nm: float | None) -> dict[str, Any]:
    """PSD across the same structure (Fig. 6): segments parallel to the profile."""
    psds = {}
    for m, vol in run.volumes.items():
        rows = _parallel_rows(vol, p0, p1, num=max(int(np.linalg.norm(p1 - p0)) + 1, 8))
        psds[m] = psd_1d(rows, pixel_size=px_nm)
    return psds


def difference_section(sl: CentralSlab, per: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Difference images (Fig. 8e) against the unfiltered slice and their structure fraction."""
    diffs = {}
    for m in sl.slabs:
        if m == "unfiltered":
            continue
        r = difference_structure(sl.slabs[m][sl.zi], sl.slabs["unfiltered"][sl.zi],
                                 reference=None if sl.truth is None else sl.truth[sl.zi])
        diffs[m] = r.pop("difference")
        per[m].update(structure_fraction=r["structure_fraction"],
                      structure_signal=r["signal"], difference_rms=r["rms"])
    return diffs


def frc_noise_section(sl: CentralSlab, px_nm: float | None, per: dict[str, dict[str, Any]],
                      with_masks: bool) -> dict[str, Any]:
    """FRC of the halves (and against the truth), noise from the halves."""
    zi = sl.zi
    frc_out: dict[str, Any] = {}
    frc_curves: dict[str, FRCResult] = {}
    noise_out: dict[str, Any] = {}
    noise_map = None
    if sl.halves is not None:
        halves = sl.halves
        frc_curves["split 0 vs split 1"] = frc(halves[0][zi], halves[1][zi], px_nm,
                                               window="hann")
        frc_out["halves"] = frc_curves["split 0 vs split 1"].to_dict()
        per_slice, noise_map = noise_from_halves(halves[0], halves[1])
        noise_out = {
            "definition": "std of (split0 - split1)/sqrt(2): noise of one half",
            "z": list(range(sl.zs.start, sl.zs.stop)),
            "per_slice_std": per_slice.tolist(),
            "mean_std": float(per_slice.mean()),
            "map_min": float(noise_map.min()),
            "map_max": float(noise_map.max()),
            "map_max_over_min": float(noise_map.max() / max(noise_map.min(), 1e-30)),
        }
        if with_masks:
            noise_out["full_std_in_air"] = per["unfiltered"].get("std_air")
    if sl.truth is not None:
        frc_out["vs_truth"] = {}
        for m in sl.slabs:
            r = frc(sl.slabs[m][zi], sl.truth[zi], px_nm, window="hann")
            frc_curves[f"{LABELS[m]} vs truth"] = r
            frc_out["vs_truth"][m] = r.to_dict(curves=False)
    return {"frc_out": frc_out, "frc_curves": frc_curves, "noise_out": noise_out,
            "noise_map": noise_map}


def views(run: RunData, sl: CentralSlab, p0: np.ndarray, p1: np.ndarray) -> dict[str, Any]:
    """xy of the slab's central slice, yz through the profile's centre, and their zooms."""
    nz = run.shape[0]
    ys, xs, z0 = sl.ys, sl.xs, sl.z0
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
    return {
        "xy": {m: s[sl.zi] for m, s in sl.slabs.items()},
        "yz": yz,
        "truth_xy": None if sl.truth is None else sl.truth[sl.zi],
        "truth_yz": None if run.truth is None else _read(run.truth, zyz, ys, xc),
        "offsets": {"z": z0, "y": ys.start, "x": xs.start, "yz_z": zyz.start, "yz_x": xc},
        "zoom_xy": zoom_xy,
        "zoom_yz": zoom_yz,
        "profile": {"p0": p0, "p1": p1, "in_xy": bool(p0[0] == p1[0] == z0),
                    "in_yz": bool(p0[2] == p1[2] == xc)},
    }
