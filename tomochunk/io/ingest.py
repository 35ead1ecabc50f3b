"""Ingest a raw scan into ``scan.zarr``, streaming by blocks of detector rows.

The store follows the contract of ``docs/architecture.md``: ``projections(angle,row,col)`` in the
input dtype (raw counts), ``flat(flat,row,col)`` and ``dark(dark,row,col)`` when the scan has
them, the coordinate ``theta(angle)`` in radians (float64), and the root attributes
``source``, ``source_format``, ``n_angles``, ``normalized`` (True when the scan has neither
flats nor darks, so its projections are taken as already flat-field corrected) and
``pixel_size_um`` when known. Every array is chunked by blocks of ``rows_per_chunk``
detector rows holding all angles and all columns, so one sinogram block is one chunk read.

Memory stays bounded whatever the size of the scan: a reader serves rows ``r0:r1`` of every
stack and the block is written into the store at that region before the next one is read;
the block height is the largest multiple of ``rows_per_chunk`` within ``read_block_mb``.
The store is written under a temporary name and renamed when complete
(:func:`tomochunk.io.store.atomic_store`), so an error leaves nothing behind and never
touches an existing store.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..config import IngestConfig, replace
from ..errors import ConfigError, InputError
from ..runtime.logs import get_logger
from .dxchange import HDF5_SUFFIXES
from .readers import (
    READERS,
    ArraySpec,
    ScanLayout,
    ScanReader,
    _as_stack,
    angles_to_radians,
    hdf5_listing,
    open_hdf5,
)
from .scan_check import ScanCheck, validate_scan
from .scan_writer import (
    DIMS,
    _copy_rows,
    _create_arrays,
    _log_layout,
    _rows_per_read,
    _store_attrs,
)
from .store import atomic_store, check_output_path, open_scan, open_store
from .urls import basename, exists, fetch, is_url, join, staging_dir
from .values import ValueStats, check_dtype, check_transmission

__all__ = ["ingest", "from_arrays", "open_reader", "detect_format", "validate_scan",
           "ScanCheck", "check_values_without_flats"]

log = get_logger("io.ingest")

# ---------------------------------------------------------------------------------------
# choosing a reader


def detect_format(source: Any) -> str:
    """The reader name for ``source`` (``--format auto``).

    An :class:`xarray.Dataset` is ``xarray``; a path is tried against each registered
    reader's ``sniff`` in priority order: NeXus NXtomo, DXchange, TIFF folder/stack, ``.npy``.

    Raises
    ------
    InputError
        When the path does not exist or matches no format (the message lists the formats).
    """
    if isinstance(source, xr.Dataset):
        return "xarray"
    path = Path(source)
    if not path.exists():
        raise InputError(f"input {path} does not exist; check the path")
    readers = sorted((READERS.get(n) for n in READERS.names()), key=lambda r: r.priority)
    for reader in readers:
        if reader.sniff(path):
            return reader.format
    if path.is_file() and path.suffix.lower() in HDF5_SUFFIXES:
        with open_hdf5(path) as h5:
            listing = hdf5_listing(h5)
        raise InputError(
            f"{path} is an HDF5 file with neither a NeXus NXtomo entry nor the DXchange dataset "
            f"/exchange/data; it holds: {listing}. tomochunk reads DXchange and NXtomo files "
            "(datasets at other paths: --format dxchange --set ingest.dxchange.data=PATH, or "
            "--format nexus --set ingest.nexus.entry=PATH)"
        )
    raise InputError(
        f"cannot tell the format of {path} (suffix {path.suffix!r}); tomochunk reads DXchange "
        "or NeXus HDF5 (.h5, .hdf5, .nxs), a folder of TIFFs or a .tif stack, and .npy "
        "projections (with --angles). Give --format if the suffix is unusual"
    )


def open_reader(source: Any, config: IngestConfig | None = None,
                storage_options: Mapping[str, Any] | None = None) -> ScanReader:
    """Open ``source`` with the reader chosen by ``config.format`` (validates cheaply).

    A URL ``source`` must be a Zarr scan store (read with ``storage_options``); see
    :func:`local_source` for remote files.
    """
    cfg = config or IngestConfig()
    if is_url(source):
        if not exists(join(source, "zarr.json"), storage_options):
            raise InputError(f"input {source} is not a Zarr scan store; remote raw files are "
                             "read through tomochunk.io.ingest.local_source")
        ds = open_store(source, required=("projections", "theta"), what="scan store",
                        storage_options=storage_options)
        return READERS.get("xarray")(ds, cfg)
    if isinstance(source, xr.Dataset):
        if cfg.format not in ("auto", "numpy"):
            raise ConfigError(f"format {cfg.format!r} does not apply to an in-memory dataset; "
                              "use format='auto'")
        return READERS.get("xarray")(source, cfg)
    if not isinstance(source, str | os.PathLike):
        raise InputError(
            f"cannot ingest a {type(source).__name__}; give a path or an xarray.Dataset "
            "(build one from arrays with tomochunk.from_arrays(projections, theta, flat, dark))"
        )
    path = Path(source)
    if not path.exists():
        raise InputError(f"input {path} does not exist; check the path")
    if cfg.format == "auto" and path.is_dir() and (path / "zarr.json").is_file():
        # an existing scan store (e.g. to re-chunk it): stream it like an in-memory dataset
        ds = open_store(path, required=("projections", "theta"), what="scan store")
        return READERS.get("xarray")(ds, cfg)
    name = detect_format(path) if cfg.format == "auto" else cfg.format
    log.debug("reading %s as %s", path, name)
    return READERS.get(name)(path, cfg)


# ---------------------------------------------------------------------------------------
# in-memory scans


def from_arrays(
    projections: Any,
    theta: Any,
    flat: Any = None,
    dark: Any = None,
    *,
    theta_unit: str = "rad",
    pixel_size_um: float | None = None,
    source: str = "numpy",
) -> xr.Dataset:
    """Build a scan dataset (the ``scan.zarr`` layout, in memory) from arrays.

    Parameters
    ----------
    projections : array-like, shape (angle, row, col)
        Raw counts (or normalised transmission when there are no flats/darks). Numpy or
        Dask arrays; Dask arrays stay lazy.
    theta : array-like, shape (angle,)
        One strictly monotonic angle per projection.
    flat, dark : array-like, optional
        Flat / dark fields, ``(frames, row, col)`` or a single ``(row, col)`` image.
    theta_unit : {"rad", "deg", "auto"}
        Unit of ``theta``; ``auto`` means degrees when the angles span more than 2*pi.
    pixel_size_um : float, optional
        Detector pixel size in micrometres.
    source : str
        Recorded as the ``source`` attribute.

    Returns
    -------
    xarray.Dataset
        ``projections(angle,row,col)``, ``flat``/``dark`` when given, coordinate
        ``theta(angle)`` in radians, attributes ``source``, ``n_angles``, ``normalized`` and
        ``pixel_size_um`` (when given). Pass it to :func:`ingest` to write ``scan.zarr``.

    Raises
    ------
    InputError
        On shapes that do not fit or angles that are not finite and strictly monotonic.
    """
    if theta_unit not in ("rad", "deg", "auto"):
        raise ConfigError(f"theta_unit must be 'rad', 'deg' or 'auto', got {theta_unit!r}")
    proj = _array(projections)
    if proj.ndim != 3:
        raise InputError(f"projections must be 3-D (angle, row, col), got shape {proj.shape}")
    stacks = {"projections": proj}
    for name, arr in (("flat", flat), ("dark", dark)):
        if arr is not None:
            stacks[name] = _as_stack(_array(arr), name, "from_arrays")
    rad = angles_to_radians(np.asarray(theta), unit=theta_unit, what="theta")
    layout = ScanLayout(
        projections=_spec(proj),
        theta=rad,
        flat=_spec(stacks["flat"]) if "flat" in stacks else None,
        dark=_spec(stacks["dark"]) if "dark" in stacks else None,
        source=source,
    )
    layout.validate()
    attrs: dict[str, Any] = {"source": source, "source_format": "numpy",
                             "n_angles": int(proj.shape[0]), "normalized": layout.normalized}
    if pixel_size_um is not None:
        attrs["pixel_size_um"] = float(pixel_size_um)
    data_vars = {name: (DIMS[name], arr) for name, arr in stacks.items()}
    coords = {"theta": ("angle", layout.theta, {"units": "rad"})}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _array(x: Any) -> Any:
    if isinstance(x, xr.DataArray):
        x = x.data
    if hasattr(x, "ndim") and hasattr(x, "dtype") and hasattr(x, "shape"):
        return x
    return np.asarray(x)


def _spec(arr: Any) -> ArraySpec:
    return ArraySpec(tuple(int(s) for s in arr.shape), np.dtype(arr.dtype))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# ingest


def ingest(
    source: Any,
    out: str | os.PathLike[str],
    *,
    config: IngestConfig | None = None,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> xr.Dataset:
    """Read a raw scan into ``scan.zarr`` block by block of detector rows.

    Parameters
    ----------
    source : path or xarray.Dataset
        A DXchange HDF5 file, a NeXus NXtomo file, a folder of TIFFs (or a multi-page TIFF),
        a ``.npy`` of projections (angles from ``angles=``), an existing ``scan.zarr`` (to
        re-chunk it), or a dataset built by :func:`from_arrays`.
    out : path
        The ``scan.zarr`` store to write.

        ``source`` and ``out`` may be fsspec URLs (``s3://bucket/scan.h5``), opened with
        ``storage_options``: a remote Zarr scan store is streamed, a remote file or folder is
        first downloaded into a local staging folder (``TMPDIR``) and removed afterwards.
    config : IngestConfig, optional
        Reader options; ``overrides`` are IngestConfig fields that replace its values
        (``rows_per_chunk=16``, ``angles="angles.txt"``, ...).
    overwrite : bool
        Replace an existing store (only once the new one is complete).

    Returns
    -------
    xarray.Dataset
        The written store opened lazily (:func:`tomochunk.io.store.open_scan`).

    Raises
    ------
    OutputExistsError
        When ``out`` exists and ``overwrite`` is false (checked before any work).
    InputError
        When the input is missing, of an unknown format, lacks datasets, or has angles or
        flats/darks that do not fit; nothing is written.

    Examples
    --------
    >>> scan = ingest("tooth.h5", "scan.zarr")                      # doctest: +SKIP
    >>> scan.projections.dims, scan.theta.attrs["units"]             # doctest: +SKIP
    (('angle', 'row', 'col'), 'rad')
    """
    cfg = _checked_config(config, overrides)
    out = _checked_output(source, out, overwrite, storage_options)
    t0 = time.perf_counter()
    with local_source(source, storage_options) as src, \
            open_reader(src, cfg, storage_options) as reader:
        layout = reader.layout
        if src is not source:
            layout.source = os.fspath(source)  # the URL, not the staged copy
        check_dtype(layout.projections.dtype, layout.source)
        check_values_without_flats(reader, cfg)  # raw counts without flats: refused here
        step = _rows_per_read(reader.row_bytes(), cfg)
        _log_layout(layout, out)
        with atomic_store(out, overwrite=overwrite, attrs=_store_attrs(layout),
                          storage_options=storage_options) as tmp:
            arrays = _create_arrays(tmp, layout, cfg.rows_per_chunk)
            stats = ValueStats()
            n_blocks = _copy_rows(reader, arrays, step, label=f"ingest {basename(out)}",
                                  stats=stats)
            stats.check(layout.source, layout.normalized)
    nbytes = sum(int(np.prod(s.shape)) * s.dtype.itemsize for s in layout.variables().values())
    dt = time.perf_counter() - t0
    log.info("ingested %s -> %s: %.1f MB in %.1f s (%.0f MB/s, %d block(s) of <= %d rows)",
             layout.source, out, nbytes / 1e6, dt, nbytes / 1e6 / max(dt, 1e-9), n_blocks,
             min(step, layout.n_rows))
    return open_scan(out, storage_options)


def _checked_config(config: IngestConfig | None, overrides: Mapping[str, Any]) -> IngestConfig:
    """The ingest configuration with ``overrides`` applied, its block sizes checked."""
    cfg = replace(config or IngestConfig(), **overrides)
    if cfg.rows_per_chunk < 1:
        raise ConfigError(f"rows_per_chunk must be >= 1, got {cfg.rows_per_chunk}")
    if not cfg.read_block_mb > 0:
        raise ConfigError(f"read_block_mb must be > 0, got {cfg.read_block_mb}")
    return cfg


def _checked_output(source: Any, out: str | os.PathLike[str], overwrite: bool,
                    storage_options: Mapping[str, Any] | None) -> Any:
    """``out`` checked (:func:`~tomochunk.io.store.check_output_path`), never the input."""
    out = check_output_path(out, overwrite, storage_options)
    if (isinstance(source, str | os.PathLike) and not is_url(source) and not is_url(out)
            and Path(source).resolve() == Path(out).resolve()):
        raise InputError(f"input and output are the same path {out}; choose another output")
    return out


@contextlib.contextmanager
def local_source(source: Any, storage_options: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """``source``, or for a URL of a file or folder that is not a Zarr store, a local copy.

    The copy lies in a staging folder (:func:`tomochunk.io.urls.staging_dir`) removed on
    exit. A remote Zarr scan store is returned unchanged (it is read in place).
    """
    if not is_url(source) or exists(join(source, "zarr.json"), storage_options):
        yield source
        return
    with staging_dir(os.fspath(source)) as tmp:
        tmp.mkdir(parents=True)
        log.info("downloading %s to %s", source, tmp)
        yield fetch(os.fspath(source), tmp, storage_options)


def check_values_without_flats(reader: ScanReader, cfg: IngestConfig, *,
                               warn: bool = True) -> None:
    """Without flats or darks, refuse projections that look like raw counts.

    Reads the middle detector row at every angle (one row: cheap, and through the object)
    and applies :func:`tomochunk.io.values.check_transmission`; a scan with flats or darks
    is not read at all.

    Raises
    ------
    InputError
        The sample looks like raw counts and ``cfg.assume_transmission`` is false.
    """
    layout = reader.layout
    if not layout.normalized:
        return
    mid = layout.n_rows // 2
    try:
        sample = reader.read_rows(mid, mid + 1)["projections"]
    except OSError as exc:
        raise InputError(f"{layout.source}: reading detector row {mid} failed ({exc}); the "
                         "file may be damaged or truncated") from exc
    check_transmission(sample, layout.source, assume=cfg.assume_transmission, warn=warn)
