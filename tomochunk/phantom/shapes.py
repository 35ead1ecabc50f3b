"""Analytic 3D objects and their exact parallel-beam projections.

An object is a sum of constant-valued *ellipsoids* and *elliptic cylinders along z*, each
rotated in the ``xy`` plane only. Every cross-section at a height ``z`` is then a set of
ellipses, and both the voxelised truth and the projections follow from those ellipses:

- **Projections** (:func:`project_ellipses`): the parallel-beam Radon transform of an
  ellipse with semi-axes ``a, b`` (rotated by ``phi``) and value ``v`` at detector
  coordinate ``s`` and angle ``theta`` is ``2 v a b sqrt(h^2 - u^2) / h^2`` with
  ``u = s - s0``, ``s0 = cx cos(theta) + cy sin(theta)`` and
  ``h^2 = a^2 cos^2(theta - phi) + b^2 sin^2(theta - phi)`` (Kak & Slaney 1988, ch. 3).
  Its antiderivative ``F(u) = v a b / h^2 (u sqrt(h^2 - u^2) + h^2 asin(u / h))`` gives the
  *exact* average over each detector pixel's width.
- **Truth** (:func:`rasterise_ellipses`): the average of the object over each voxel: exact
  along ``x`` (the chord of each ellipse on a horizontal line), sampled on sub-rows in ``y``.

Both integrate over the pixel height with the same ``supersample`` sub-slices, so the truth
is the pixel-averaged object that an ideal reconstruction of the projections returns.

Coordinates: in-plane ``x`` to the right (array axis 2, ``x = j - c``) and ``y`` up
(array axis 1, ``y = c - i``) with ``c = (n - 1) / 2``; ``z`` is the slice / detector row
index. The detector coordinate is ``s = x cos(theta) + y sin(theta)`` and detector column
``k`` is centred at ``s = k - c``. This is the convention of ``skimage.transform.radon``
and of ASTRA's ``parallel`` geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Shapes",
    "Ellipses",
    "cross_sections",
    "project_ellipses",
    "rasterise_ellipses",
    "project_shapes",
    "rasterise_shapes",
]

ELLIPSOID = 0
CYLINDER = 1

# window widths (pixels) used to bucket ellipses of similar size
_LADDER = np.array([4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768,
                    1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384])
_CHUNK = 1 << 22  # elements per vectorised block (bounded memory)


@dataclass(frozen=True)
class Shapes:
    """Sum of constant-valued ellipsoids and z-cylinders rotated in-plane.

    Attributes
    ----------
    kind : ndarray of int8, (N,)
        0 = ellipsoid, 1 = elliptic cylinder along ``z``.
    center : ndarray, (N, 3)
        ``x, y, z`` of the centre, pixels (``x, y`` relative to the rotation axis).
    axes : ndarray, (N, 3)
        Semi-axes ``a`` (along ``phi``), ``b`` (in-plane, perpendicular) and ``c`` (along
        ``z``; the half length for cylinders), pixels.
    phi : ndarray, (N,)
        In-plane rotation of the ``a`` axis from ``+x`` toward ``+y``, radians.
    value : ndarray, (N,)
        Added attenuation per pixel inside the shape (negative for holes).
    """

    kind: np.ndarray
    center: np.ndarray
    axes: np.ndarray
    phi: np.ndarray
    value: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[float, ...]]) -> Shapes:
        """From tuples ``(kind, x, y, z, a, b, c, phi, value)``."""
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 9)
        return cls(
            kind=arr[:, 0].astype(np.int8),
            center=arr[:, 1:4].copy(),
            axes=arr[:, 4:7].copy(),
            phi=arr[:, 7].copy(),
            value=arr[:, 8].copy(),
        )

    @classmethod
    def concat(cls, parts: list[Shapes]) -> Shapes:
        """Concatenate several objects into one."""
        return cls(
            kind=np.concatenate([p.kind for p in parts]),
            center=np.concatenate([p.center for p in parts]),
            axes=np.concatenate([p.axes for p in parts]),
            phi=np.concatenate([p.phi for p in parts]),
            value=np.concatenate([p.value for p in parts]),
        )

    def __len__(self) -> int:
        return int(self.kind.shape[0])


@dataclass(frozen=True)
class Ellipses:
    """2D cross-sections of a :class:`Shapes` object, flattened over detector rows.

    ``value`` already carries the weight of the sub-slice (``1 / supersample``) or, for
    cylinders, the fraction of the row's sub-slices inside the cylinder.
    """

    row: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    a: np.ndarray
    b: np.ndarray
    phi: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return int(self.row.shape[0])

    def take(self, index: np.ndarray) -> Ellipses:
        """Subset by an index or boolean mask."""
        return Ellipses(*(getattr(self, f)[index] for f in
                          ("row", "cx", "cy", "a", "b", "phi", "value")))


def cross_sections(shapes: Shapes, n_rows: int, supersample: int = 4) -> Ellipses:
    """Ellipses that make up rows ``0 .. n_rows - 1``, averaged over the row height.

    Row ``r`` covers ``z`` in ``[r - 1/2, r + 1/2]``, sampled at ``supersample`` sub-slice
    midpoints. An ellipsoid gives one ellipse per sub-slice it cuts (weight
    ``1/supersample``); a cylinder gives one ellipse per row, weighted by the fraction of
    sub-slices inside its ``z`` range.
    """
    zs = (np.arange(n_rows)[:, None] - 0.5 + (np.arange(supersample) + 0.5) / supersample)
    out: list[tuple[np.ndarray, ...]] = []
    for kind in (ELLIPSOID, CYLINDER):
        sel = np.flatnonzero(shapes.kind == kind)
        if sel.size == 0:
            continue
        cz = shapes.center[sel, 2][:, None, None]
        c = shapes.axes[sel, 2][:, None, None]
        dz = zs[None] - cz  # (N, R, S)
        if kind == ELLIPSOID:
            t2 = (dz / c) ** 2
            n, r, _ = np.nonzero(t2 < 1.0)
            scale = np.sqrt(1.0 - t2[t2 < 1.0])
            keep = scale > 1e-9
            n, r, scale = n[keep], r[keep], scale[keep]
            weight = np.full(n.shape, 1.0 / supersample)
        else:
            frac = ((dz >= -c) & (dz < c)).sum(axis=-1) / supersample  # (N, R)
            n, r = np.nonzero(frac > 0)
            weight = frac[n, r]
            scale = np.ones(n.shape)
        idx = sel[n]
        out.append((r, shapes.center[idx, 0], shapes.center[idx, 1],
                    shapes.axes[idx, 0] * scale, shapes.axes[idx, 1] * scale,
                    shapes.phi[idx], shapes.value[idx] * weight))
    if not out:
        empty = np.zeros(0)
        return Ellipses(empty.astype(np.int64), *(empty,) * 6)
    cols = [np.concatenate(x) for x in zip(*out, strict=True)]
    return Ellipses(cols[0].astype(np.int64), *cols[1:])


def _buckets(size: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Group ellipses by the window width (pixels) their support needs."""
    need = np.ceil(2.0 * size).astype(np.int64) + 2
    slot = np.searchsorted(_LADDER, need)
    if slot.size and slot.max() >= _LADDER.size:
        raise ValueError("phantom feature larger than 16384 pixels")
    return [(int(_LADDER[k]), np.flatnonzero(slot == k)) for k in np.unique(slot)]


def _blocks(index: np.ndarray, per_item: int) -> list[np.ndarray]:
    step = max(1, _CHUNK // max(per_item, 1))
    return [index[i:i + step] for i in range(0, index.size, step)]


def project_ellipses(
    ell: Ellipses, theta: np.ndarray, n_rows: int, n_cols: int, center: float | None = None
) -> np.ndarray:
    """Exact pixel-averaged parallel-beam projections of ellipse cross-sections.

    Parameters
    ----------
    ell : Ellipses
        Cross-sections (from :func:`cross_sections`).
    theta : ndarray
        Projection angles, radians.
    n_rows, n_cols : int
        Detector size.
    center : float, optional
        Detector coordinate of the rotation axis; default ``(n_cols - 1) / 2``.

    Returns
    -------
    ndarray, float64, (n_rows, n_angles, n_cols)
        Sinograms: line integrals in units of (value x pixel), each averaged exactly over
        its detector pixel's width.
    """
    theta = np.asarray(theta, dtype=np.float64)
    n_ang = theta.size
    c = (n_cols - 1) / 2.0 if center is None else float(center)
    # features that never reach the detector (ROI mode) are skipped
    radius = np.hypot(ell.cx, ell.cy)
    reach = (radius - np.maximum(ell.a, ell.b) < n_cols / 2.0 + abs(c - (n_cols - 1) / 2) + 1)
    keep = np.flatnonzero(reach & (ell.value != 0))
    ell = ell.take(keep)
    order = np.argsort(ell.row, kind="stable")
    ell = ell.take(order)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    ang = np.arange(n_ang)
    width_pad = n_cols + 2  # columns -1 and n_cols collect what falls off the detector
    sino = np.zeros(n_rows * n_ang * width_pad)
    for width, members in _buckets(np.maximum(ell.a, ell.b)):
        jj = np.arange(width + 1, dtype=np.float64)
        for blk in _blocks(members, n_ang * (width + 1)):
            e = ell.take(blk)
            s0 = e.cx[:, None] * cos_t + e.cy[:, None] * sin_t  # (m, A)
            d = theta[None, :] - e.phi[:, None]
            h = np.sqrt((e.a[:, None] * np.cos(d)) ** 2 + (e.b[:, None] * np.sin(d)) ** 2)
            klo = np.floor(s0 - h + c + 0.5)
            # t = (edge - s0) / h at the W + 1 pixel edges, clipped to the support
            t = jj - (s0 - klo + c + 0.5)[..., None]
            t /= h[..., None]
            np.clip(t, -1.0, 1.0, out=t)
            # G(t) = t sqrt(1 - t^2) + asin(t): the chord-length antiderivative / h^2
            g = np.multiply(t, t)
            np.subtract(1.0, g, out=g)
            np.sqrt(g, out=g)
            g *= t
            g += np.arcsin(t, out=t)
            vals = np.diff(g, axis=-1)
            vals *= (e.value * e.a * e.b)[:, None, None]
            r0 = int(e.row.min())
            span = int(e.row.max()) - r0 + 1
            base = ((e.row[:, None] - r0) * n_ang + ang) * width_pad + 1  # (m, A)
            k = klo.astype(np.int64)[..., None] + np.arange(width)
            np.clip(k, -1, n_cols, out=k)
            k += base[..., None]
            lo = r0 * n_ang * width_pad
            sino[lo:lo + span * n_ang * width_pad] += np.bincount(
                k.ravel(), weights=vals.ravel(), minlength=span * n_ang * width_pad)
    return sino.reshape(n_rows, n_ang, width_pad)[:, :, 1:-1].copy()


def rasterise_ellipses(ell: Ellipses, n_rows: int, n: int, sub_rows: int = 8) -> np.ndarray:
    """Voxel averages of ellipse cross-sections on an ``(n_rows, n, n)`` grid.

    Exact along ``x`` (the overlap of each ellipse chord with each voxel), averaged over
    ``sub_rows`` sub-rows along ``y``; along ``z`` the weights of :func:`cross_sections`
    apply.

    Returns
    -------
    ndarray, float64, (n_rows, n, n)
        ``(z, y, x)`` volume; array row ``i`` is at ``y = c - i``, column ``j`` at
        ``x = j - c``.
    """
    c = (n - 1) / 2.0
    npad = n + 2  # rows/columns -1 and n collect what falls off the grid
    vol = np.zeros(n_rows * npad * npad)
    cos_p, sin_p = np.cos(ell.phi), np.sin(ell.phi)
    hx = np.hypot(ell.a * cos_p, ell.b * sin_p)
    hy = np.hypot(ell.a * sin_p, ell.b * cos_p)
    inside = ((np.abs(ell.cx) - hx < c + 1) & (np.abs(ell.cy) - hy < c + 1)
              & (ell.value != 0))
    order = np.flatnonzero(inside)
    order = order[np.argsort(ell.row[order], kind="stable")]
    sub = (np.arange(sub_rows) + 0.5) / sub_rows - 0.5  # offsets within a voxel, along -y
    for width, members in _buckets(np.maximum(ell.a[order], ell.b[order])):
        idx_w = np.arange(width)
        for blk in _blocks(order[members], width * width * sub_rows):
            e = ell.take(blk)
            cp, sp = cos_p[blk], sin_p[blk]
            ilo = np.floor(c - (e.cy + hy[blk]) + 0.5).astype(np.int64)
            jlo = np.floor(e.cx - hx[blk] + c + 0.5).astype(np.int64)
            ia2, ib2 = 1.0 / e.a ** 2, 1.0 / e.b ** 2
            qa = cp * cp * ia2 + sp * sp * ib2
            qb = 2.0 * sp * cp * (ia2 - ib2)
            qc = sp * sp * ia2 + cp * cp * ib2
            i = ilo[:, None] + idx_w  # (m, W)
            dy = (c - i[..., None] - sub) - e.cy[:, None, None]  # (m, W, S)
            bq = qb[:, None, None] * dy
            disc = bq * bq - 4.0 * qa[:, None, None] * (qc[:, None, None] * dy * dy - 1.0)
            root = np.sqrt(np.maximum(disc, 0.0))
            x1 = e.cx[:, None, None] + (-bq - root) / (2.0 * qa[:, None, None])
            x2 = e.cx[:, None, None] + (-bq + root) / (2.0 * qa[:, None, None])
            xl = (jlo[:, None] + idx_w - c - 0.5)[:, None, None, :]  # (m, 1, 1, W)
            cover = np.minimum(x2[..., None], xl + 1.0) - np.maximum(x1[..., None], xl)
            np.clip(cover, 0.0, 1.0, out=cover)
            vals = cover.mean(axis=2)  # (m, W, W)
            vals *= e.value[:, None, None]
            j = np.clip(jlo[:, None] + idx_w, -1, n) + 1
            np.clip(i, -1, n, out=i)
            i += 1
            r0 = int(e.row.min())
            span = int(e.row.max()) - r0 + 1
            flat = (((e.row - r0)[:, None] * npad + i) * npad)[:, :, None] + j[:, None, :]
            lo = r0 * npad * npad
            vol[lo:lo + span * npad * npad] += np.bincount(
                flat.ravel(), weights=vals.ravel(), minlength=span * npad * npad)
    return vol.reshape(n_rows, npad, npad)[:, 1:-1, 1:-1].copy()


def _cylinder_groups(shapes: Shapes, n_rows: int, supersample: int
                     ) -> list[tuple[np.ndarray, Ellipses]]:
    """Cylinders grouped by identical per-row weights: ``[(weights (n_rows,), ellipses)]``.

    All cylinders of a group have the same cross-section in every row up to one weight
    per row, so their projection (or rasterisation) is computed once for the group.
    """
    sel = np.flatnonzero(shapes.kind == CYLINDER)
    if sel.size == 0:
        return []
    zs = (np.arange(n_rows)[:, None] - 0.5 + (np.arange(supersample) + 0.5) / supersample)
    dz = zs[None] - shapes.center[sel, 2][:, None, None]
    c = shapes.axes[sel, 2][:, None, None]
    frac = ((dz >= -c) & (dz < c)).sum(axis=-1)  # (N, R) whole sub-slice counts
    profiles, group = np.unique(frac, axis=0, return_inverse=True)
    out = []
    for g, prof in enumerate(profiles):
        if not prof.any():
            continue
        idx = sel[np.flatnonzero(group.ravel() == g)]
        ell = Ellipses(np.zeros(idx.size, dtype=np.int64), shapes.center[idx, 0],
                       shapes.center[idx, 1], shapes.axes[idx, 0], shapes.axes[idx, 1],
                       shapes.phi[idx], shapes.value[idx])
        out.append((prof / supersample, ell))
    return out


def _ellipsoids(shapes: Shapes) -> Shapes:
    keep = shapes.kind == ELLIPSOID
    return Shapes(shapes.kind[keep], shapes.center[keep], shapes.axes[keep],
                  shapes.phi[keep], shapes.value[keep])


def project_shapes(shapes: Shapes, theta: np.ndarray, n_rows: int, n_cols: int,
                   supersample: int = 4) -> np.ndarray:
    """Exact pixel-averaged projections of an object, ``(n_rows, n_angles, n_cols)``.

    Same result as ``project_ellipses(cross_sections(shapes, ...), ...)`` but each group
    of z-cylinders with equal row weights is projected once.
    """
    ell = cross_sections(_ellipsoids(shapes), n_rows, supersample)
    sino = project_ellipses(ell, theta, n_rows, n_cols)
    for weights, group in _cylinder_groups(shapes, n_rows, supersample):
        sino += weights[:, None, None] * project_ellipses(group, theta, 1, n_cols)
    return sino


def rasterise_shapes(shapes: Shapes, n_rows: int, n: int, supersample: int = 4,
                     sub_rows: int = 8) -> np.ndarray:
    """Voxel-averaged object on an ``(n_rows, n, n)`` grid (see :func:`rasterise_ellipses`).

    Same result as ``rasterise_ellipses(cross_sections(shapes, ...), ...)`` but each
    group of z-cylinders with equal row weights is rasterised once.
    """
    ell = cross_sections(_ellipsoids(shapes), n_rows, supersample)
    vol = rasterise_ellipses(ell, n_rows, n, sub_rows)
    for weights, group in _cylinder_groups(shapes, n_rows, supersample):
        vol += weights[:, None, None] * rasterise_ellipses(group, 1, n, sub_rows)
    return vol
