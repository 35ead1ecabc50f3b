"""The network component: parameters, builder and receptive radius of one denoising network.

A network registers a :class:`Network` in :data:`tomochunk.nn.NETWORKS` (or through the
``tomochunk.networks`` entry-point group). Its ``Params`` become the ``train: {NAME: {...}}``
config section and the parameters of ``build_network(NAME, ...)``. This module does not
import torch: configs are parsed without it; the network class is imported when built.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar

from ..registry import Component

__all__ = ["Network"]


class Network(Component):
    """A registered denoising network (a ``torch.nn.Module`` class built by name).

    Attributes
    ----------
    module_class : str
        ``"package.module:Class"`` of the ``torch.nn.Module``; its ``__init__`` takes
        ``(in_channels, out_channels, **params)`` and it exposes ``receptive_radius``,
        ``alignment`` and ``config``.
    """

    kind = "network"
    module_class: ClassVar[str] = ""

    def network_class(self) -> type[Any]:
        """The ``torch.nn.Module`` subclass (imports torch)."""
        module, _, attr = self.module_class.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]

    def build(self, in_channels: int, out_channels: int = 1, params: Any = None,
              **extra: Any) -> Any:
        """Build the network with ``params`` (its Params) and ``extra`` constructor keywords."""
        values = dataclasses.asdict(self.params(params))
        return self.network_class()(in_channels, out_channels, **{**values, **extra})

    def receptive_radius(self, params: Any = None) -> int:
        """In-plane pixels on one side of an output pixel that it depends on (its halo)."""
        return int(self.build(1, 1, params).receptive_radius)

    def alignment(self, params: Any = None) -> int:
        """Shifts (pixels) under which the network is translation-equivariant."""
        return int(self.build(1, 1, params).alignment)
