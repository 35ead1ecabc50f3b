"""The filter component: parameters, z-halo and kernel of one baseline filter.

A new filter is one module that subclasses :class:`Filter` and registers an instance in
:data:`tomochunk.filters.FILTERS` (or through the ``tomochunk.filters`` entry-point group).
``tomochunk filter --method``, ``filters.methods``, the ``filters: {NAME: {...}}`` config
section and ``da.tomo.NAME(...)`` then all know it::

    @dataclass(frozen=True)
    class GainParams:
        gain: float = 2.0

    class Gain(Filter):
        name, description, Params = "gain", "multiply by a constant", GainParams

        def kernel(self, slab, info, *, gain):
            return slab[info.core] * gain
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

import numpy as np

from ..chunks import Slab, Volume, apply_kernel, check_volume
from ..registry import Component

__all__ = ["Filter"]


class _CallSignature:
    """``Filter.__signature__``: the signature of calling a component instance.

    An instance has the signature of its module's filter function (``function``) or its
    generated one (:meth:`~tomochunk.registry.Component.signature`). On the class itself it
    is None, so that ``inspect.signature(Filter)`` (autodoc) gives the constructor's.
    """

    def __get__(self, obj: Any, objtype: type | None = None) -> inspect.Signature | None:
        if obj is None:
            return None
        if obj.function is not None:
            return inspect.signature(obj.function)
        return obj.signature()  # type: ignore[no-any-return]


class Filter(Component):
    """A baseline filter of a volume ``(z, y, x)``, chunked along z with an exact halo.

    Attributes
    ----------
    needs_sigma : bool
        The filter takes the noise level ``sigma`` (``FilterConfig.sigma`` is resolved
        for it, e.g. from the split difference); ``sigma=None`` lets it estimate the noise.
    """

    kind = "filter"
    needs_sigma: ClassVar[bool] = False
    #: The module's filter function, if it has one: calling the component calls it.
    function: ClassVar[Any] = None

    def __call__(self, vol: Volume, *args: Any, chunk_z: int | None = None,
                 **kwargs: Any) -> Volume:
        """Filter ``vol``: ``component(vol, **params, [sigma=...], chunk_z=...)``."""
        if self.function is not None:
            return self.function(vol, *args, chunk_z=chunk_z, **kwargs)  # type: ignore[no-any-return]
        if len(args) > len(self.param_names()):
            raise TypeError(f"{self.name}() takes {len(self.param_names())} parameters after "
                            f"the volume, got {len(args)}")
        sigma = kwargs.pop("sigma", None) if self.needs_sigma else None
        positional = dict(zip(self.param_names(), args, strict=False))
        return self.run(vol, self.params(positional, **kwargs), sigma=sigma, chunk_z=chunk_z)

    #: ``inspect.signature(component)``: the call's parameters (see :class:`_CallSignature`).
    __signature__: ClassVar[Any] = _CallSignature()

    def halo(self, params: Any) -> int:
        """Slices on each side of a chunk that its output depends on (0: pointwise)."""
        return 0

    def kernel(self, slab: np.ndarray, info: Slab, **kwargs: Any) -> np.ndarray:
        """Filter one slab and return its core slices ``slab[info.core]`` (float32)."""
        raise NotImplementedError(f"filter {self.name!r} defines no kernel")

    def check(self, params: Any, shape: tuple[int, int, int]) -> None:
        """Raise :class:`~tomochunk.errors.ConfigError` if ``params`` cannot work on ``shape``."""

    def kernel_args(self, params: Any, sigma: float | None) -> dict[str, Any]:
        """The keyword arguments of :meth:`kernel` (default: the params, plus ``sigma``)."""
        args = dataclasses.asdict(params)
        if self.needs_sigma:
            args["sigma"] = None if sigma is None else float(sigma)
        return args

    def attrs(self, params: Any, sigma: float | None) -> dict[str, Any]:
        """Attributes of the filtered DataArray (the parameters used)."""
        return {"filter": self.name, **self.kernel_args(params, sigma)}

    def run(self, vol: Volume, params: Any = None, *, sigma: float | None = None,
            chunk_z: int | None = None) -> Volume:
        """Filter ``vol`` (numpy, Dask, xarray or a store variable) with ``params``.

        Returns the same kind of object, float32 (see
        :func:`tomochunk.chunks.volume.apply_kernel` for the chunking).
        """
        params = self.params(params)
        shape = check_volume(vol)
        self.check(params, shape)
        return apply_kernel(vol, self.kernel, halo=self.halo(params), chunk_z=chunk_z,
                            params=self.kernel_args(params, sigma), name=self.name,
                            attrs=self.attrs(params, sigma))

    def config_params(self, params: Any, sigma: float | None) -> dict[str, Any]:
        """The parameters recorded in ``<method>.zarr`` (``filter_params``)."""
        return self.kernel_args(params, sigma)

    def signature(self) -> inspect.Signature:
        """``(params..., [sigma], chunk_z)`` with the Params defaults: the accessor's."""
        kw = inspect.Parameter.KEYWORD_ONLY
        hints = _hints(self.Params)
        parms = [inspect.Parameter(f.name, kw, default=f.default, annotation=hints[f.name])
                 for f in dataclasses.fields(self.Params)]
        if self.needs_sigma:
            parms.append(inspect.Parameter("sigma", kw, default=None,
                                           annotation="float | None"))
        parms.append(inspect.Parameter("chunk_z", kw, default=None, annotation="int | None"))
        return inspect.Signature(parms)

    def doc(self) -> str:
        """A docstring for the accessor method: the description and the Params' attributes."""
        pdoc = inspect.cleandoc(self.Params.__doc__ or "")
        _, _, attrs = pdoc.partition("Attributes\n----------\n")
        text = f"{self.description}\n\nParameters\n----------\n{attrs}".rstrip()
        if self.needs_sigma:
            text += "\nsigma : float, optional\n    Noise level; None estimates it."
        return text + "\nchunk_z : int, optional\n    Slices per task.\n"


def _hints(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - annotations only decorate the signature
        return {f.name: f.type for f in dataclasses.fields(cls)}
