"""Map a numpy kernel over z-slabs of a Dask array with an exact halo.

Every output chunk ``[z0, z1)`` is computed by one task from the input slab
``[max(0, z0 - halo), min(n_z, z1 + halo))``: the halo is real data inside the volume and is
simply clipped at the volume ends, so a kernel that treats the ends of its slab like the
ends of the volume (``scipy.ndimage``'s ``mode="reflect"``, a mirrored 2.5D context, ...)
gives chunked results equal to the whole-volume result. This is :func:`dask.array.map_overlap`
with ``boundary="none"``, written out so that the kernel knows where its slab lies in the
volume (needed for per-chunk noise estimates and for the mirrored context of inference) and
so that chunks smaller than the halo need no rechunking (a slab may span several chunks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from .source import ZarrSource

__all__ = ["Slab", "map_z_halo", "z_chunks"]


@dataclass(frozen=True)
class Slab:
    """Where a slab handed to a kernel lies in the volume.

    Attributes
    ----------
    lo, hi : int
        Slab extent ``[lo, hi)`` along z in volume indices (halo included, clipped).
    z0, z1 : int
        The chunk (core) the kernel must return, ``[z0, z1)`` in volume indices.
    n_z : int
        Slices in the whole volume.
    """

    lo: int
    hi: int
    z0: int
    z1: int
    n_z: int

    @property
    def core(self) -> slice:
        """Slice of the core inside the slab (along the slab's z axis)."""
        return slice(self.z0 - self.lo, self.z1 - self.lo)

    @property
    def at_start(self) -> bool:
        """The slab starts at the first slice of the volume."""
        return self.lo == 0

    @property
    def at_end(self) -> bool:
        """The slab ends at the last slice of the volume."""
        return self.hi == self.n_z


def z_chunks(n_z: int, chunk_z: int) -> list[tuple[int, int]]:
    """``[(z0, z1), ...]`` covering ``range(n_z)`` in steps of ``chunk_z`` (last may be short)."""
    chunk_z = max(1, int(chunk_z))
    return [(z0, min(z0 + chunk_z, n_z)) for z0 in range(0, n_z, chunk_z)]


def _chunk_failed(err: Exception, info: Slab, blocks: Any, stage: str) -> Exception:
    """``err`` with the chunk's slices (and store) named in the message."""
    from ..errors import InputError, located

    where = f"slices {info.z0}-{info.z1 - 1}"
    if isinstance(blocks, ZarrSource):
        where += f" of {blocks.path}/{blocks.name}"
    if stage == "read":
        return InputError(
            f"{where}: cannot read the data ({type(err).__name__}: {err}); the store is damaged "
            "(corrupt or truncated chunk): re-create it with the stage that wrote it"
        )
    return located(err, where)


def _run(fn: Callable[..., np.ndarray], blocks: Any, info: Slab, extra: Mapping[str, Any],
         dtype: np.dtype) -> np.ndarray:
    try:
        if isinstance(blocks, ZarrSource):
            slab = blocks.read(info.lo, info.hi)
        else:
            slab = np.block(blocks) if isinstance(blocks, list) else np.asarray(blocks)
    except Exception as err:
        raise _chunk_failed(err, info, blocks, "read") from err
    try:
        return np.asarray(fn(slab, info, **extra), dtype=dtype)
    except Exception as err:
        raise _chunk_failed(err, info, blocks, "compute") from err


def map_z_halo(
    fn: Callable[..., np.ndarray],
    arr: da.Array | ZarrSource,
    *,
    halo: int,
    chunk_z: int,
    dtype: Any = np.float32,
    out_shape: tuple[int, ...] | None = None,
    extra: Mapping[str, Any] | None = None,
    name: str = "halo",
) -> da.Array:
    """Apply ``fn(slab, info, **extra)`` to every z-chunk of ``arr`` with a ``halo``.

    Parameters
    ----------
    fn : callable
        ``fn(slab, info, **extra) -> core``. ``slab`` is a numpy array whose axis ``-3`` is z
        (any leading axes are passed whole); ``info`` is a :class:`Slab`; the result has shape
        ``(info.z1 - info.z0,) + out_shape[1:]``.
    arr : dask.array.Array or ZarrSource
        Input with z on axis ``-3`` (``(z, y, x)`` or ``(k, z, y, x)``); a
        :class:`ZarrSource` is read slab by slab inside the tasks.
    halo : int
        Slices of halo on each side (clipped at the volume ends).
    chunk_z : int
        Output slices per task.
    dtype : dtype
        Output dtype.
    out_shape : tuple, optional
        Output shape, z first; default ``arr.shape[-3:]``.
    extra : dict, optional
        Keyword arguments passed to every call (may hold Dask delayed objects, computed
        once and shared by all tasks).
    name : str
        Prefix of the task names.

    Returns
    -------
    dask.array.Array
        Chunked ``(chunk_z, ...)`` along z, one task per chunk.
    """
    if arr.ndim < 3:
        raise ValueError(f"expected an array with z on axis -3, got shape {arr.shape}")
    n_z = arr.shape[-3]
    out_shape = tuple(out_shape or arr.shape[-3:])
    dtype = np.dtype(dtype)
    halo = max(0, int(halo))
    if halo >= n_z:
        # a volume thinner than the halo: boundary reflections would bounce off the slab's
        # cut instead of the far end of the volume, so process it whole (exact)
        chunk_z = n_z
    lead = (slice(None),) * (arr.ndim - 3)
    run = dask.delayed(_run, pure=True)
    blocks = []
    for z0, z1 in z_chunks(n_z, chunk_z):
        lo, hi = max(0, z0 - halo), min(n_z, z1 + halo)
        info = Slab(lo, hi, z0, z1, n_z)
        if isinstance(arr, ZarrSource):
            parts, token = arr, arr
        else:
            slab = arr[lead + (slice(lo, hi),)]
            # the slab's chunks as delayed parts (no finalize task: stable keys), joined in
            # the task
            parts, token = slab.to_delayed().tolist(), slab.name
        key = f"{name}-{z0}-{dask.base.tokenize(fn, token, info, extra, dtype)}"
        task = run(fn, parts, info, extra or {}, dtype, dask_key_name=key)
        blocks.append(da.from_delayed(task, (z1 - z0,) + out_shape[1:], dtype=dtype))
    out: da.Array = da.concatenate(blocks, axis=0)
    return out
