"""Direction-resolved resolution: lattice contrast along each axis and axial FRC.

Two measures of how well a volume resolves fine structure along ``z`` (the rotation axis, the
direction a 2.5D network sees only through its few input slices) compared with ``y``:

- :func:`lattice_amplitude` / :func:`lattice_contrast`: the amplitude of a known periodic
  structure (the phantom's hole lattice, period ``p``) along one axis, relative to the
  truth's. The volume is averaged over the two other axes inside a mask (noise averages
  out, blur along the averaged axes does not change the mean profile), and the amplitude of
  ``a + b cos(2 pi f t) + c sin(2 pi f t) + d t`` is fitted by least squares at the known
  frequency ``f = 1/p``. A contrast of 1 keeps the truth's modulation, 0 has smeared it.
  The anisotropy ratio is ``contrast_z / contrast_y`` (1 = isotropic; < 1 = smeared along z,
  the 2.5D-input effect Flenner et al. 2022 discuss).
- :func:`axial_frc`: Fourier correlation of two independent volumes along ONE axis (1D
  spectra of all lines along it, summed), with the half-bit threshold, so the resolution
  along ``z`` and along ``y`` can be compared where two independent volumes exist (the
  splits, or a filter applied to each split).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .frc import FRCResult, _crossing, half_bit_threshold

__all__ = ["AXES", "lattice_amplitude", "lattice_contrast", "axial_frc"]

#: Axis names of a ``(z, y, x)`` volume.
AXES = {"z": 0, "y": 1, "x": 2}


def _axis(axis: str | int) -> int:
    if isinstance(axis, str):
        if axis not in AXES:
            raise InputError(f"axis {axis!r} is not one of z, y, x")
        return AXES[axis]
    return int(axis)


def lattice_amplitude(vol: Any, mask: Any, axis: str | int, frequency: float) -> float:
    """Amplitude of the modulation at ``frequency`` (cycles/pixel) along ``axis`` in ``mask``."""
    v = np.asarray(vol, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if v.ndim != 3 or v.shape != m.shape:
        raise InputError(f"need a 3D volume and a mask of its shape, got {v.shape} and "
                         f"{m.shape}")
    if not 0 < frequency <= 0.5:
        raise InputError(f"frequency {frequency} must be in (0, 0.5] cycles/pixel")
    ax = _axis(axis)
    others = tuple(i for i in range(3) if i != ax)
    count = m.sum(axis=others)
    rows = np.nonzero(count > 0)[0]
    if rows.size < max(4, int(np.ceil(1.5 / frequency))):
        raise InputError(f"the mask spans {rows.size} voxels along axis {axis}; it must cover "
                         "at least 1.5 periods of the lattice")
    prof = np.where(m, np.nan_to_num(v), 0.0).sum(axis=others)[rows] / count[rows]
    t = rows.astype(np.float64)
    w = 2.0 * np.pi * frequency * t
    design = np.stack([np.ones_like(t), np.cos(w), np.sin(w), t - t.mean()], axis=1)
    coef, *_ = np.linalg.lstsq(design, prof, rcond=None)
    return float(np.hypot(coef[1], coef[2]))


def lattice_contrast(vol: Any, truth: Any, mask: Any, frequency: float,
                     axes: tuple[str, ...] = ("y", "z")) -> dict[str, float]:
    """Lattice amplitude of ``vol`` relative to ``truth``'s, per axis, and the anisotropy.

    ``vol`` must be on the truth's grey scale (e.g. after
    :func:`tomochunk.metrics.affine_fit`). Returns ``{"y": .., "z": .., "anisotropy":
    contrast_z / contrast_y}`` (the anisotropy only when both axes are asked for).
    """
    out: dict[str, float] = {}
    for name in axes:
        ref = lattice_amplitude(truth, mask, name, frequency)
        if ref <= 0:
            raise InputError(f"the truth has no lattice modulation along {name} in the mask")
        out[name] = lattice_amplitude(vol, mask, name, frequency) / ref
    if "y" in out and "z" in out:
        out["anisotropy"] = out["z"] / out["y"] if out["y"] > 0 else float("nan")
    return out


def axial_frc(a: Any, b: Any, axis: str | int, *, window: str | None = "hann") -> FRCResult:
    """Fourier correlation of two independent volumes along one axis, half-bit threshold.

    Each line along ``axis`` is Fourier transformed (after removing the volume mean and
    applying ``window`` along the axis); cross and auto spectra are summed over all lines
    and over ``+-f``. ``n_per_ring`` counts the Fourier samples summed per frequency.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise InputError(f"need two 3D volumes of one shape, got {x.shape} and {y.shape}")
    ax = _axis(axis)
    n = x.shape[ax]
    if n < 8:
        raise InputError(f"axis {axis} has {n} voxels; the axial FRC needs >= 8")
    x = np.moveaxis(x - x.mean(), ax, -1)
    y = np.moveaxis(y - y.mean(), ax, -1)
    if window is not None:
        from scipy.signal import get_window

        w = get_window(window, n, fftbins=False)
        x, y = x * w, y * w
    fx = np.fft.rfft(x, axis=-1).reshape(-1, n // 2 + 1)
    fy = np.fft.rfft(y, axis=-1).reshape(-1, n // 2 + 1)
    cross = (fx * np.conj(fy)).real.sum(axis=0)
    denom = np.sqrt((np.abs(fx) ** 2).sum(axis=0) * (np.abs(fy) ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(denom > 0, cross / denom, 0.0)
    freq = np.fft.rfftfreq(n)
    counts = np.full(freq.shape, 2 * fx.shape[0])
    counts[0] = fx.shape[0]
    t = half_bit_threshold(counts)
    return FRCResult(freq, c, t, counts, _crossing(freq, c, t))
