"""Iterative non-local means for tomography (after Bruns, Stipp & Sørensen 2017).

Bruns et al. (2017, Adv. Water Resour. 105:96-107) tune NLM for X-ray tomograms of porous
media: the filter is iterated (4 iterations), the similarity of patches is measured on the
previous, already denoised iterate while the weighted averages are always taken over the
ORIGINAL values (so detail lost by one iteration is not compounded by the next), the noise
level is re-estimated after the first iteration, and the noise estimate is z-adaptive (it
follows the slices along the rotation axis). This module implements that description with
numpy (our reading of the method, not a port of the authors' code):

- iteration 1: weights from patches of the original ``f``; per-slice noise ``sigma_1(z)`` by
  the wavelet MAD (:func:`skimage.restoration.estimate_sigma`) of each slice;
  ``w = exp(-max(d² - 2 sigma(z)², 0) / (h sigma(z))²)``, ``d²`` the mean squared
  difference of two ``patch_size³`` patches (the ``2 sigma²`` bias of noisy patches is
  removed as in Buades et al. 2011);
- after iteration 1 the noise is re-estimated per slice as the robust (1.4826 MAD)
  standard deviation of the residual ``f - u_1`` of that slice;
- iterations 2..n: weights from patches of the previous iterate ``u_{i-1}`` (treated as
  noise-free, so no bias term), strength ``h sigma(z)``; ``u_i = sum w f / sum w``.

Every voxel of ``u_i`` depends on ``u_{i-1}`` within ``patch_distance + patch_size // 2``
voxels and on the noise estimate of its own slice (whole slices per chunk), so a z-chunk
with a halo of ``iterations * (patch_distance + patch_size // 2)`` slices is exact, also with
estimated noise. Volume ends are mirrored (``d c b a | a b c d``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage as ndi

from ..chunks import Slab, Volume, apply_kernel, check_volume
from .component import Filter
from .nlm import _check_positive, _check_strength, check_nlm_params

__all__ = ["ITERNLM", "IterNLM", "IterNLMParams", "iternlm", "iternlm_array", "iternlm_halo",
           "slice_noise"]

_MAD = 1.482602218505602  # 1 / Phi^-1(3/4): MAD -> standard deviation of a Gaussian


def iternlm_halo(iterations: int, patch_size: int, patch_distance: int) -> int:
    """Halo (slices per side) that makes chunked iterative NLM exact."""
    return int(iterations) * (int(patch_distance) + int(patch_size) // 2)


def slice_noise(vol: np.ndarray) -> np.ndarray:
    """Per-slice noise level ``(z,)``: wavelet MAD estimate of every xy slice."""
    from skimage.restoration import estimate_sigma

    return np.array([estimate_sigma(np.asarray(s, dtype=np.float64), channel_axis=None)
                     for s in vol], dtype=np.float64)


def _residual_noise(f: np.ndarray, u: np.ndarray) -> np.ndarray:
    r = (f - u).reshape(f.shape[0], -1)
    med = np.median(r, axis=1, keepdims=True)
    return _MAD * np.median(np.abs(r - med), axis=1)


def _nlm_pass(u: np.ndarray, f_pad: np.ndarray, sigma: np.ndarray, bias: np.ndarray,
              patch_size: int, patch_distance: int, h: float) -> np.ndarray:
    """One NLM pass: weights from patches of ``u``, averages of the padded original.

    Shift by shift over the search window: squared differences of ``u`` and its shifted
    copy, box-summed over the patch (:func:`scipy.ndimage.uniform_filter`), turned into
    weights and accumulated (float32 work arrays, float64 sums).
    """
    nz, ny, nx = u.shape
    p, d = patch_size // 2, patch_distance
    r = d + p
    u_pad = np.pad(u.astype(np.float32), r, mode="symmetric")
    neg_inv = (-1.0 / np.maximum((h * sigma) ** 2, 1e-30)).astype(np.float32)[:, None, None]
    b = (2.0 * bias**2).astype(np.float32)[:, None, None]
    n_ext = (nz + 2 * p, ny + 2 * p, nx + 2 * p)
    centre = u_pad[d: d + n_ext[0], d: d + n_ext[1], d: d + n_ext[2]]
    num = np.zeros(u.shape, np.float64)
    den = np.zeros(u.shape, np.float64)
    d2 = np.empty(n_ext, np.float32)
    w = np.empty(u.shape, np.float32)
    for a in range(-d, d + 1):
        for bb in range(-d, d + 1):
            for c in range(-d, d + 1):
                shifted = u_pad[d + a: d + a + n_ext[0], d + bb: d + bb + n_ext[1],
                                d + c: d + c + n_ext[2]]
                np.subtract(shifted, centre, out=d2)
                np.square(d2, out=d2)
                box = ndi.uniform_filter(d2, size=patch_size, mode="constant")
                np.subtract(box[p: p + nz, p: p + ny, p: p + nx], b, out=w)
                np.maximum(w, 0.0, out=w)
                np.multiply(w, neg_inv, out=w)
                np.exp(w, out=w)
                den += w
                w *= f_pad[r + a: r + a + nz, r + bb: r + bb + ny, r + c: r + c + nx]
                num += w
    return num / den


def iternlm_array(
    f: np.ndarray,
    iterations: int = 4,
    patch_size: int = 3,
    patch_distance: int = 3,
    h: float = 0.8,
    sigma: float | None = None,
) -> np.ndarray:
    """Iterative NLM of a whole numpy volume (the kernel; see the module docstring)."""
    f = np.asarray(f, dtype=np.float64)
    r = patch_distance + patch_size // 2
    f_pad = np.pad(f.astype(np.float32), r, mode="symmetric")
    fixed = sigma is not None
    sig = np.full(f.shape[0], float(sigma)) if sigma is not None else slice_noise(f)
    if not np.any(sig > 0):
        return f.astype(np.float32)
    sig = np.where(sig > 0, sig, np.max(sig))
    u = f
    for i in range(int(iterations)):
        bias = sig if i == 0 else np.zeros_like(sig)
        u = _nlm_pass(u, f_pad, sig, bias, patch_size, patch_distance, h)
        if i == 0 and not fixed:
            new = _residual_noise(f, u)
            sig = np.where(new > 0, new, sig)
    return u.astype(np.float32)


def _iternlm_kernel(slab: np.ndarray, info: Slab, **params: object) -> np.ndarray:
    return iternlm_array(slab, **params)[info.core]  # type: ignore[arg-type]


def iternlm(
    vol: Volume,
    iterations: int = 4,
    patch_size: int = 3,
    patch_distance: int = 3,
    h: float = 0.8,
    sigma: float | None = None,
    chunk_z: int | None = None,
) -> Volume:
    """Iterative, z-adaptive non-local means for tomograms (Bruns et al. 2017).

    Parameters
    ----------
    vol : numpy.ndarray, dask.array.Array or xarray.DataArray
        Volume ``(z, y, x)``.
    iterations : int
        NLM passes (Bruns et al.: 4). Each pass widens the halo by
        ``patch_distance + patch_size // 2`` slices.
    patch_size : int
        Side of the cubic patches compared.
    patch_distance : int
        Search radius in voxels (the cost grows as ``(2 patch_distance + 1)³``).
    h : float
        Strength relative to the per-slice noise level.
    sigma : float, optional
        A fixed noise level for every slice and iteration (no estimation); None (default)
        estimates it per slice and re-estimates it after iteration 1.
    chunk_z : int, optional
        Slices per task (see :func:`tomochunk.filters.median`).

    Returns
    -------
    Same type as ``vol``; float32.

    Notes
    -----
    The chunked result equals the whole-volume result (estimated or fixed noise), because
    every quantity is either local within the halo or computed per slice.
    """
    shape = check_volume(vol)
    check_nlm_params(patch_size, patch_distance, h, sigma, shape)
    _check_positive(iterations=iterations)
    params = {"iterations": int(iterations), "patch_size": int(patch_size),
              "patch_distance": int(patch_distance), "h": float(h),
              "sigma": None if sigma is None else float(sigma)}
    return apply_kernel(
        vol, _iternlm_kernel, halo=iternlm_halo(iterations, patch_size, patch_distance),
        chunk_z=chunk_z, params=params, name="iternlm",
        attrs={"filter": "iternlm", **{k: ("estimated per slice" if v is None else v)
                                       for k, v in params.items()}},
    )


@dataclass(frozen=True)
class IterNLMParams:
    """Parameters of the iterative, z-adaptive NLM.

    Attributes
    ----------
    iterations : int
        NLM passes (Bruns et al.: 4); each widens the halo by
        ``patch_distance + patch_size // 2`` slices.
    patch_size : int
        Side of the cubic patches compared.
    patch_distance : int
        Search radius in voxels (the cost grows as ``(2 patch_distance + 1)³``).
    h : float
        Strength relative to the per-slice noise level.
    """

    iterations: int = 4
    patch_size: int = 3
    patch_distance: int = 3
    h: float = 0.8

    def __post_init__(self) -> None:
        _check_positive(iterations=self.iterations, patch_size=self.patch_size,
                        patch_distance=self.patch_distance)
        _check_strength(self.h)


class IterNLM(Filter):
    """The iterative NLM (:func:`iternlm`) as a registered filter."""

    name = "iternlm"
    description = "iterative z-adaptive NLM (Bruns et al. 2017)"
    Params = IterNLMParams
    needs_sigma: ClassVar[bool] = True
    function: ClassVar[Any] = staticmethod(iternlm)

    def halo(self, params: Any) -> int:
        """``iterations * (patch_distance + patch_size // 2)`` slices."""
        return iternlm_halo(params.iterations, params.patch_size, params.patch_distance)

    def run(self, vol: Volume, params: Any = None, *, sigma: float | None = None,
            chunk_z: int | None = None) -> Volume:
        """:func:`iternlm` of ``vol`` with ``params`` and the noise level ``sigma``."""
        p = self.params(params)
        return iternlm(vol, iterations=p.iterations, patch_size=p.patch_size,
                       patch_distance=p.patch_distance, h=p.h, sigma=sigma, chunk_z=chunk_z)


#: The registered iterative-NLM component (``FILTERS.get("iternlm")``).
ITERNLM = IterNLM()
