"""Reconstruction backends by name: ``native`` (always), ``auto``, ``cufinufft``, ``astra``,
``tomopy`` (optional).

Every backend is a :class:`Reconstructor` component, called like the function it wraps::

    RECONSTRUCTORS.get(name)(sino_block, theta, center, config, *, nthreads=None) -> ndarray

taking a float32 ``(angle, row, col)`` block of line integrals, angles in radians, the
rotation axis as a 0-based detector column (a float or one per row) and a
:class:`~tomochunk.config.ReconConfig`, and returning ``(row, n, n)`` float32 slices in
linear attenuation per pixel. ``RECONSTRUCTORS.available()`` says which ones work here and
``RECONSTRUCTORS.get(name)`` raises an error listing the valid names for an unknown one.
Other packages register a :class:`Reconstructor` through the ``tomochunk.reconstructors``
entry-point group (or ``RECONSTRUCTORS.register``).

A backend with parameters owns a frozen ``Params`` dataclass (``native``:
:class:`~tomochunk.recon.gridrec.NativeParams`, ``cufinufft``:
:class:`~tomochunk.recon.cufinufft_backend.CufinufftParams`); they are the
``recon: {NAME: {...}}`` config sections, and the block function reads its own with
``config.params_of(NAME)``. ``astra``, ``tomopy`` and ``auto`` have none (``auto`` uses the
``cufinufft`` parameters on a worker with a GPU and the ``native`` ones elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..registry import Component, NoParams, Registry
from . import astra_backend, cufinufft_backend, gridrec, tomopy_backend

__all__ = ["RECONSTRUCTORS", "Reconstructor"]


class Reconstructor(Component):
    """A reconstruction backend: a block function, its availability and what it needs.

    Parameters
    ----------
    name : str
        ``ReconConfig.backend`` / ``--backend`` value.
    function : callable
        ``function(sino_block, theta, center, config, *, nthreads=None) -> ndarray``.
    description : str
        One line for ``tomochunk backends``.
    requires : str
        What to install when ``is_available`` is false.
    is_available : callable, optional
        A cheap probe of the optional dependency (default: always available).
    check : callable, optional
        ``check(config)`` raises :class:`~tomochunk.errors.ConfigError` for ReconConfig
        settings the backend does not implement (default: it implements them all).
    params : type, optional
        Its frozen parameters dataclass (defaults, numpydoc ``Attributes``, range checks in
        ``__post_init__``): the ``recon: {NAME: {...}}`` section, read by ``function`` as
        ``config.params_of(NAME)``. Default: no parameters.
    params_from : tuple of str, optional
        The backends whose parameters this one's result depends on (default: its own name;
        ``auto``: ``cufinufft`` and ``native``). The recon stage hash holds theirs
        (:func:`tomochunk.pipeline.stages.recon_stage_config`).
    """

    kind = "reconstruction backend"

    def __init__(self, name: str, function: Callable[..., np.ndarray], *, description: str,
                 requires: str = "", is_available: Callable[[], bool] | None = None,
                 check: Callable[[Any], None] | None = None, params: type[Any] = NoParams,
                 params_from: tuple[str, ...] | None = None) -> None:
        self.name, self.function, self.description = name, function, description
        self.requires = requires
        self._probe = is_available or (lambda: True)
        self._check = check
        self.Params = params
        self.params_from = (name,) if params_from is None else tuple(params_from)

    def check(self, config: Any) -> None:
        """Refuse settings of ``config`` (a ReconConfig) that this backend does not implement.

        Raises
        ------
        ConfigError
            From the backend's own check (e.g. a ramp filter ASTRA does not have).
        """
        if self._check is not None:
            self._check(config)

    def is_available(self) -> bool:
        """Whether the backend's dependency imports (and a GPU is there, for cufinufft)."""
        return bool(self._probe())

    def __call__(self, sino_block: np.ndarray, theta: np.ndarray, center: Any, config: Any,
                 **kwargs: Any) -> np.ndarray:
        """Reconstruct one block (see the module docstring)."""
        return self.function(sino_block, theta, center, config, **kwargs)


RECONSTRUCTORS: Registry[Reconstructor] = Registry("reconstruction backend",
                                                   group="tomochunk.reconstructors")

for _backend in (
    Reconstructor("native", gridrec.reconstruct_block, params=gridrec.NativeParams,
                  description="Fourier-gridding FBP with finufft (gridrec family), always "
                              "available"),
    Reconstructor("astra", astra_backend.reconstruct_block,
                  is_available=astra_backend.is_available,
                  requires="astra-toolbox (pip install astra-toolbox)",
                  check=astra_backend.check_config,
                  description="ASTRA Toolbox FBP (CPU, or FBP_CUDA on a GPU)"),
    Reconstructor("tomopy", tomopy_backend.reconstruct_block,
                  is_available=tomopy_backend.is_available,
                  requires="tomopy (conda install -c conda-forge tomopy)",
                  description="TomoPy gridrec"),
    Reconstructor("cufinufft", cufinufft_backend.reconstruct_block,
                  params=cufinufft_backend.CufinufftParams,
                  is_available=cufinufft_backend.is_available,
                  requires="a CUDA GPU, a CUDA build of torch and cufinufft (pip install "
                           "cufinufft)",
                  description="the native gridding FBP on a GPU (torch + cufinufft)"),
    Reconstructor("auto", cufinufft_backend.reconstruct_block_auto,
                  params_from=("cufinufft", "native"),
                  description="cufinufft on a worker with a GPU, native elsewhere (decided in "
                              "each task)"),
):
    RECONSTRUCTORS.register(_backend)
