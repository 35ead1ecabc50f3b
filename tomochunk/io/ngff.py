"""OME-Zarr (NGFF 0.5) multiscale metadata for the volumes of a tomochunk store.

The store stays the xarray layout of :mod:`tomochunk.io.store`: the full-resolution volume
(``full``, ``denoised``, ``median``, ...) is the array at the root that ``xarray.open_zarr``
reads. The root group's ``ome`` attribute declares it as level 0 of a multiscale image whose
coarser levels live in the subgroup ``pyramid/<name>/<k>`` (xarray does not descend into
subgroups, NGFF readers follow the paths). napari-ome-zarr, neuroglancer and other NGFF
readers therefore show the very arrays that xarray and :func:`tomochunk.open_store` load.

Axes are ``z, y, x`` of type ``space``, in micrometres when the pixel size is known (then
level ``k`` has scale ``pixel_size * 2**k`` and the translation ``(2**k - 1) / 2`` pixels
that centres a 2x block mean on its block), otherwise unitless with scale ``2**k``.

Reference: Moore et al. (2023), "OME-Zarr: a cloud-optimized bioimaging file format with
international community support", Histochem. Cell Biol. 160:223; NGFF specification 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import zarr

from .pyramid import write_pyramid

__all__ = ["NGFF_VERSION", "VOLUME_DIMS", "volume_names", "pixel_size_of", "multiscale",
           "write_ngff"]

NGFF_VERSION = "0.5"
VOLUME_DIMS = ("z", "y", "x")
_PIXEL_KEYS = ("pixel_size_um", "recon_pixel_size_um")


def volume_names(group: zarr.Group) -> list[str]:
    """Root arrays of ``group`` that are float volumes with dims ``(z, y, x)``, sorted."""
    names = []
    for name, arr in group.arrays():
        dims = tuple(getattr(arr.metadata, "dimension_names", None) or ())
        if dims == VOLUME_DIMS and arr.dtype.kind == "f":
            names.append(name)
    return sorted(names)


def pixel_size_of(attrs: Mapping[str, Any]) -> float | None:
    """The pixel size in micrometres recorded in store attributes, or None."""
    for key in _PIXEL_KEYS:
        value = attrs.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def multiscale(name: str, paths: Sequence[str], pixel_size_um: float | None) -> dict[str, Any]:
    """One NGFF 0.5 ``multiscales`` entry for the levels ``paths`` (finest first)."""
    unit = {"unit": "micrometer"} if pixel_size_um is not None else {}
    step = pixel_size_um if pixel_size_um is not None else 1.0
    axes = [{"name": d, "type": "space", **unit} for d in VOLUME_DIMS]
    datasets = []
    for k, path in enumerate(paths):
        factor = 2.0**k
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": [step * factor] * 3}]
        if k:
            transforms.append({"type": "translation",
                               "translation": [step * (factor - 1) / 2] * 3})
        datasets.append({"path": path, "coordinateTransformations": transforms})
    return {"name": name, "axes": axes, "datasets": datasets,
            "type": "2x2x2 block mean",
            "metadata": {"method": "dask.array.coarsen(numpy.mean)"}}


def write_ngff(group_path: str, *, pyramid: bool = True) -> list[str]:
    """Write pyramids and the root ``ome`` attribute for every volume in the group.

    Returns the names of the volumes described (none: the group is left as it is).
    """
    group = zarr.open_group(group_path, mode="r+")
    names = volume_names(group)
    if not names:
        return []
    px = pixel_size_of(dict(group.attrs))
    entries = []
    for name in names:
        paths = write_pyramid(group_path, name) if pyramid else [name]
        entries.append(multiscale(name, paths, px))
    group.attrs["ome"] = {"version": NGFF_VERSION, "multiscales": entries}
    return names
