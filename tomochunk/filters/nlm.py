"""3D non-local means (scikit-image) with a per-chunk noise estimate, chunked along z."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..chunks import Slab, Volume, apply_kernel, check_volume
from ..errors import ConfigError
from .component import Filter

__all__ = ["NLM", "NLMFilter", "NLMParams", "nlm", "nlm_halo", "check_nlm_params"]


def nlm_halo(patch_size: int, patch_distance: int) -> int:
    """Slices a voxel of the NLM output depends on, on each side: ``patch_distance + ps//2``."""
    return int(patch_distance) + int(patch_size) // 2


def check_nlm_params(patch_size: int, patch_distance: int, h: float,
                     sigma: float | None, shape: tuple[int, ...]) -> None:
    """Raise :class:`ConfigError` for NLM parameters that cannot work on ``shape``."""
    _check_positive(patch_size=patch_size, patch_distance=patch_distance)
    _check_strength(h)
    if sigma is not None and not sigma >= 0:
        raise ConfigError(f"sigma must be >= 0 or None (estimate it), got {sigma!r}")
    if patch_size > min(shape[-2:]):
        raise ConfigError(
            f"patch_size {patch_size} is larger than the slices of the volume of shape "
            f"{tuple(shape)}; use a patch_size <= {min(shape[-2:])}"
        )


def _nlm_kernel(slab: np.ndarray, info: Slab, *, patch_size: int, patch_distance: int,
                h: float, sigma: float | None) -> np.ndarray:
    from skimage.restoration import denoise_nl_means, estimate_sigma

    core = slab[info.core]
    s = float(estimate_sigma(core, channel_axis=None)) if sigma is None else float(sigma)
    if s <= 0:
        return core.astype(np.float32, copy=True)
    out = denoise_nl_means(
        slab.astype(np.float32, copy=False), patch_size=patch_size,
        patch_distance=patch_distance, h=h * s, sigma=s, fast_mode=True, channel_axis=None,
    )
    # scikit-image drops a z axis of length 1 (it then filters the slice in 2D)
    return np.reshape(out, slab.shape)[info.core]


def nlm(
    vol: Volume,
    patch_size: int = 3,
    patch_distance: int = 5,
    h: float = 0.8,
    sigma: float | None = None,
    chunk_z: int | None = None,
) -> Volume:
    """3D non-local means (Buades, Coll & Morel 2005) with a z-adaptive noise level.

    Wraps :func:`skimage.restoration.denoise_nl_means` (fast mode, Darbon et al. 2008) in
    3D. The filtering strength is ``h * sigma``; ``sigma`` is the Gaussian noise level,
    subtracted from the patch distances as scikit-image recommends. With ``sigma=None`` it
    is estimated per chunk (:func:`skimage.restoration.estimate_sigma`, the wavelet MAD of
    Donoho & Johnstone 1994, on the chunk's core slices), so the filter adapts along z as
    the noise of a scan changes; the result then depends on ``chunk_z``. With a fixed
    ``sigma`` the chunked result equals the whole-volume one (to float rounding of the
    integral images): each chunk carries a halo of ``patch_distance + patch_size // 2``
    slices, and scikit-image mirrors the ends of a slab like those of the volume.

    Parameters
    ----------
    vol : numpy.ndarray, dask.array.Array or xarray.DataArray
        Volume ``(z, y, x)``.
    patch_size : int
        Side of the cubic patches compared.
    patch_distance : int
        Search radius (voxels) for similar patches.
    h : float
        Strength relative to ``sigma`` (paper-style NLM: ~0.6-1).
    sigma : float, optional
        Noise level; None estimates it per chunk.
    chunk_z : int, optional
        Slices per task (see :func:`tomochunk.filters.median`).

    Returns
    -------
    Same type as ``vol``; float32.
    """
    shape = check_volume(vol)
    check_nlm_params(patch_size, patch_distance, h, sigma, shape)
    params = {"patch_size": int(patch_size), "patch_distance": int(patch_distance),
              "h": float(h), "sigma": None if sigma is None else float(sigma)}
    return apply_kernel(
        vol, _nlm_kernel, halo=nlm_halo(patch_size, patch_distance), chunk_z=chunk_z,
        params=params, name="nlm",
        attrs={"filter": "nlm", **{k: ("estimated per chunk" if v is None else v)
                                   for k, v in params.items()}},
    )


def _check_positive(**values: Any) -> None:
    for name, v in values.items():
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")


def _check_strength(h: float) -> None:
    if not h > 0:
        raise ConfigError(f"h (strength relative to the noise sigma) must be > 0, got {h!r}")


@dataclass(frozen=True)
class NLMParams:
    """Parameters of 3D non-local means.

    Attributes
    ----------
    patch_size : int
        Side of the cubic patches compared.
    patch_distance : int
        Search radius (voxels) for similar patches.
    h : float
        Strength relative to the noise sigma (paper-style NLM: ~0.6-1).
    """

    patch_size: int = 3
    patch_distance: int = 5
    h: float = 0.8

    def __post_init__(self) -> None:
        _check_positive(patch_size=self.patch_size, patch_distance=self.patch_distance)
        _check_strength(self.h)


class NLMFilter(Filter):
    """3D non-local means (:func:`nlm`) as a registered filter."""

    name = "nlm"
    description = "3D non-local means, per-chunk sigma (scikit-image)"
    Params = NLMParams
    needs_sigma: ClassVar[bool] = True
    function: ClassVar[Any] = staticmethod(nlm)

    def halo(self, params: Any) -> int:
        """``patch_distance + patch_size // 2`` slices."""
        return nlm_halo(params.patch_size, params.patch_distance)

    def run(self, vol: Volume, params: Any = None, *, sigma: float | None = None,
            chunk_z: int | None = None) -> Volume:
        """:func:`nlm` of ``vol`` with ``params`` and the noise level ``sigma``."""
        p = self.params(params)
        return nlm(vol, patch_size=p.patch_size, patch_distance=p.patch_distance, h=p.h,
                   sigma=sigma, chunk_z=chunk_z)


#: The registered NLM component (``FILTERS.get("nlm")``).
NLM = NLMFilter()
