"""Synthetic scans with known truth (``tomochunk.phantom``).

Deterministic 3D phantoms built from analytic shapes, their exact parallel-beam
projections, and raw scans in the ``scan.zarr`` layout with Poisson counting noise, a beam
profile that makes the noise grow toward the field edges (beam-shaping condenser),
detector gain defects that make ring artefacts, flats/darks, optional ROI (object wider
than the field of view) and a fine periodic hole lattice near the resolution limit (like
the butterfly scale of Flenner et al. 2022, J. Synchrotron Rad. 29, 230-238).

Examples
--------
>>> from tomochunk.phantom import demo_spec, simulate_scan
>>> scan, truth = simulate_scan(demo_spec("test"))
>>> scan.projections.dims, truth.shape
(('angle', 'row', 'col'), (16, 64, 64))
"""

from __future__ import annotations

from .labels import lattice_labels, lattice_mask, phase_labels, phase_thresholds, sample_mask
from .objects import lattice_holes, lattice_patch, make_shapes
from .scan import (
    SOURCE,
    angles,
    beam_profile,
    dark_pattern,
    make_truth,
    pixel_gain,
    ring_gains,
    simulate_projections,
    simulate_scan,
    write_scan,
)
from .shapes import (
    CYLINDER,
    ELLIPSOID,
    Ellipses,
    Shapes,
    cross_sections,
    project_ellipses,
    project_shapes,
    rasterise_ellipses,
    rasterise_shapes,
)
from .spec import KINDS, PRESETS, ScanSpec, demo_spec

__all__ = [
    "KINDS",
    "PRESETS",
    "SOURCE",
    "ScanSpec",
    "demo_spec",
    "make_truth",
    "simulate_projections",
    "simulate_scan",
    "write_scan",
    "angles",
    "beam_profile",
    "pixel_gain",
    "ring_gains",
    "dark_pattern",
    "lattice_patch",
    "lattice_holes",
    "make_shapes",
    "sample_mask",
    "lattice_mask",
    "lattice_labels",
    "phase_labels",
    "phase_thresholds",
    "Shapes",
    "Ellipses",
    "ELLIPSOID",
    "CYLINDER",
    "cross_sections",
    "project_ellipses",
    "rasterise_ellipses",
    "project_shapes",
    "rasterise_shapes",
]
