"""2x mean-downsampled multiscale pyramids of a stored volume, written chunk-parallel by Dask.

Each level is the 2x2x2 block mean of the level above it (an odd trailing plane, row or
column is dropped, as in ``skimage.transform.downscale_local_mean`` without padding). Level
``k`` is read lazily from the level ``k-1`` array already on disk, so every Dask task reads a
block of the previous level and writes one block of the next: memory stays bounded by the
chunk size, whatever the volume size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dask.array as da
import numpy as np
import zarr

__all__ = ["MIN_LEVEL_SIZE", "LEVEL_CHUNK", "level_count", "level_shapes", "downsample2",
           "write_pyramid"]

log = logging.getLogger(__name__)

#: Halve until the largest side of the coarsest level is at most this many voxels.
MIN_LEVEL_SIZE = 32
#: Chunk side of the downsampled levels (cubes: napari and neuroglancer read 3-D blocks).
LEVEL_CHUNK = 64


def level_count(shape: Sequence[int], min_size: int = MIN_LEVEL_SIZE) -> int:
    """Number of pyramid levels, the full resolution included, for a volume of ``shape``.

    Levels are added while the largest side of the current level exceeds ``min_size`` and
    every side can still be halved: 1 level for 32**3, 2 for 64**3, 7 for 2048**3.
    """
    shape = [int(s) for s in shape]
    n = 1
    while max(shape) > min_size and min(shape) >= 2:
        shape = [s // 2 for s in shape]
        n += 1
    return n


def level_shapes(shape: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    """Shapes of ``levels`` pyramid levels, starting with ``shape`` itself."""
    out = [tuple(int(s) for s in shape)]
    for _ in range(levels - 1):
        out.append(tuple(s // 2 for s in out[-1]))
    return out


def downsample2(arr: da.Array) -> da.Array:
    """2x block mean of a 3-D Dask array along every axis, in float32."""
    trimmed = arr[tuple(slice(0, 2 * (s // 2)) for s in arr.shape)]
    even = tuple(max(2, min(2 * (s // 2), c - c % 2)) for s, c in
                 zip(trimmed.shape, (max(c) for c in trimmed.chunks), strict=True))
    trimmed = trimmed.rechunk(even)
    out: da.Array = da.coarsen(np.mean, trimmed, {0: 2, 1: 2, 2: 2}).astype(np.float32)
    return out


def write_pyramid(
    group_path: str,
    source: str,
    *,
    levels: int | None = None,
    prefix: str = "pyramid",
) -> list[str]:
    """Write levels 1.. of the pyramid of the 3-D array ``source`` in the Zarr group.

    Parameters
    ----------
    group_path : str
        The Zarr v3 group (a local path).
    source : str
        Name of the full-resolution array in the group (level 0, left untouched).
    levels : int, optional
        Level count including level 0; default :func:`level_count` of the array's shape.
    prefix : str
        Level ``k`` is written to ``{prefix}/{source}/{k}``.

    Returns
    -------
    list of str
        The array paths of all levels, level 0 (``source``) first.
    """
    from ..runtime.progress import compute

    group = zarr.open_group(group_path, mode="r+")
    base = group[source]
    if not isinstance(base, zarr.Array) or base.ndim != 3:
        raise ValueError(f"{source!r} in {group_path} is not a 3-D array")
    n = level_count(base.shape) if levels is None else int(levels)
    paths = [source]
    dims = list(getattr(base.metadata, "dimension_names", None) or ("z", "y", "x"))
    compressors = base.compressors
    prev = da.from_zarr(base)
    for k in range(1, n):
        level = downsample2(prev)
        chunks = tuple(min(LEVEL_CHUNK, s) for s in level.shape)
        path = f"{prefix}/{source}/{k}"
        target = group.create_array(path, shape=level.shape, chunks=chunks, dtype="float32",
                                    dimension_names=dims, compressors=compressors,
                                    fill_value=np.float32("nan"), overwrite=True)
        log.info("pyramid level %d of %s: %s", k, source, "x".join(map(str, level.shape)))
        compute(da.store(level.rechunk(chunks), target,  # type: ignore[arg-type]
                         lock=False, compute=False),
                label=f"pyramid {source} level {k}")
        prev = da.from_zarr(target)
        paths.append(path)
    return paths
