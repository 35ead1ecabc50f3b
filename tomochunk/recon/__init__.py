"""Split + reconstruction: interleaved angle subsets, Fourier-gridding FBP and backends.

:func:`reconstruct` (the ``tomochunk recon`` stage) turns a scan into ``recon.zarr`` with
``full(z,y,x)`` and ``split(split,z,y,x)``; :func:`nufft_fbp` is the native numpy/finufft
reconstructor of a sinogram block; :data:`RECONSTRUCTORS` lists the backends.
"""

from .filters import RAMP_FILTERS, fourier_filter, window
from .gridrec import angle_weights, circle_mask, default_center, nufft_fbp
from .registry import RECONSTRUCTORS
from .split import angles_per_split, check_splits, full_is_mean_of_splits, split_indices
from .volume import check_center, reconstruct, reconstruct_sinograms

__all__ = [
    "reconstruct",
    "reconstruct_sinograms",
    "nufft_fbp",
    "RECONSTRUCTORS",
    "RAMP_FILTERS",
    "fourier_filter",
    "window",
    "angle_weights",
    "circle_mask",
    "default_center",
    "split_indices",
    "angles_per_split",
    "check_splits",
    "full_is_mean_of_splits",
    "check_center",
]
