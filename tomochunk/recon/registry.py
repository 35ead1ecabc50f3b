"""Reconstruction backends by name: ``native`` (always), ``auto``, ``cufinufft``, ``astra``,
``tomopy`` (optional).

Every backend is a function with the same signature::

    reconstruct_block(sino_block, theta, center, config, *, nthreads=None) -> ndarray

taking a float32 ``(angle, row, col)`` block of line integrals, angles in radians, the
rotation axis as a 0-based detector column (a float or one per row) and a
:class:`~tomochunk.config.ReconConfig`, and returning ``(row, n, n)`` float32 slices in
linear attenuation per pixel. ``RECONSTRUCTORS.available()`` says which ones work here and
``RECONSTRUCTORS.get(name)`` raises an error listing the valid names for an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..registry import Registry
from . import astra_backend, cufinufft_backend, gridrec, tomopy_backend

__all__ = ["RECONSTRUCTORS", "Reconstructor"]

Reconstructor = Callable[..., np.ndarray]

RECONSTRUCTORS: Registry[Reconstructor] = Registry("reconstruction backend")

RECONSTRUCTORS.register(
    "native",
    description="Fourier-gridding FBP with finufft (gridrec family), always available",
)(gridrec.reconstruct_block)
RECONSTRUCTORS.register(
    "astra",
    is_available=astra_backend.is_available,
    requires="astra-toolbox (pip install astra-toolbox)",
    description="ASTRA Toolbox FBP (CPU, or FBP_CUDA on a GPU)",
)(astra_backend.reconstruct_block)
RECONSTRUCTORS.register(
    "tomopy",
    is_available=tomopy_backend.is_available,
    requires="tomopy (conda install -c conda-forge tomopy)",
    description="TomoPy gridrec",
)(tomopy_backend.reconstruct_block)
RECONSTRUCTORS.register(
    "cufinufft",
    is_available=cufinufft_backend.is_available,
    requires="a CUDA GPU, a CUDA build of torch and cufinufft (pip install cufinufft)",
    description="the native gridding FBP on a GPU (torch + cufinufft)",
)(cufinufft_backend.reconstruct_block)
RECONSTRUCTORS.register(
    "auto",
    description="cufinufft on a worker with a GPU, native elsewhere (decided in each task)",
)(cufinufft_backend.reconstruct_block_auto)
