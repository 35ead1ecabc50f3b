"""Chunking and halo reading, shared by every stage that maps a kernel over a volume.

- :mod:`~tomochunk.chunks.source`: :class:`ZarrSource`, a store variable each task reads its
  own slab (or block of detector rows) of;
- :mod:`~tomochunk.chunks.halo`: :func:`map_z_halo`, one task per z-chunk with an exact halo,
  and the :class:`Slab` a kernel is told about;
- :mod:`~tomochunk.chunks.volume`: :func:`apply_kernel`, the same kernel over numpy, Dask,
  xarray or a :class:`ZarrSource`.
"""

from .halo import Slab, map_z_halo, z_chunks
from .source import ZarrSource
from .volume import Volume, apply_kernel, check_volume

__all__ = ["Slab", "Volume", "ZarrSource", "apply_kernel", "check_volume", "map_z_halo",
           "z_chunks"]
