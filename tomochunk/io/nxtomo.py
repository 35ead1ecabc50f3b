"""The NeXus layout (NXtomo / NXtomoproc) that ``tomochunk export --format nxtomo`` writes."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["nexus_layout"]


def nexus_layout(f: Any, vol: xr.DataArray, shape: tuple[int, ...], chunk_z: int,
                 px: float | None, dtype: Any) -> Any:
    """Create the NeXus groups of an export; return the empty ``data`` dataset to fill.

    NXtomo for the projections of a scan store, NXtomoproc for a reconstructed volume; the
    axes in µm when the pixel size ``px`` is known.

    Parameters
    ----------
    f : h5py.File
        The open output file.
    vol : xarray.DataArray
        The exported variable (its name and ``theta`` coordinate decide the layout).
    shape : tuple of int
        The data's shape, z (or angle) first.
    chunk_z : int
        HDF5 chunk along the first axis.
    px : float or None
        Pixel size in µm.
    dtype : dtype
        The stored type.

    Returns
    -------
    h5py.Dataset
    """
    entry = f.create_group("entry")
    entry.attrs["NX_class"] = "NXentry"
    step = px if px is not None else 1.0
    unit = "um" if px is not None else "pixel"
    if vol.name == "projections":
        entry.create_dataset("definition", data="NXtomo")
        det = entry.create_group("instrument").create_group("detector")
        f["entry/instrument"].attrs["NX_class"] = "NXinstrument"
        det.attrs["NX_class"] = "NXdetector"
        dset = det.create_dataset("data", shape=shape, dtype=dtype,
                                  chunks=(chunk_z, shape[1], shape[2]))
        det.create_dataset("image_key", data=np.zeros(shape[0], dtype=np.int32))
        if px is not None:
            det.create_dataset("x_pixel_size", data=px).attrs["units"] = "um"
            det.create_dataset("y_pixel_size", data=px).attrs["units"] = "um"
        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        if "theta" in vol.coords:
            theta = np.degrees(np.asarray(vol.coords["theta"].values, dtype=np.float64))
            sample.create_dataset("rotation_angle", data=theta).attrs["units"] = "degree"
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "data"})
        data["data"] = dset
        return dset
    entry.create_dataset("definition", data="NXtomoproc")
    data = entry.create_group("data")
    data.attrs.update({"NX_class": "NXdata", "signal": "data", "axes": ["z", "y", "x"]})
    dset = data.create_dataset("data", shape=shape, dtype=dtype,
                               chunks=(chunk_z, shape[1], shape[2]))
    for i, axis in enumerate("zyx"):
        data.create_dataset(axis, data=np.arange(shape[i]) * step).attrs["units"] = unit
        data.attrs[f"{axis}_indices"] = i
    if px is not None:
        dset.attrs["element_size_um"] = np.array([px, px, px])
        dset.attrs["pixel_size_um"] = px
    return dset
