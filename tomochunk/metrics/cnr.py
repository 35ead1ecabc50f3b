"""Contrast-to-noise ratio between two regions, and automatic material/air masks.

The CNR follows Muhogora et al. (2008), Radiat. Prot. Dosimetry 129:231, as used by
Flenner et al. (2022), J. Synchrotron Rad., "Machine learning denoising of
high-resolution X-ray nanotomography data" (Eq. 1, Table 1)::

    CNR = (I_mat - I_air) / sqrt((sigma_mat**2 + sigma_air**2) / 2)

with ``I`` the mean and ``sigma`` the (population, ``ddof=0``) standard deviation of the grey
values inside each mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputError

__all__ = ["cnr", "auto_masks", "as_image", "check_mask"]


def as_image(img: Any, name: str = "image", ndim: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """``img`` as a float64 numpy array of an allowed dimensionality (computes lazy input).

    Raises
    ------
    InputError
        If the array has the wrong number of dimensions, is empty, or holds no finite value.
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim not in ndim:
        raise InputError(
            f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {arr.shape}; "
            "pass a single slice (y, x) or a volume (z, y, x)"
        )
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); pass a non-empty array")
    if not np.isfinite(arr).any():
        raise InputError(f"{name} holds no finite value; check the input data")
    return arr


def check_mask(mask: Any, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Validate a boolean mask against an image shape and return it as a bool array.

    Raises
    ------
    InputError
        If the mask does not have the image's shape (so it cannot overlap the volume
        voxel-for-voxel) or selects no voxel.
    """
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise InputError(
            f"{name} has shape {m.shape} but the image has shape {tuple(shape)}; the mask must "
            "cover the image voxel for voxel (crop or pad it to the image's shape)"
        )
    m = m.astype(bool, copy=False)
    if not m.any():
        raise InputError(
            f"{name} is empty (selects no voxel); choose a region that overlaps the image"
        )
    return m


def cnr(img: Any, mat_mask: Any, air_mask: Any) -> float:
    """Contrast-to-noise ratio of a material region against an air (background) region.

    .. math:: \\mathrm{CNR} = \\frac{I_{mat} - I_{air}}
              {\\sqrt{\\tfrac{1}{2}(\\sigma_{mat}^2 + \\sigma_{air}^2)}}

    (Muhogora et al. 2008; Flenner et al. 2022, Eq. 1). Means and population standard
    deviations (``ddof=0``) are taken over the finite voxels of each mask.

    Parameters
    ----------
    img : array_like, 2D or 3D
        Image or volume.
    mat_mask, air_mask : array_like of bool
        Regions of the material and of the air, same shape as ``img``.

    Returns
    -------
    float
        The CNR; positive when the material is brighter than the air.

    Raises
    ------
    InputError
        If a mask has another shape than ``img``, is empty, the masks overlap, or both
        regions are perfectly uniform (zero noise: CNR undefined).
    """
    a = as_image(img, "image")
    mat = check_mask(mat_mask, a.shape, "material mask") & np.isfinite(a)
    air = check_mask(air_mask, a.shape, "air mask") & np.isfinite(a)
    if (mat & air).any():
        raise InputError(
            f"the material and air masks overlap in {int((mat & air).sum())} voxels; "
            "a voxel can belong to one region only"
        )
    if not mat.any() or not air.any():
        raise InputError("a mask selects only non-finite voxels; choose another region")
    vm, va = a[mat], a[air]
    noise = np.sqrt(0.5 * (vm.var() + va.var()))
    if noise == 0:
        raise InputError(
            "both regions are perfectly uniform (zero standard deviation): the CNR is "
            "undefined; use regions of a noisy image"
        )
    return float((vm.mean() - va.mean()) / noise)


def auto_masks(
    img: Any,
    sample_mask: Any = None,
    erode: int = 2,
    *,
    smooth: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Material and air masks by Otsu thresholding inside the sample region, eroded.

    The image is Gaussian-smoothed (``smooth`` pixels) only to choose the masks, so that
    noise does not fragment them; the threshold is Otsu's (Otsu 1979, IEEE Trans. SMC
    9:62) on the smoothed values inside ``sample_mask``. Each mask is then eroded by
    ``erode`` voxels (a cross-shaped structuring element, iterated) to keep away from edges,
    where partial-volume voxels would bias both means and deviations. Compute the masks once
    (on the least noisy image available) and apply them to every method for a fair table.

    Parameters
    ----------
    img : array_like, 2D or 3D
    sample_mask : array_like of bool, optional
        Region to consider (default: the whole image).
    erode : int
        Erosion depth in voxels (0 = none).
    smooth : float
        Gaussian sigma in voxels applied before thresholding (0 = none).

    Returns
    -------
    mat, air : numpy.ndarray of bool
        Voxels above (material) and at or below (air) the threshold, eroded.

    Raises
    ------
    InputError
        If ``sample_mask`` does not fit the image or is empty, the region holds a single
        grey value, or erosion leaves a mask empty (lower ``erode``).
    """
    from skimage.filters import threshold_otsu

    a = as_image(img, "image")
    region = np.isfinite(a)
    if sample_mask is not None:
        region &= check_mask(sample_mask, a.shape, "sample mask")
    if erode < 0:
        raise InputError(f"erode must be >= 0, got {erode}")
    s = ndimage.gaussian_filter(np.nan_to_num(a), smooth) if smooth > 0 else a
    vals = s[region]
    if vals.size < 2 or np.ptp(vals) == 0:
        raise InputError(
            "the sample region holds a single grey value; there is no material/air contrast "
            "to threshold (pass masks explicitly)"
        )
    t = threshold_otsu(vals)
    mat = region & (s > t)
    air = region & (s <= t)
    if erode:
        st = ndimage.generate_binary_structure(a.ndim, 1)
        mat = ndimage.binary_erosion(mat, st, iterations=erode)
        air = ndimage.binary_erosion(air, st, iterations=erode)
    for m, what in ((mat, "material"), (air, "air")):
        if not m.any():
            raise InputError(
                f"the {what} mask is empty after eroding by {erode} voxels; lower 'erode' or "
                "pass a larger sample region"
            )
    return mat, air
