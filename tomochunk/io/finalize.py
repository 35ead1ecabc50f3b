"""The last metadata steps of every store write: data variables, units, NGFF, consolidation.

:func:`finalize_store` runs on the temporary store just before :func:`atomic_store` marks it
complete, so these steps are as atomic as the rest of the write:

1. **Data variables, not coordinates.** xarray makes any variable named like one of its
   dimensions (``split(split, z, y, x)``, ``flat(flat, row, col)``, ``dark(dark, row, col)``)
   a coordinate. On disk that dimension is therefore named ``<name>_index``
   (:data:`INDEX_SUFFIX`), so ``xarray.open_zarr`` lists the arrays as data variables;
   :func:`tomochunk.io.store.open_store` renames it back, which the in-memory API relies on.
2. **Units** on every volume: ``linear attenuation per pixel`` (with ``pixel_size_um`` on the
   variable when it is known: divide by it for 1/µm); ``counts`` on the raw frames.
3. **NGFF 0.5** multiscale metadata and pyramids (:mod:`tomochunk.io.ngff`).
4. The root attributes (the completion attribute among them) and **consolidated metadata**,
   written last in one root ``zarr.json``, so ``xarray.open_zarr`` opens the store without a
   warning.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

from .ngff import pixel_size_of, write_ngff

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["INDEX_SUFFIX", "VOLUME_UNITS", "index_dims_on_disk", "add_units", "consolidate",
           "finalize_store", "restore_index_dims"]

log = logging.getLogger(__name__)

INDEX_SUFFIX = "_index"
VOLUME_UNITS = "linear attenuation per pixel"
_RAW = ("projections", "flat", "dark")


def _array_meta_files(path: Path) -> list[Path]:
    return [p for p in sorted(path.glob("*/zarr.json"))
            if json.loads(p.read_text()).get("node_type") == "array"]


def index_dims_on_disk(path: str | Path) -> dict[str, str]:
    """Rename on disk each dimension that shares its name with a multi-dimensional array.

    Returns ``{old: new}`` for the dimensions renamed (metadata only, no data is touched).
    """
    path = Path(path)
    metas = {p.parent.name: (p, json.loads(p.read_text())) for p in _array_meta_files(path)}
    clash = {name for name, (_, m) in metas.items()
             if len(m.get("shape", ())) > 1 and name in (m.get("dimension_names") or ())}
    renames = {d: d + INDEX_SUFFIX for d in sorted(clash)}
    if not renames:
        return {}
    _drop_coordinate_links(path / "zarr.json", clash)
    for p, _ in metas.values():
        _drop_coordinate_links(p, clash)
    metas = {p.parent.name: (p, json.loads(p.read_text())) for p in _array_meta_files(path)}
    for p, meta in metas.values():
        dims = meta.get("dimension_names")
        if dims and any(d in renames for d in dims):
            meta["dimension_names"] = [renames.get(d, d) for d in dims]
            p.write_text(json.dumps(meta, indent=2))
    return renames


def _drop_coordinate_links(meta_file: Path, names: set[str]) -> None:
    """Remove ``names`` from xarray's ``coordinates`` attribute in one ``zarr.json``."""
    meta = json.loads(meta_file.read_text())
    attrs = meta.get("attributes") or {}
    coords = str(attrs.get("coordinates", "")).split()
    if not set(coords) & names:
        return
    kept = [c for c in coords if c not in names]
    if kept:
        attrs["coordinates"] = " ".join(kept)
    else:
        attrs.pop("coordinates")
    meta_file.write_text(json.dumps(meta, indent=2))


def restore_index_dims(ds: xr.Dataset) -> xr.Dataset:
    """Rename ``<name>_index`` dimensions of an opened dataset back to ``<name>``."""
    import xarray as xr

    renames = {str(d): str(d)[: -len(INDEX_SUFFIX)] for d in ds.dims
               if str(d).endswith(INDEX_SUFFIX) and str(d)[: -len(INDEX_SUFFIX)] in ds.variables}
    if not renames:
        return ds

    def fix(v: xr.Variable) -> xr.Variable:
        out = xr.Variable(tuple(renames.get(str(d), d) for d in v.dims), v.data, v.attrs)
        out.encoding = dict(v.encoding)
        return out

    variables = {k: fix(v) for k, v in ds.variables.items()}
    coords = [k for k in ds.coords]
    data = {k: v for k, v in variables.items() if k not in coords and k not in renames.values()}
    coord_vars = {k: v for k, v in variables.items() if k in coords or k in renames.values()}
    return xr.Dataset(data, coords=coord_vars, attrs=ds.attrs)


def add_units(path: str | Path, pixel_size_um: float | None) -> list[str]:
    """Give every float volume without ``units`` the attenuation units; return their names."""
    group = zarr.open_group(str(path), mode="r+")
    done = []
    for name, arr in group.arrays():
        dims = tuple(getattr(arr.metadata, "dimension_names", None) or ())
        if "units" in arr.attrs:
            continue
        if arr.dtype.kind == "f" and dims[-3:] == ("z", "y", "x"):
            extra: dict[str, Any] = {"units": VOLUME_UNITS}
            if pixel_size_um is not None:
                extra["pixel_size_um"] = pixel_size_um
            arr.attrs.update(extra)
            done.append(name)
        elif name in _RAW:
            arr.attrs.update({"units": "counts"})
            done.append(name)
    return done


def consolidate(path: str | Path) -> None:
    """Write Zarr v3 consolidated metadata into the root ``zarr.json``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))


def finalize_store(path: str | Path, attrs: Mapping[str, Any], *, pyramid: bool = True,
                   before_complete: Callable[[Path], Any] | None = None) -> None:
    """Run the steps of the module docstring on the (temporary) store ``path``.

    ``before_complete(path)`` runs after every array is written (pyramid included) and before
    the completion flag is set: the chunk manifest (:mod:`tomochunk.io.manifest`).
    """
    path = Path(path)
    group = zarr.open_group(str(path), mode="r+")
    complete = {k: v for k, v in attrs.items() if k == "tomochunk_complete"}
    group.attrs.update({k: v for k, v in attrs.items() if k not in complete})
    renamed = index_dims_on_disk(path)
    if renamed:
        log.debug("dimensions stored as %s", renamed)
    px = pixel_size_of(dict(group.attrs))
    add_units(path, px)
    write_ngff(str(path), pyramid=pyramid)
    if before_complete is not None:
        before_complete(path)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs.update(complete)
    consolidate(path)
