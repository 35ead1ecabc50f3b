"""A variable of a Zarr store that chunk tasks read their own slabs of.

Used by every stage that maps a kernel over a store: the z-slabs of filters and inference
(:func:`tomochunk.chunks.map_z_halo`, axis ``-3``) and the detector-row blocks of
reconstruction (axis ``-2`` of ``(angle, row, col)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ZarrSource"]


@dataclass(frozen=True)
class ZarrSource:
    """A variable of a Zarr store that every task reads its own slab of.

    Tasks that read their input themselves have no data dependencies, so the scheduler
    spreads them over the workers freely (a halo shared by two chunks otherwise draws both
    tasks to the worker that read it) and no slab travels between workers.

    Attributes
    ----------
    path : str
        The store.
    name : str
        The variable (a Zarr array of the store).
    shape : tuple of int
    version : int
        Modification time of the array's metadata (part of the task keys, so a rewritten
        store is read again); for a URL, a digest of its metadata object's ETag/mtime.
    storage_options : dict or None
        fsspec options when ``path`` is a URL (``s3://...``).
    axis : int
        The axis that :meth:`read` slices: ``-3`` (z of ``(z, y, x)`` or ``(k, z, y, x)``,
        the default) or ``-2`` (detector rows of ``(angle, row, col)``); the other axes are
        read whole.
    """

    path: str
    name: str
    shape: tuple[int, ...]
    version: int = 0
    storage_options: dict[str, Any] | None = None
    axis: int = -3

    @classmethod
    def open(cls, path: Any, name: str, storage_options: Any = None,
             axis: int = -3) -> ZarrSource:
        """Describe variable ``name`` of the store at ``path`` (a path or an fsspec URL).

        Parameters
        ----------
        path : path or str
            The store, a local path or an fsspec URL.
        name : str
            The variable.
        storage_options : dict, optional
            fsspec options for a URL.
        axis : int
            The axis :meth:`read` slices.

        Returns
        -------
        ZarrSource
        """
        import os

        from ..io.urls import array_version, is_url, zarr_array

        so = dict(storage_options or {}) if is_url(path) else None
        where = os.fspath(path) if is_url(path) else str(path)
        arr = zarr_array(where, name, so)
        return cls(where, name, tuple(int(n) for n in arr.shape),
                   array_version(where, name, so), so, axis)

    def _array(self) -> Any:
        from ..io.urls import zarr_array

        return zarr_array(self.path, self.name, self.storage_options)

    @property
    def ndim(self) -> int:
        """Number of axes of the variable."""
        return len(self.shape)

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Indices ``[lo, hi)`` along :attr:`axis` (the other axes whole).

        Parameters
        ----------
        lo, hi : int
            The range along :attr:`axis`.

        Returns
        -------
        numpy.ndarray
        """
        arr = self._array()
        lead = self.ndim + self.axis if self.axis < 0 else self.axis
        return np.asarray(arr[(slice(None),) * lead + (slice(lo, hi),)])
