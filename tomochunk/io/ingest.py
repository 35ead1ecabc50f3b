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
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from ..config import IngestConfig, replace
from ..errors import ConfigError, InputError
from ..runtime.logs import get_logger
from ..runtime.progress import tqdm
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
from .store import atomic_store, check_output_path, open_scan, open_store
from .urls import basename, exists, fetch, is_url, join, staging_dir
from .values import ValueStats, check_dtype, check_transmission

__all__ = ["ingest", "from_arrays", "open_reader", "detect_format", "validate_scan",
           "ScanCheck", "check_values_without_flats"]

log = get_logger("io.ingest")

DIMS = {"projections": ("angle", "row", "col"), "flat": ("flat", "row", "col"),
        "dark": ("dark", "row", "col")}


def _compressors() -> list[Any]:
    # bit-shuffled zstd: raw detector counts compress well and decode fast
    return [BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)]


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
            f"/exchange/data; it holds: {listing}. tomochunk reads DXchange and NXtomo files"
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
    cfg = replace(config or IngestConfig(), **overrides)
    if cfg.rows_per_chunk < 1:
        raise ConfigError(f"rows_per_chunk must be >= 1, got {cfg.rows_per_chunk}")
    if not cfg.read_block_mb > 0:
        raise ConfigError(f"read_block_mb must be > 0, got {cfg.read_block_mb}")
    out = check_output_path(out, overwrite, storage_options)
    if (isinstance(source, str | os.PathLike) and not is_url(source) and not is_url(out)
            and Path(source).resolve() == Path(out).resolve()):
        raise InputError(f"input and output are the same path {out}; choose another output")
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
        if layout.pixel_size_um is None:
            log.warning("%s: pixel size unknown; lengths (report axes, FRC resolution) are "
                        "given in pixels: pass --pixel-size-um to get physical units",
                        layout.source)
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


def _copy_rows(reader: ScanReader, arrays: dict[str, Any], step: int, label: str,
               stats: ValueStats | None = None) -> int:
    """Copy the scan into the store ``step`` rows at a time; return the number of blocks."""
    layout = reader.layout
    rows = arrays["projections"].chunks[1]
    blocks = [(r, min(r + step, layout.n_rows)) for r in range(0, layout.n_rows, step)]
    for r0, r1 in tqdm(blocks, desc=label, unit="block"):
        try:
            block = reader.read_rows(r0, r1)
        except OSError as exc:
            raise InputError(f"{layout.source}: reading detector rows {r0}:{r1} failed ({exc}); "
                             "the file may be damaged or truncated") from exc
        for name, arr in arrays.items():
            data = block[name]
            expected = (arr.shape[0], r1 - r0, arr.shape[2])
            if data.shape != expected:
                raise InputError(f"{layout.source}: rows {r0}:{r1} of {name} read as shape "
                                 f"{data.shape}, expected {expected}; is the file damaged?")
            if name == "projections" and stats is not None:
                stats.update(data)
            # chunk by chunk: zarr then encodes one chunk-sized copy at a time
            for c0 in range(0, r1 - r0, rows):
                arr[:, r0 + c0:min(r0 + c0 + rows, r1), :] = data[:, c0:c0 + rows, :]
        del block
    return len(blocks)


def _rows_per_read(row_bytes: int, cfg: IngestConfig) -> int:
    """The largest multiple of ``rows_per_chunk`` whose block fits ``read_block_mb``."""
    budget = cfg.read_block_mb * 2**20
    chunk_bytes = row_bytes * cfg.rows_per_chunk
    if chunk_bytes > budget:
        log.warning("one chunk of %d rows needs %.3g MiB, more than read_block_mb=%g; lower "
                    "--rows-per-chunk to bound memory", cfg.rows_per_chunk, chunk_bytes / 2**20,
                    cfg.read_block_mb)
    return cfg.rows_per_chunk * max(1, int(budget // max(chunk_bytes, 1)))


def _store_attrs(layout: ScanLayout) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(layout.attrs)
    attrs.update(source=layout.source, source_format=layout.format,
                 n_angles=layout.n_angles, normalized=layout.normalized)
    if layout.pixel_size_um is not None:
        attrs["pixel_size_um"] = float(layout.pixel_size_um)
    return attrs


def _create_arrays(tmp: Path, layout: ScanLayout, rows_per_chunk: int) -> dict[str, Any]:
    """Create the empty store: the stacks chunked by rows, and the theta coordinate."""
    group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    rows = min(rows_per_chunk, layout.n_rows)
    arrays = {}
    for name, spec in layout.variables().items():
        arr = group.create_array(
            name, shape=spec.shape, chunks=(spec.shape[0], rows, spec.shape[2]),
            dtype=spec.dtype, dimension_names=list(DIMS[name]), compressors=_compressors(),
            fill_value=0,
        )
        if name == "projections":
            arr.attrs["coordinates"] = "theta"
        arrays[name] = arr
    theta = group.create_array("theta", shape=(layout.n_angles,), chunks=(layout.n_angles,),
                               dtype="float64", dimension_names=["angle"], fill_value=0.0)
    theta[:] = layout.theta
    theta.attrs.update(units="rad", long_name="rotation angle of each projection")
    return arrays


def _log_layout(layout: ScanLayout, out: Any) -> None:
    deg = np.rad2deg(layout.theta)
    parts = [f"projections {layout.projections.shape} {layout.projections.dtype}"]
    for name in ("flat", "dark"):
        spec = getattr(layout, name)
        parts.append(f"{name} {spec.shape} {spec.dtype}" if spec else f"no {name}")
    log.info("%s (%s): %s; theta %.4g..%.4g deg -> %s", layout.source, layout.format,
             ", ".join(parts), deg[0], deg[-1], out)


# ---------------------------------------------------------------------------------------
# validation for later stages


@dataclass
class ScanCheck:
    """Result of :func:`validate_scan`.

    Attributes
    ----------
    n_angles : int
    has_flat : bool
        Whether the scan has flat fields (the flat-dark check ran).
    n_bad_pixels : int
        Pixels where mean flat minus mean dark is zero, negative or not finite.
    bad_fraction : float
        ``n_bad_pixels`` over the pixels of one frame.
    bad_pixels : list of (row, col)
        Up to ten of them (e.g. a header pixel at ``(0, 0)``).
    """

    n_angles: int
    has_flat: bool
    n_bad_pixels: int = 0
    bad_fraction: float = 0.0
    bad_pixels: list[tuple[int, int]] = field(default_factory=list)


def validate_scan(
    ds: xr.Dataset | str | os.PathLike[str],
    n_splits: int | None = None,
    *,
    max_bad_fraction: float = 0.01,
) -> ScanCheck:
    """Cheap checks of a scan before normalisation and splitting.

    Parameters
    ----------
    ds : xarray.Dataset or path
        A scan dataset (:func:`tomochunk.io.store.open_scan`) or the path of ``scan.zarr``.
    n_splits : int, optional
        When given, the number of projections must be divisible by it, so that the
        interleaved subsets of Noise2Inverse (projection i goes to subset i mod K; Hendriksen
        et al., IEEE Trans. Comput. Imaging 6 (2020) 1320-1335) all have the same number of
        angles.
    max_bad_fraction : float
        Largest tolerated fraction of pixels where mean flat <= mean dark; isolated dead or
        header pixels (like pixel [0, 0] of Diamond TIFFs) below it only warn.

    Returns
    -------
    ScanCheck

    Raises
    ------
    InputError
        When the number of projections is not divisible by ``n_splits``, or flat minus dark
        is zero, negative or not finite in more than ``max_bad_fraction`` of the pixels.
    """
    if not isinstance(ds, xr.Dataset):
        ds = open_scan(ds)
    n = int(ds.sizes["angle"])
    if n_splits is not None:
        if n_splits < 1:
            raise ConfigError(f"n_splits must be >= 1, got {n_splits}")
        if n % n_splits:
            raise InputError(
                f"the scan has {n} projections, which is not divisible by {n_splits} splits: the "
                f"interleaved subsets would get different numbers of angles; drop "
                f"{n % n_splits} projection(s) (e.g. the last) or choose a number of splits "
                f"that divides {n}"
            )
    if "flat" not in ds.variables:
        return ScanCheck(n_angles=n, has_flat=False)
    flat = ds["flat"].astype("float64").mean("flat")
    dark = ds["dark"].astype("float64").mean("dark") if "dark" in ds.variables else 0.0
    diff = np.asarray((flat - dark).values)
    bad = ~(diff > 0)  # also catches NaN
    n_bad = int(bad.sum())
    frac = n_bad / bad.size
    where = [(int(r), int(c)) for r, c in np.argwhere(bad)[:10]]
    if frac > max_bad_fraction:
        raise InputError(
            f"flat minus dark is zero, negative or not finite in {n_bad} of {bad.size} pixels "
            f"({frac:.2%}, more than the {max_bad_fraction:.2%} allowed); the flat or dark "
            "fields are wrong (swapped, saturated, taken without beam?): check them or give "
            "the right files"
        )
    if n_bad:
        msg = (f"flat minus dark is zero or negative in {n_bad} isolated pixel(s) "
               f"({frac:.3%}; e.g. [row, col] = {where[:3]}): dead or header pixels")
        log.warning("%s", msg)
        warnings.warn(msg, stacklevel=2)
    return ScanCheck(n_angles=n, has_flat=True, n_bad_pixels=n_bad, bad_fraction=frac,
                     bad_pixels=where)
