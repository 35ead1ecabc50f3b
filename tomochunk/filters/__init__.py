"""Baseline filters of reconstructed volumes, chunked along z with an exact halo.

- :func:`median`: 3D median (ball/cube footprint), equal to :func:`scipy.ndimage.median_filter`
  (an exact selection network, :func:`rank_filter`, 6-9x faster for the radius-2 ball).
- :func:`nlm`: 3D non-local means (scikit-image) with a per-chunk noise estimate.
- :func:`iternlm`: iterative, z-adaptive NLM after Bruns et al. (2017).
- :func:`split_sigma`, :func:`resolve_sigma`: the noise level for NLM measured from the
  split difference, std(s0 - s1) / 2 for K=2 (``FilterConfig.sigma``, default ``auto-split``).
- :func:`apply_filter`: ``recon.zarr`` -> ``<method>.zarr`` (``tomochunk filter``).
- :class:`Filter`, :data:`FILTERS`: one module per filter defines its component (parameters,
  halo, kernel); a new filter registers itself and needs no edit elsewhere.

Each filter takes a numpy array, a Dask array or an :class:`xarray.DataArray` ``(z, y, x)``
and returns the same kind. The median on projections before reconstruction lives in
:mod:`tomochunk.preprocess` (``PreprocessConfig.projection_median``).
"""

from __future__ import annotations

from ..chunks import Slab, map_z_halo, z_chunks
from .apply import apply_filter, filter_params
from .component import Filter
from .iternlm import ITERNLM, iternlm_array, iternlm_halo, slice_noise
from .median import MEDIAN, check_radius, footprint_array
from .nlm import NLM, nlm_halo
from .registry import FILTERS
from .selection import rank_filter
from .sigma import SIGMA_MODES, resolve_sigma, split_sigma

#: The registered components, callable like the filter functions they wrap.
median, nlm, iternlm = MEDIAN, NLM, ITERNLM

__all__ = [
    "FILTERS",
    "Filter",
    "SIGMA_MODES",
    "resolve_sigma",
    "split_sigma",
    "Slab",
    "apply_filter",
    "check_radius",
    "filter_params",
    "footprint_array",
    "iternlm",
    "iternlm_array",
    "iternlm_halo",
    "map_z_halo",
    "median",
    "nlm",
    "nlm_halo",
    "rank_filter",
    "slice_noise",
    "z_chunks",
]
