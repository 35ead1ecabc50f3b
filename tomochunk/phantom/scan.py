"""Simulated raw scans: truth, exact projections, beam, detector, counting noise.

The measurement model, per detector pixel ``(row, col)`` and angle ``theta``::

    flat  = Poisson(I0 * beam(row, col) * gain(row, col) + dark(row, col))
    proj  = Poisson(I0 * beam(row, col) * gain(row, col) * ring(col)
                    * exp(-P(theta, row, col)) + dark(row, col))
    dark  = Poisson(dark(row, col))

- ``P`` are the exact pixel-averaged line integrals of the analytic object
  (:func:`simulate_projections`), in units of attenuation per pixel times pixels.
- ``beam`` is a smooth round profile falling to ``beam_falloff`` at the left/right field
  edges (inhomogeneous illumination behind a beam-shaping condenser, Flenner et al. 2022),
  so after flat-field correction the noise grows toward the edges of the field.
- ``gain`` is the detector's per-pixel response, identical in flats and projections, so
  flat-field correction removes it.
- ``ring`` is a per-column gain that differs between the flats and the projections (a
  scintillator defect or a response drift after the flats were taken): it is in the
  projections only, survives flat-field correction and makes ring artefacts. The same
  columns are defective in every row, so every slice has rings.
- ``dark`` is ``dark_level`` with a 5 % fixed pattern, in every frame.

The rotation axis projects onto detector column ``(n_xy - 1) / 2`` exactly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..io.atomic import atomic_file
from ..runtime.logs import get_logger
from .objects import make_shapes
from .shapes import Shapes, project_shapes, rasterise_shapes
from .spec import ScanSpec

__all__ = [
    "SOURCE",
    "angles",
    "beam_profile",
    "pixel_gain",
    "ring_gains",
    "dark_pattern",
    "make_truth",
    "simulate_projections",
    "simulate_scan",
    "write_scan",
]

SOURCE = "tomochunk.phantom"
_SUB_ROWS = 8  # sub-rows per voxel when rasterising the truth


#: Golden ratio fraction ``(sqrt(5) - 1) / 2`` of the golden-angle order.
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def angles(spec: ScanSpec) -> np.ndarray:
    """Projection angles in acquisition order, radians, float64.

    ``ordered``: ``n_angles`` evenly over ``[0, arc)``; ``golden``: ``arc * frac(i * GOLDEN)``
    (``arc`` = ``spec.arc_deg`` in radians).
    """
    arc = np.deg2rad(spec.arc_deg)
    i = np.arange(spec.n_angles, dtype=np.float64)
    out: np.ndarray
    if spec.angle_order == "golden":
        out = arc * np.mod(i * GOLDEN, 1.0)
    else:
        out = i * (arc / spec.n_angles)
    return out


def make_truth(spec: ScanSpec) -> np.ndarray:
    """The phantom volume the scan sees: ``(n_z, n_xy, n_xy)`` float32, ``(z, y, x)``.

    Values are linear attenuation per pixel (the unit of reconstructions: an ideal
    reconstruction of the noise-free projections returns this), each the average of the
    analytic object over the voxel. Array row ``i`` is at ``y = c - i`` (``y`` up) and
    column ``j`` at ``x = j - c``, ``c = (n_xy - 1) / 2``.
    """
    return _truth(spec, make_shapes(spec))


def _truth(spec: ScanSpec, shapes: Shapes) -> np.ndarray:
    vol = rasterise_shapes(shapes, spec.n_z, spec.n_xy, spec.supersample, _SUB_ROWS)
    truth: np.ndarray = np.maximum(vol, 0.0).astype(np.float32)
    return truth


def simulate_projections(spec: ScanSpec) -> np.ndarray:
    """Noise-free line integrals ``(angle, row, col)`` float32 of the phantom.

    Exact for the analytic object: each value is the line integral averaged over the
    detector pixel's width (analytically) and height (``supersample`` sub-slices). In
    ROI mode the whole object is projected, including its parts outside the field of
    view, so the projection edges are not zero.
    """
    return _projections(spec, make_shapes(spec))


def _projections(spec: ScanSpec, shapes: Shapes) -> np.ndarray:
    sino = project_shapes(shapes, angles(spec), spec.n_z, spec.n_xy, spec.supersample)
    return np.ascontiguousarray(sino.transpose(1, 0, 2), dtype=np.float32)


def beam_profile(spec: ScanSpec) -> np.ndarray:
    """Relative flat-field intensity ``(row, col)``: 1 at the centre, ``beam_falloff`` at
    the left/right edges.

    A round Gaussian ``beam_falloff ** rho**2`` where ``rho`` is the distance from the
    detector centre in units of the half width ``(n_xy - 1) / 2`` (rows and columns share
    the pixel scale, so the corners fall further).
    """
    half = max((spec.n_xy - 1) / 2.0, 0.5)
    col = (np.arange(spec.n_xy) - (spec.n_xy - 1) / 2.0) / half
    row = (np.arange(spec.n_z) - (spec.n_z - 1) / 2.0) / half
    rho2 = row[:, None] ** 2 + col[None, :] ** 2
    return spec.beam_falloff ** rho2


def pixel_gain(spec: ScanSpec) -> np.ndarray:
    """Per-pixel detector gain ``(row, col)`` (in flats and projections alike)."""
    rng = np.random.default_rng([spec.seed, 2])
    g = 1.0 + spec.pixel_gain_sigma * rng.standard_normal((spec.n_z, spec.n_xy))
    return np.clip(g, 0.5, 1.5)


def ring_gains(spec: ScanSpec) -> np.ndarray:
    """Per-column gain of the projections relative to the flats, ``(n_xy,)``.

    ``ring_defects`` columns, chosen among the central 90 % of the detector, have gain
    ``1 +- ring_strength * U(0.5, 1.5)``; all others are exactly 1.
    """
    rng = np.random.default_rng([spec.seed, 1])
    gains = np.ones(spec.n_xy)
    lo, hi = int(0.05 * spec.n_xy), int(np.ceil(0.95 * spec.n_xy))
    cols = rng.choice(np.arange(lo, hi), size=spec.ring_defects, replace=False)
    signs = rng.choice([-1.0, 1.0], size=spec.ring_defects)
    gains[cols] = 1.0 + signs * spec.ring_strength * rng.uniform(0.5, 1.5, spec.ring_defects)
    return gains


def dark_pattern(spec: ScanSpec) -> np.ndarray:
    """Expected dark counts ``(row, col)``: ``dark_level`` with a 5 % fixed pattern."""
    rng = np.random.default_rng([spec.seed, 4])
    pattern = 1.0 + 0.05 * rng.standard_normal((spec.n_z, spec.n_xy))
    return spec.dark_level * np.clip(pattern, 0.5, 1.5)


def _counts(expected: np.ndarray, spec: ScanSpec, rng: np.random.Generator) -> np.ndarray:
    if not spec.noise:
        return expected.astype(np.float32)
    return rng.poisson(expected).astype(spec.dtype)


def simulate_scan(
    spec: ScanSpec, truth: np.ndarray | None = None
) -> tuple[xr.Dataset, np.ndarray]:
    """Simulate a raw scan of the phantom in the ``scan.zarr`` layout.

    Parameters
    ----------
    spec : ScanSpec
        The scan (deterministic by ``spec.seed``).
    truth : ndarray, optional
        The already computed :func:`make_truth` of ``spec`` (saves its cost); it is
        returned as is. The projections always come from the analytic object.

    Returns
    -------
    scan : xarray.Dataset
        ``projections(angle,row,col)``, ``flat(flat,row,col)``, ``dark(dark,row,col)``
        raw counts (``spec.dtype``), coordinate ``theta(angle)`` (radians, float64) and
        attrs ``pixel_size_um``, ``source`` (``"tomochunk.phantom"``), ``phantom_spec``
        (JSON of ``spec``), ``phantom_center`` (the rotation axis column,
        ``(n_xy - 1) / 2``), ``phantom_ring_columns`` and ``phantom_ring_gains``. A
        half-acquisition spec (``detector_cols``) keeps only the first ``detector_cols``
        detector columns.
    truth : ndarray
        ``(n_z, n_xy, n_xy)`` float32 attenuation per pixel (:func:`make_truth`).
    """
    log = get_logger("phantom")
    t0 = time.perf_counter()
    shapes = make_shapes(spec)
    if truth is None:
        truth = _truth(spec, shapes)
    elif truth.shape != (spec.n_z, spec.n_xy, spec.n_xy):
        raise InputError(
            f"truth has shape {truth.shape} but the spec needs "
            f"{(spec.n_z, spec.n_xy, spec.n_xy)}; pass make_truth(spec) or truth=None"
        )
    line = _projections(spec, shapes)
    rng = np.random.default_rng([spec.seed, 3])
    dark = dark_pattern(spec)
    open_beam = spec.photons * beam_profile(spec) * pixel_gain(spec)  # (row, col)
    ring = ring_gains(spec)
    proj = np.empty(line.shape, dtype=spec.dtype if spec.noise else np.float32)
    for a in range(line.shape[0]):  # per angle: bounded temporaries, same draws every run
        proj[a] = _counts(open_beam * ring * np.exp(-line[a].astype(np.float64)) + dark,
                          spec, rng)
    flats = _counts(np.broadcast_to(open_beam + dark, (spec.n_flats, *dark.shape)), spec, rng)
    darks = _counts(np.broadcast_to(dark, (spec.n_darks, *dark.shape)), spec, rng)
    if spec.n_cols < spec.n_xy:  # half acquisition: the detector sees columns 0..n_cols-1
        proj, flats, darks = (a[..., : spec.n_cols] for a in (proj, flats, darks))
        ring = ring[: spec.n_cols]
    defective = np.flatnonzero(ring != 1.0)
    ds = xr.Dataset(
        {
            "projections": (("angle", "row", "col"), proj),
            "flat": (("flat", "row", "col"), flats),
            "dark": (("dark", "row", "col"), darks),
        },
        coords={"theta": ("angle", angles(spec))},
        attrs={
            "pixel_size_um": float(spec.pixel_size_um),
            "source": SOURCE,
            "phantom_spec": spec.to_json(),
            "phantom_center": float(spec.center),
            "phantom_ring_columns": [int(c) for c in defective],
            "phantom_ring_gains": [float(g) for g in ring[defective]],
        },
    )
    ds["theta"].attrs["units"] = "rad"
    log.info("simulated %s scan %s in %.1f s", spec.kind, tuple(proj.shape),
             time.perf_counter() - t0)
    return ds, truth


def write_scan(
    spec: ScanSpec,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    truth_path: str | os.PathLike[str] | None = None,
    chunk_rows: int = 16,
) -> tuple[Path | str, np.ndarray]:
    """Simulate a scan and write it as ``scan.zarr`` (atomically); optionally the truth.

    Parameters
    ----------
    spec : ScanSpec
        The scan.
    path : path-like
        Output ``scan.zarr``.
    overwrite : bool
        Replace existing outputs.
    truth_path : path-like, optional
        Also save the truth volume there as ``.npy`` (written to a temporary name and
        renamed, so it never looks complete after an error).
    chunk_rows : int
        Detector rows per chunk of the store (sinogram blocks read fast).

    Returns
    -------
    (pathlib.Path or str, ndarray)
        The store path (an fsspec URL is returned unchanged) and the truth.
    """
    from ..io.store import check_output_path, write_dataset

    out: Path | str = check_output_path(path, overwrite)
    if truth_path is not None:
        truth_path = check_output_path(truth_path, overwrite)
    ds, truth = simulate_scan(spec)
    rows = max(1, min(int(chunk_rows), spec.n_z))
    ds = ds.chunk({"angle": -1, "row": rows, "col": -1, "flat": -1, "dark": -1})
    write_dataset(ds, out, overwrite=overwrite, label=f"writing {Path(out).name}")
    if truth_path is not None:
        truth_path = Path(truth_path)
        with atomic_file(truth_path, ".partial-", ".npy") as tmp:
            np.save(tmp, truth)
    return out, truth
