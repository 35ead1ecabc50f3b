"""Phantom objects: analytic :class:`~tomochunk.phantom.shapes.Shapes` for each kind.

``cells`` (the default) imitates the nanotomography samples of Flenner et al. (2022,
J. Synchrotron Rad. 29, 230-238): a cylindrical body (a FIB-milled pillar or a biopsy
punch) holding ellipsoidal cells with nuclei, small dense granules, and a patch of denser
material pierced by a 3D-periodic lattice of holes a few pixels apart, like the
butterfly-scale photonic crystal near the resolution limit. In ROI mode the body is wider
than the field of view and features outside the field rotate in and out of view.

All features are placed without overlap, so every voxel of the truth is >= 0 and each
feature has its intended contrast.
"""

from __future__ import annotations

import math

import numpy as np

from .shapes import CYLINDER, ELLIPSOID, Shapes
from .spec import BODY_RADIUS, ROI_BODY_RADIUS, ScanSpec

__all__ = ["make_shapes", "lattice_patch", "lattice_holes"]

# modified Shepp-Logan (Toft 1996): value, a, b, x0, y0, phi (degrees); plus a z semi-axis
_SHEPP = [
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0, 0.90),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0, 0.88),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0, 0.40),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0, 0.50),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0, 0.45),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0, 0.10),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0, 0.10),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0, 0.08),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0, 0.06),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0, 0.06),
]
_ROI_SCALE = 2.2  # in-plane magnification of the shepp/disk kinds in ROI mode


def make_shapes(spec: ScanSpec) -> Shapes:
    """The analytic object of ``spec`` (deterministic by ``spec.seed``)."""
    rng = np.random.default_rng([spec.seed, 0])
    if spec.kind == "disk":
        return _disk(spec)
    if spec.kind == "shepp":
        return _shepp(spec)
    return _cells(spec, rng)


def _disk(spec: ScanSpec) -> Shapes:
    radius = 0.3 * spec.n_xy * (_ROI_SCALE if spec.roi else 1.0)
    zc, half = (spec.n_z - 1) / 2.0, spec.n_z / 2.0 + 1.0
    return Shapes.from_rows([(CYLINDER, 0.0, 0.0, zc, radius, radius, half, 0.0, spec.mu)])


def _shepp(spec: ScanSpec) -> Shapes:
    scale = 0.475 * spec.n_xy * (_ROI_SCALE if spec.roi else 1.0)
    zc, zs = (spec.n_z - 1) / 2.0, spec.n_z / 2.0
    rows = [
        (ELLIPSOID, x0 * scale, y0 * scale, zc, a * scale, b * scale, c * zs,
         math.radians(phi), 2.0 * value * spec.mu)
        for value, a, b, x0, y0, phi, c in _SHEPP
    ]
    return Shapes.from_rows(rows)


def lattice_patch(spec: ScanSpec) -> tuple[float, float, float, float, float]:
    """Where the hole lattice sits: ``(x, y, radius, z0, z1)`` in pixels.

    ``x, y`` relative to the rotation axis (``y`` up), ``z0..z1`` the slice range.
    The position depends on ``seed`` only through one angle.
    """
    n = spec.n_xy
    rng = np.random.default_rng([spec.seed, 5])
    angle = rng.uniform(0.0, 2.0 * math.pi)
    radius = max(0.17 * n, 3.0 * spec.lattice_period)
    dist = 0.14 * n
    return (dist * math.cos(angle), dist * math.sin(angle), radius,
            0.1 * spec.n_z - 0.5, 0.9 * spec.n_z - 0.5)


def lattice_holes(spec: ScanSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """The holes of the lattice: a simple-cubic array of short cylinders along ``z``.

    In-plane the holes sit on a square grid of period ``p = lattice_period`` aligned with
    ``x`` and ``y`` and centred on the patch; along ``z`` each hole column is cut into
    segments of length ``p - w`` separated by walls ``w = max(1, round(0.2 p))`` pixels
    thick, so the structure is periodic in 3D (as the butterfly scale's photonic crystal)
    and a 3D filter cannot simply average along the holes. A segment always covers slice
    ``n_z // 2``; segments are clipped to leave a solid cap of ``w`` at both patch ends.

    Returns
    -------
    centres : ndarray, (N, 2)
        ``x, y`` of the hole axes, pixels.
    segments : ndarray, (M, 2)
        ``z`` ranges ``[start, end]`` of the hole segments (slice ``k`` spans
        ``[k - 1/2, k + 1/2]``).
    radius : float
        Hole radius, ``0.3 p``.
    """
    px, py, pr, z0, z1 = lattice_patch(spec)
    p = spec.lattice_period
    hole = 0.3 * p
    m = int(pr / p) + 1
    gx, gy = np.meshgrid(np.arange(-m, m + 1) * p, np.arange(-m, m + 1) * p)
    ok = np.hypot(gx, gy) + hole + 0.75 < pr
    centres = np.stack([px + gx[ok], py + gy[ok]], axis=1)
    wall = max(1.0, float(round(0.2 * p)))
    start = spec.n_z // 2 - 1.5  # first full slice of the central segment: n_z // 2 - 1
    lo, hi = z0 + wall, z1 - wall
    k = np.arange(math.floor((lo - start) / p) - 1, math.ceil((hi - start) / p) + 1)
    za = np.maximum(start + k * p, lo)
    zb = np.minimum(start + k * p + p - wall, hi)
    keep = zb - za >= 1.0
    return centres, np.stack([za[keep], zb[keep]], axis=1), hole


def _add_lattice(spec: ScanSpec, rows: list[tuple[float, ...]]) -> tuple[float, float, float]:
    """Append the lattice patch and its holes to ``rows``; return its disc ``(x, y, r)``."""
    px, py, pr, z0, z1 = lattice_patch(spec)
    pz, ph = (z0 + z1) / 2.0, (z1 - z0) / 2.0
    contrast = 0.8 * spec.mu
    rows.append((CYLINDER, px, py, pz, pr, pr, ph, 0.0, contrast))
    centres, segments, hole = lattice_holes(spec)
    for za, zb in segments:
        for hx, hy in centres:
            rows.append((CYLINDER, hx, hy, (za + zb) / 2.0, hole, hole, (zb - za) / 2.0,
                         0.0, -contrast))
    return px, py, pr


def _cells(spec: ScanSpec, rng: np.random.Generator) -> Shapes:
    n, nz, mu = spec.n_xy, spec.n_z, spec.mu
    body_r = (ROI_BODY_RADIUS if spec.roi else BODY_RADIUS) * n
    zc, half = (nz - 1) / 2.0, nz / 2.0 + 1.0
    body_phi = rng.uniform(0.0, math.pi)
    rows: list[tuple[float, ...]] = [
        (CYLINDER, 0.0, 0.0, zc, body_r, body_r * 0.95, half, body_phi, mu)
    ]
    # obstacles for placement: in-plane discs (x, y, r) spanning all z, and 3D spheres
    discs: list[tuple[float, float, float]] = []
    if spec.lattice:
        discs.append(_add_lattice(spec, rows))
    spheres = np.zeros((0, 4))  # x, y, z, bounding radius

    def free(x: float, y: float, z: float, r: float) -> bool:
        if math.hypot(x, y) + r + 1.0 > body_r:
            return False
        for dx, dy, dr in discs:
            if math.hypot(x - dx, y - dy) < dr + r + 1.0:
                return False
        if spheres.shape[0]:
            d = np.sqrt(((spheres[:, :3] - (x, y, z)) ** 2).sum(axis=1))
            if np.any(d < spheres[:, 3] + r + 1.0):
                return False
        return True

    def place(r: float) -> tuple[float, float, float] | None:
        for _ in range(60):
            rho = (body_r - r) * math.sqrt(rng.uniform())
            ang = rng.uniform(0.0, 2.0 * math.pi)
            x, y, z = rho * math.cos(ang), rho * math.sin(ang), rng.uniform(-1.0, nz)
            if free(x, y, z, r):
                return x, y, z
        return None

    # cells with nuclei, until ~25 % of the body volume is filled
    body_volume = math.pi * body_r ** 2 * nz
    filled = 0.0
    misses = 0
    while filled < 0.25 * body_volume and misses < 40:
        a = rng.uniform(0.035, 0.085) * n
        b = a * rng.uniform(0.6, 1.0)
        c = a * rng.uniform(0.7, 1.3)
        phi = rng.uniform(0.0, math.pi)
        sign = 1.0 if rng.uniform() < 0.5 else -1.0
        contrast = sign * rng.uniform(0.25, 0.6) * mu
        k = rng.uniform(0.35, 0.5)
        off = rng.normal(size=3)
        off *= rng.uniform(0.0, 0.3) / max(float(np.linalg.norm(off)), 1e-12)
        nucleus = rng.uniform(0.4, 0.8) * mu
        where = place(max(a, b, c))
        if where is None:
            misses += 1
            continue
        x, y, z = where
        rows.append((ELLIPSOID, x, y, z, a, b, c, phi, contrast))
        cp, sp = math.cos(phi), math.sin(phi)
        nx = x + off[0] * a * cp - off[1] * b * sp
        ny = y + off[0] * a * sp + off[1] * b * cp
        rows.append((ELLIPSOID, nx, ny, z + off[2] * c, k * a, k * b, k * c, phi, nucleus))
        spheres = np.vstack([spheres, (x, y, z, max(a, b, c))])
        filled += 4.0 / 3.0 * math.pi * a * b * c
    # small dense granules (resolution targets)
    n_granules = int(round(2e-4 * math.pi * body_r ** 2 * nz))
    for _ in range(n_granules):
        r = rng.uniform(1.0, 2.5)
        value = rng.uniform(1.0, 2.0) * mu
        where = place(r)
        if where is None:
            continue
        x, y, z = where
        rows.append((ELLIPSOID, x, y, z, r, r, r, 0.0, value))
        spheres = np.vstack([spheres, (x, y, z, r)])
    return Shapes.from_rows(rows)
