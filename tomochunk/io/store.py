"""The Zarr store layout (contract) and atomic stage outputs.

Every stage writes its store under a temporary sibling name and renames it into place only
when complete, after writing the completion attribute ``tomochunk_complete = True`` last.
An interrupted or failed stage therefore never leaves a store that looks complete, and an
existing store is never touched unless ``overwrite=True``.

An fsspec URL output (``s3://...``, :mod:`tomochunk.io.urls`) has no rename: the temporary
store is a local staging folder, finalized the same way, and published with its root
``zarr.json`` (completion attribute + consolidated metadata) as the last object; an overwrite
invalidates the old store's root ``zarr.json`` before deleting it.

Store contract (see ``docs/architecture.md``):

- ``scan.zarr``: ``projections(angle,row,col)``, ``flat(flat,row,col)``, ``dark(dark,row,col)``,
  coordinate ``theta(angle)`` in radians; attrs ``pixel_size_um`` (when known), ``source``.
- ``recon.zarr``: ``full(z,y,x)``, ``split(split,z,y,x)`` float32; attrs ``center``, ``filter``,
  ``algorithm``, ``n_splits``, ``angles_per_split``, ``stripe``.
- ``denoised.zarr``: ``denoised(z,y,x)``; ``<method>.zarr``: ``<method>(z,y,x)``.
- On disk (:mod:`tomochunk.io.finalize`): consolidated metadata; ``split``, ``flat`` and
  ``dark`` indexed by ``<name>_index`` so that ``xarray.open_zarr`` reads them as data
  variables (:func:`open_dataset` renames them back); ``units`` on every volume; NGFF 0.5
  ``ome.multiscales`` on each ``(z,y,x)`` volume with its 2x pyramid under ``pyramid/``
  (:mod:`tomochunk.io.ngff`).

Floating-point volumes are compressed with Blosc LZ4 + bit shuffle (:func:`float_encoding`):
noisy float32 reconstructions barely compress (measured 1.19x, against 1.09x for Zarr's
default Zstandard), and LZ4 costs a fraction of Zstandard's time to write and read, which
otherwise dominates a chunked median or a block reconstruction's output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import xarray as xr
import zarr

from ..errors import IncompleteStoreError, InputError, OutputExistsError
from .atomic import PARTIAL, remove_stale_partials, swap_into_place, temp_sibling
from .finalize import finalize_store, restore_index_dims
from .manifest import verify_manifest, write_manifest

__all__ = [
    "COMPLETE_ATTR",
    "HASH_ATTR",
    "check_output_path",
    "atomic_store",
    "write_dataset",
    "float_encoding",
    "is_complete",
    "read_attrs",
    "open_store",
    "open_dataset",
    "open_scan",
    "open_recon",
    "remove_stale_partials",
    "SCAN_VARS",
    "RECON_VARS",
]

COMPLETE_ATTR = "tomochunk_complete"
HASH_ATTR = "tomochunk_config_hash"
VERSION_ATTR = "tomochunk_version"
_PARTIAL = PARTIAL

SCAN_VARS = ("projections", "flat", "dark")
RECON_VARS = ("full", "split")


def _version() -> str:
    from .. import __version__

    return __version__


def check_output_path(path: str | os.PathLike[str], overwrite: bool = False,
                      storage_options: Mapping[str, Any] | None = None) -> Any:
    """Raise :class:`OutputExistsError` if ``path`` exists and ``overwrite`` is false.

    Call it before any expensive work so the user learns of the clash at once. Returns
    ``path`` as a :class:`~pathlib.Path`, or unchanged when it is an fsspec URL (an existing
    remote output left incomplete by an interrupted write is refused too: it may be
    someone's data).
    """
    from .urls import exists, is_url, local_path

    if is_url(path):
        url = os.fspath(path)
        if not overwrite and exists(url, storage_options):
            store_like = url.rstrip("/").endswith(".zarr")  # models, reports, exports: no flag
            state = ("" if not store_like or is_complete(url, storage_options)
                     else " (incomplete: an interrupted write left it)")
            raise OutputExistsError(
                f"output {url} already exists{state}; pass --overwrite (overwrite=True) to "
                "replace it, or choose another URL"
            )
        return url
    path = Path(local_path(path))
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output {path} already exists; pass --overwrite (overwrite=True) to replace it, "
            "or choose another path"
        )
    return path


def _partial_name(path: Path) -> Path:
    return temp_sibling(path, _PARTIAL)


@contextlib.contextmanager
def atomic_store(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    attrs: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[Path]:
    """Write a store under a temporary name; rename it to ``path`` only when complete.

    For an fsspec URL ``path`` the temporary store is a local staging folder, finalized the
    same way and then published without rename (:mod:`tomochunk.io.urls`): the old output
    (with ``overwrite``) is invalidated and deleted, every object uploaded, the completion
    marker last.

    Parameters
    ----------
    path : path-like
        Final location of the Zarr store (or of a directory, e.g. a model folder).
    overwrite : bool
        Replace an existing ``path`` (only after the new one is complete).
    attrs : mapping, optional
        Extra root attributes written just before completion.
    config_hash : str, optional
        Stored as ``tomochunk_config_hash`` so a pipeline can tell a stale stage.
    storage_options : mapping, optional
        fsspec options of a URL ``path``.

    Yields
    ------
    pathlib.Path
        The temporary path to write into.
    """
    from .urls import is_url

    if is_url(path):
        url = check_output_path(path, overwrite, storage_options)
        with _remote_atomic(url, attrs, config_hash, storage_options) as tmp:
            yield tmp
        return
    target: Path = check_output_path(path, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_name(target)
    try:
        yield tmp
        _finish(tmp, attrs, config_hash)
        swap_into_place(tmp, target,
                        lambda old: shutil.rmtree(old, ignore_errors=True))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finish(tmp: Path, attrs: Mapping[str, Any] | None, config_hash: str | None) -> None:
    """Finalize the written temporary output ``tmp`` (a store: :func:`finalize_store`)."""
    if (tmp / "zarr.json").exists():
        final = dict(attrs or {})
        final[VERSION_ATTR] = _version()
        if config_hash is not None:
            final[HASH_ATTR] = config_hash
        final[COMPLETE_ATTR] = True
        # data variables, units, NGFF, chunk manifest, then completion + consolidated metadata
        finalize_store(tmp, final, before_complete=write_manifest)
    elif not tmp.exists():
        raise RuntimeError(f"nothing was written to the temporary output {tmp}")


@contextlib.contextmanager
def _remote_atomic(url: str, attrs: Mapping[str, Any] | None, config_hash: str | None,
                   storage_options: Mapping[str, Any] | None) -> Iterator[Path]:
    """:func:`atomic_store` for a URL: write and finalize locally, then publish."""
    from .urls import publish, remove, staging_dir

    with staging_dir(url) as tmp:
        yield tmp
        _finish(tmp, attrs, config_hash)
        remove(url, storage_options)  # invalidate the old output first (overwrite checked)
        publish(tmp, url, storage_options)


def float_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr encoding of ``ds``'s floating-point data variables: Blosc LZ4 with bit shuffle.

    Variables that already carry a compressor in their ``encoding`` keep it.
    """
    from zarr.codecs import BloscCodec, BloscShuffle

    return {
        str(name): {"compressors": (BloscCodec(cname="lz4", clevel=5,
                                               shuffle=BloscShuffle.bitshuffle),)}
        for name, var in ds.data_vars.items()
        if var.dtype.kind == "f" and not {"compressors", "compressor"} & set(var.encoding)
    }


def write_dataset(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    attrs: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
    label: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Write a (lazy, Dask-backed) dataset atomically as a Zarr v3 store.

    Each Dask chunk is written by the task that computes it, so memory stays bounded by
    the chunk size. Progress is shown with :func:`tomochunk.runtime.progress.compute`. ``path``
    may be an fsspec URL (written with ``storage_options``, see :func:`atomic_store`);
    the return value is ``path`` as a Path, or the URL.
    """
    from ..runtime.progress import compute
    from .urls import basename, is_url, local_path

    path = os.fspath(path) if is_url(path) else Path(local_path(path))
    ds = ds.copy()
    ds.attrs.pop(COMPLETE_ATTR, None)  # the flag comes last, from atomic_store only
    with atomic_store(path, overwrite=overwrite, attrs=attrs, config_hash=config_hash,
                      storage_options=storage_options) as tmp:
        delayed = ds.to_zarr(
            str(tmp), mode="w", zarr_format=3, consolidated=False, compute=False,
            encoding=float_encoding(ds),
        )
        compute(delayed, label=label or f"writing {basename(path)}")
    return path


def is_complete(path: str | os.PathLike[str],
                storage_options: Mapping[str, Any] | None = None) -> bool:
    """True when ``path`` (a path or an fsspec URL) is a store that a stage finished writing."""
    try:
        return bool(read_attrs(path, storage_options).get(COMPLETE_ATTR, False))
    except Exception:  # noqa: BLE001 - unreadable means not complete
        return False


def read_attrs(path: str | os.PathLike[str],
               storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Root attributes of a Zarr store (a path or an fsspec URL)."""
    from .urls import RemotePath, is_url, local_path, zarr_store

    if isinstance(path, RemotePath):
        storage_options = path.storage_options
        path = path.url
    if is_url(path):
        return dict(zarr.open_group(zarr_store(os.fspath(path), storage_options),
                                    mode="r").attrs)
    return dict(zarr.open_group(local_path(path), mode="r").attrs)


def open_store(
    path: str | os.PathLike[str],
    *,
    require_complete: bool = True,
    required: tuple[str, ...] = (),
    what: str = "store",
    chunks: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Open a tomochunk store lazily as an :class:`xarray.Dataset`.

    ``path`` may be an fsspec URL (``s3://bucket/run/denoised.zarr``, ``https://...``,
    ``file://...``) read with ``storage_options`` (:mod:`tomochunk.io.urls`).

    Raises
    ------
    InputError
        If the path does not exist or lacks one of the ``required`` variables.
    IncompleteStoreError
        If the store was never marked complete.
    """
    from .urls import RemotePath, is_url, local_path

    if isinstance(path, RemotePath):
        storage_options = path.storage_options
        path = path.url
    if is_url(path):
        ds = _open_remote(str(path), storage_options, require_complete, what, chunks)
        _check_required(ds, required, what, path)
        return ds
    path = Path(local_path(path))
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if require_complete and not is_complete(path):
        raise IncompleteStoreError(
            f"{what} {path} is incomplete (an interrupted or failed stage wrote it); "
            "re-run the stage that produces it with --overwrite"
        )
    if require_complete:
        verify_manifest(path, what)
    ds = open_dataset(path, chunks=chunks if chunks is not None else {})
    _check_required(ds, required, what, path)
    return ds


def _check_required(ds: xr.Dataset, required: tuple[str, ...], what: str, path: Any) -> None:
    missing = [v for v in required if v not in ds.variables]
    if missing:
        raise InputError(
            f"{what} {path} has no variable(s) {', '.join(missing)}; it holds "
            f"{', '.join(map(str, ds.data_vars))}. Was it written by the right stage?"
        )


def _open_remote(url: str, storage_options: Mapping[str, Any] | None, require_complete: bool,
                 what: str, chunks: Any) -> xr.Dataset:
    """:func:`open_store` for an fsspec URL: completion and consolidated metadata first."""
    from .urls import zarr_store

    store = zarr_store(url, storage_options)
    try:
        group = zarr.open_group(store, mode="r")
    except Exception as exc:  # noqa: BLE001 - missing, unreachable or not a Zarr group
        raise InputError(f"{what} {url} cannot be opened ({type(exc).__name__}: {exc}); check "
                         "the URL and --storage-option (credentials, endpoint_url)") from exc
    if require_complete and not group.attrs.get(COMPLETE_ATTR, False):
        raise IncompleteStoreError(
            f"{what} {url} is incomplete (an interrupted or failed stage wrote it); "
            "re-run the stage that produces it with --overwrite"
        )
    if require_complete:
        verify_manifest(url, what, storage_options)
    consolidated = group.metadata.consolidated_metadata is not None
    ds = xr.open_zarr(store, consolidated=consolidated,
                      chunks=chunks if chunks is not None else {})
    return restore_index_dims(ds)


def open_dataset(path: str | os.PathLike[str], *, chunks: Any = None,
                 storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """``xarray.open_zarr`` of a store in the in-memory layout (``split(split, z, y, x)``).

    Reads the consolidated metadata when the store has it (stores written before it was
    added are read without), and renames the ``<name>_index`` dimensions back
    (:mod:`tomochunk.io.finalize`). ``chunks=None`` gives NumPy-backed lazy variables.
    ``path`` may be an fsspec URL, read with ``storage_options`` (no completion check: see
    :func:`open_store`).
    """
    import json

    from .urls import is_url, zarr_store

    if is_url(path):
        remote = zarr_store(os.fspath(path), storage_options)
        group = zarr.open_group(remote, mode="r")
        return restore_index_dims(xr.open_zarr(
            remote, consolidated=group.metadata.consolidated_metadata is not None,
            chunks=chunks))
    root = Path(path) / "zarr.json"
    consolidated = root.exists() and bool(json.loads(root.read_text()).get("consolidated_metadata"))
    ds = xr.open_zarr(str(path), consolidated=consolidated, chunks=chunks)
    return restore_index_dims(ds)


def open_scan(path: str | os.PathLike[str],
              storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Open ``scan.zarr`` lazily: ``projections``, ``flat``, ``dark`` and ``theta`` (radians)."""
    return open_store(path, required=("projections", "theta"), what="scan store",
                      storage_options=storage_options)


def open_recon(path: str | os.PathLike[str],
               storage_options: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Open ``recon.zarr`` lazily: ``full(z,y,x)`` and ``split(split,z,y,x)``."""
    return open_store(path, required=("full",), what="recon store",
                      storage_options=storage_options)
