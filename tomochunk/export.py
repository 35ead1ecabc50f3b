"""Export a store's volume for the tools scientists segment in (Avizo/Amira, Dragonfly, Fiji,
ParaView): a TIFF stack, HDF5, NeXus or raw binary with a NRRD header.

Every format keeps the pixel size in the files' own metadata (ImageJ ``spacing`` and TIFF
resolution tags; HDF5 ``element_size_um``; NeXus ``x/y/z`` axes in µm; NRRD ``spacings``).
The volume is written slab by slab (the store's z chunks): TIFF slices and raw slabs are
written by the Dask task that computes them (chunk-parallel, any scheduler), HDF5 and NeXus
(one writer per file) receive one slab at a time while Dask computes it chunk-parallel, so
memory stays bounded by a few slabs whatever the volume size. The output is written under a
temporary sibling name and renamed into place when complete; an existing output is replaced
only with ``overwrite``.

``uint16`` maps ``[lo, hi]`` linearly onto ``0..65535`` (clipped, rounded) and records the
inverse (``value = offset + scale * stored``) next to the data.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .config import ExportConfig, replace
from .errors import ConfigError, InputError
from .io.atomic import remove_path, swap_into_place, temp_sibling
from .io.ngff import pixel_size_of
from .io.nxtomo import nexus_layout
from .io.store import check_output_path, open_store

__all__ = ["FORMATS", "Scaling", "parse_range", "export", "export_volume"]

log = logging.getLogger(__name__)

FORMATS = ("tiff", "hdf5", "nxtomo", "raw")
_SUFFIX = {"tiff": "", "hdf5": ".h5", "nxtomo": ".nxs", "raw": ""}
_U16 = 65535.0


@dataclass(frozen=True)
class Scaling:
    """How stored values map back to the volume's: ``value = offset + scale * stored``."""

    dtype: str
    offset: float = 0.0
    scale: float = 1.0

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Convert a float block to the output dtype."""
        if self.dtype == "float32":
            return np.asarray(block, dtype=np.float32)
        q = np.array(block, dtype=np.float32)  # a copy, transformed in place
        q -= np.float32(self.offset)
        q *= np.float32(1.0 / self.scale)
        np.rint(q, out=q)
        np.clip(q, 0, _U16, out=q)
        np.nan_to_num(q, copy=False, nan=0.0)
        return q.astype(np.uint16)

    def attrs(self) -> dict[str, Any]:
        return {"value_offset": self.offset, "value_scale": self.scale, "dtype": self.dtype}


def parse_range(text: str) -> tuple[float, float] | None:
    """``"auto"`` -> None; ``"lo,hi"`` -> (lo, hi) with lo < hi, else :class:`ConfigError`."""
    if text.strip().lower() == "auto":
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"--range must be 'auto' or 'lo,hi' (two numbers), got {text!r}") from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"--range needs finite lo < hi, got {text!r}")
    return lo, hi


def _check(cfg: ExportConfig) -> tuple[float, float] | None:
    if cfg.format not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {cfg.format!r}")
    if cfg.dtype not in ("float32", "uint16"):
        raise ConfigError(f"export dtype must be float32 or uint16, got {cfg.dtype!r}")
    return parse_range(cfg.range)


def _pick(ds: xr.Dataset, name: str | None, where: str) -> xr.DataArray:
    three_d = [str(k) for k, v in ds.data_vars.items() if v.ndim == 3]
    if name is None:
        vols = [k for k in three_d if ds[k].dims == ("z", "y", "x")]
        chosen = vols or [k for k in three_d if k == "projections"]
        if not chosen:
            raise InputError(f"{where} holds no 3-D volume to export (it has "
                             f"{', '.join(map(str, ds.data_vars))}); pass --variable")
        name = chosen[0]
    if name not in three_d:
        raise InputError(f"{where} has no 3-D variable {name!r}; choose one of "
                         f"{', '.join(three_d)}")
    return ds[name]


def _scaling(data: da.Array, dtype: str, rng: tuple[float, float] | None) -> Scaling:
    if dtype == "float32":
        return Scaling("float32")
    if rng is None:
        lo, hi = dask.compute(da.nanmin(data), da.nanmax(data))
        lo, hi = float(lo), float(hi)
        if not hi > lo:
            hi = lo + 1.0
        log.info("export range auto: [%g, %g]", lo, hi)
    else:
        lo, hi = rng
    return Scaling("uint16", lo, (hi - lo) / _U16)


def _slabs(data: da.Array) -> Iterator[tuple[int, da.Array]]:
    z0 = 0
    for c in data.chunks[0]:
        yield z0, data[z0 : z0 + c]
        z0 += c


# ----------------------------------------------------------------------------- writers


def _tiff_slab(block: np.ndarray, *, folder: str, stem: str, px: float | None,
               scaling: Scaling, block_info: Any = None) -> np.ndarray:
    import tifffile

    z0 = block_info[0]["array-location"][0][0]
    out = scaling.apply(block)
    meta: dict[str, Any] = {"axes": "YX"}
    kw: dict[str, Any] = {}
    if px is not None:
        meta.update(spacing=px, unit="um")
        kw["resolution"] = (1.0 / px, 1.0 / px)
    for i, img in enumerate(out):
        tifffile.imwrite(os.path.join(folder, f"{stem}_{z0 + i:05d}.tif"), img, imagej=True,
                         metadata=meta, **kw)
    return np.zeros((block.shape[0], 1, 1), dtype=np.int8)


def _write_tiff(tmp: Path, vol: xr.DataArray, data: da.Array, px: float | None,
                scaling: Scaling) -> None:
    from .runtime.progress import compute

    tmp.mkdir(parents=True)
    stem = str(vol.name)
    done = data.rechunk({1: -1, 2: -1}).map_blocks(
        _tiff_slab, folder=str(tmp), stem=stem, px=px, scaling=scaling,
        chunks=(data.chunks[0], (1,), (1,)), dtype=np.int8)
    compute(done, label=f"exporting {stem} to TIFF")
    (tmp / f"{stem}.json").write_text(json.dumps(_sidecar(vol, data, px, scaling), indent=2))


def _raw_slab(block: np.ndarray, *, file: str, shape: tuple[int, ...], scaling: Scaling,
              block_info: Any = None) -> np.ndarray:
    z0 = block_info[0]["array-location"][0][0]
    out = scaling.apply(block)
    mm = np.memmap(file, dtype=out.dtype.newbyteorder("<"), mode="r+", shape=shape)
    mm[z0 : z0 + out.shape[0]] = out
    mm.flush()
    del mm
    return np.zeros((block.shape[0], 1, 1), dtype=np.int8)


def _write_raw(tmp: Path, vol: xr.DataArray, data: da.Array, px: float | None,
               scaling: Scaling) -> None:
    from .runtime.progress import compute

    tmp.mkdir(parents=True)
    dtype = np.dtype(scaling.dtype).newbyteorder("<")
    shape = tuple(int(s) for s in data.shape)
    raw = tmp / "volume.raw"
    with open(raw, "wb") as f:  # sparse file of the final size; slabs fill it in place
        f.truncate(int(np.prod(shape)) * dtype.itemsize)
    done = data.rechunk({1: -1, 2: -1}).map_blocks(
        _raw_slab, file=str(raw), shape=shape, scaling=scaling,
        chunks=(data.chunks[0], (1,), (1,)), dtype=np.int8)
    compute(done, label=f"exporting {vol.name} to raw")
    nrrd_type = {"float32": "float", "uint16": "ushort"}[scaling.dtype]
    spacing = px if px is not None else 1.0
    header = [
        "NRRD0004",
        f"# {vol.name} exported by tomochunk; value = offset + scale * stored",
        f"type: {nrrd_type}",
        "dimension: 3",
        f"sizes: {shape[2]} {shape[1]} {shape[0]}",  # NRRD lists the fastest axis first
        f"spacings: {spacing} {spacing} {spacing}",
        "units: \"um\" \"um\" \"um\"" if px is not None else "# pixel size unknown",
        "encoding: raw",
        "endian: little",
        "data file: volume.raw",
    ]
    (tmp / "volume.nhdr").write_text("\n".join(header) + "\n")
    (tmp / "volume.json").write_text(json.dumps(_sidecar(vol, data, px, scaling), indent=2))


def _stream(data: da.Array, scaling: Scaling) -> Iterator[tuple[int, np.ndarray]]:
    """Slabs computed one ahead of the writer: at most two are held in memory."""
    from .runtime.client import current_client

    client = current_client()
    slabs = list(_slabs(data))
    if client is not None:
        pending = client.compute(slabs[0][1]) if slabs else None
        for i, (z0, _) in enumerate(slabs):
            assert pending is not None
            block = pending.result()
            pending = client.compute(slabs[i + 1][1]) if i + 1 < len(slabs) else None
            yield z0, scaling.apply(block)
        return
    for z0, slab in slabs:
        yield z0, scaling.apply(slab.compute())


def _write_hdf5(tmp: Path, vol: xr.DataArray, data: da.Array, px: float | None,
                scaling: Scaling, *, nexus: bool = False) -> None:
    import h5py

    shape = tuple(int(s) for s in data.shape)
    chunk_z = max(1, int(data.chunks[0][0]))
    with h5py.File(tmp, "w") as f:
        if nexus:
            dset = nexus_layout(f, vol, shape, chunk_z, px, scaling.dtype)
        else:
            dset = f.create_dataset("volume", shape=shape, dtype=scaling.dtype,
                                    chunks=(chunk_z, shape[1], shape[2]))
            if px is not None:
                dset.attrs["element_size_um"] = np.array([px, px, px])
                dset.attrs["pixel_size_um"] = px
        for key, value in _sidecar(vol, data, px, scaling).items():
            if value is not None and key != "attrs":
                dset.attrs[key] = value if not isinstance(value, list | dict) else json.dumps(value)
        for z0, block in _stream(data, scaling):
            dset[z0 : z0 + block.shape[0]] = block
        log.info("wrote %s (%s)", tmp.name, "x".join(map(str, shape)))


def _sidecar(vol: xr.DataArray, data: da.Array, px: float | None,
             scaling: Scaling) -> dict[str, Any]:
    return {"variable": str(vol.name), "shape": [int(s) for s in data.shape],
            "dims": [str(d) for d in vol.dims], "pixel_size_um": px,
            "units": vol.attrs.get("units"), **scaling.attrs()}


# ----------------------------------------------------------------------------- API


def _atomic_output(path: Path, overwrite: bool, write: Any) -> None:
    tmp = temp_sibling(path)
    try:
        write(tmp)
        swap_into_place(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def export_volume(vol: xr.DataArray, out: str | os.PathLike[str], *, fmt: str = "tiff",
                  dtype: str = "float32", value_range: tuple[float, float] | None = None,
                  pixel_size_um: float | None = None, overwrite: bool = False) -> Path:
    """Export one (lazy) 3-D DataArray; see :func:`export` for the store-level API."""
    path = check_output_path(out, overwrite)
    data = vol.data if isinstance(vol.data, da.Array) else da.from_array(np.asarray(vol.data))
    data = data.rechunk({1: -1, 2: -1})
    scaling = _scaling(data, dtype, value_range)
    log.info("exporting %s %s as %s %s to %s", vol.name, "x".join(map(str, data.shape)),
             fmt, dtype, path)
    writers = {
        "tiff": lambda tmp: _write_tiff(tmp, vol, data, pixel_size_um, scaling),
        "raw": lambda tmp: _write_raw(tmp, vol, data, pixel_size_um, scaling),
        "hdf5": lambda tmp: _write_hdf5(tmp, vol, data, pixel_size_um, scaling),
        "nxtomo": lambda tmp: _write_hdf5(tmp, vol, data, pixel_size_um, scaling, nexus=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_output(path, overwrite, writers[fmt])
    return path


def default_output(store: str | os.PathLike[str], fmt: str) -> Path:
    """``recon.zarr`` -> ``recon.tiff`` / ``recon.h5`` / ``recon.nxs`` / ``recon.raw``."""
    p = Path(store)
    stem = p.name[: -len(".zarr")] if p.name.endswith(".zarr") else p.name
    suffix = _SUFFIX[fmt] or f".{fmt}"
    return p.with_name(stem + suffix)


def export(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    config: ExportConfig | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> Any:
    """Export a store's volume to TIFF, HDF5, NeXus or raw files, chunk-parallel.

    Parameters
    ----------
    store : path
        A complete tomochunk store (``recon.zarr``, ``denoised.zarr``, ``median.zarr``,
        ``scan.zarr``, ...).
    out : path, optional
        Output file (hdf5, nxtomo) or folder (tiff, raw); default next to the store
        (:func:`default_output`).
    config : ExportConfig, optional
        ``format``, ``dtype``, ``range``, ``variable``; ``overrides`` apply on top.
    overwrite : bool
        Replace an existing output (only once the new one is complete).
    storage_options : dict, optional
        fsspec options when ``store`` or ``out`` is a URL (``s3://...``). A URL output is
        written locally first and then uploaded: an HDF5/NeXus file in one PUT, a TIFF or raw
        folder with its sidecar ``.json`` last (a folder without it is incomplete).

    Returns
    -------
    pathlib.Path or str
        The written file or folder (the URL for a URL output).

    Raises
    ------
    ConfigError, InputError, OutputExistsError, IncompleteStoreError
        Before any work: bad settings, no such variable, an existing output, an incomplete
        store.
    """
    cfg = replace(config or ExportConfig(), **overrides)
    rng = _check(cfg)
    from .io.urls import is_url

    if out is None and is_url(store):
        raise ConfigError(f"exporting the remote store {store} needs an --out path or URL")
    if out is not None and is_url(out):
        return _export_to_url(store, os.fspath(out), cfg, rng, overwrite, storage_options)
    path = Path(out) if out is not None else default_output(store, cfg.format)
    check_output_path(path, overwrite)
    ds = open_store(store, what="store", storage_options=storage_options)
    vol = _pick(ds, cfg.variable, str(store))
    px = pixel_size_of(dict(ds.attrs))
    return export_volume(vol, path, fmt=cfg.format, dtype=cfg.dtype, value_range=rng,
                         pixel_size_um=px, overwrite=overwrite)


def _export_to_url(store: Any, url: str, cfg: ExportConfig, rng: tuple[float, float] | None,
                   overwrite: bool, storage_options: dict[str, Any] | None) -> str:
    """:func:`export` to an fsspec URL: written in a staging folder, then uploaded with the
    sidecar JSON last; an existing output is removed only once the new one is built."""
    from .io.urls import basename, filesystem, publish, remove, staging_dir

    check_output_path(url, overwrite, storage_options)
    ds = open_store(store, what="store", storage_options=storage_options)
    vol = _pick(ds, cfg.variable, str(store))
    with staging_dir(url) as tmp:
        tmp.mkdir(parents=True)
        local = export_volume(vol, tmp / basename(url), fmt=cfg.format, dtype=cfg.dtype,
                              value_range=rng, pixel_size_um=pixel_size_of(dict(ds.attrs)))
        remove(url, storage_options)
        if local.is_dir():  # the sidecar JSON is the folder's completion marker
            publish(local, url, storage_options, is_marker=lambda p: p.suffix == ".json")
        else:
            fs, root = filesystem(url, storage_options)
            fs.put_file(str(local), root)
    log.info("uploaded the export to %s", url)
    return url
