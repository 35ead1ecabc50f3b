"""Registry of denoising networks and helpers to build them by name.

Networks register as :class:`~tomochunk.nn.component.Network` components in
:data:`NETWORKS` (built-ins: :mod:`tomochunk.nn.builtin`; others through the
``tomochunk.networks`` entry-point group); :func:`build_network` constructs one from the
name, the channel counts and keyword parameters, rejecting unknown parameters with a message
that lists the valid ones. Every network exposes ``receptive_radius`` and ``config``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..registry import Registry
from .component import Network

if TYPE_CHECKING:
    import torch

    from ..config import TrainConfig

__all__ = ["NETWORKS", "build_network", "network_params_from_config", "receptive_radius"]

NETWORKS: Registry[Network] = Registry("network", group="tomochunk.networks",
                                       builtins=("tomochunk.nn.builtin",))


def _valid_params(cls: type) -> list[str]:
    sig = inspect.signature(cls)  # the constructor's parameters (no self)
    skip = {"self", "in_channels", "out_channels"}
    return [name for name in sig.parameters if name not in skip]


def build_network(
    name: str, in_channels: int, out_channels: int = 1, **params: Any
) -> torch.nn.Module:
    """Build the network registered as ``name``.

    Parameters
    ----------
    name : str
        Registered network name (``msd``, ``unet``, ...).
    in_channels, out_channels : int
        Input channels (the 2.5D context) and output channels.
    **params
        Network parameters, e.g. ``depth``, ``width``, ``dilations`` (msd) or ``depth``,
        ``features`` (unet).

    Raises
    ------
    ConfigError
        Unknown network name, unknown parameter (the message lists the valid ones) or an
        invalid value.

    Examples
    --------
    >>> build_network("msd", 5, depth=10).receptive_radius
    55
    """
    cls = NETWORKS.get(name).network_class()
    valid = _valid_params(cls)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for network {name!r}; valid "
            f"parameters are: {', '.join(valid)}"
        )
    return cls(in_channels, out_channels, **params)  # type: ignore[no-any-return]


def network_params_from_config(cfg: TrainConfig) -> dict[str, Any]:
    """The :func:`build_network` parameters that a :class:`TrainConfig` selects: the fields
    of its ``cfg.params_of(cfg.network)`` section (e.g. ``{"depth": 100, "width": 1}``)."""
    import dataclasses

    NETWORKS.get(cfg.network)  # unknown names fail here with the list of valid ones
    return dataclasses.asdict(cfg.params_of(cfg.network))


def receptive_radius(net: torch.nn.Module) -> int:
    """In-plane pixels on one side of an output pixel that its value depends on.

    With reflect padding, an output pixel closer than this to an image (tile) edge sees
    mirrored data, so in-plane tiling that must equal whole-slice inference needs a halo of
    this many pixels. MSD-100 with dilations 1..10: 550.

    Raises
    ------
    ConfigError
        If the module does not declare a ``receptive_radius``.
    """
    radius = getattr(net, "receptive_radius", None)
    if radius is None:
        raise ConfigError(
            f"{type(net).__name__} does not declare a receptive_radius; add the property to "
            f"the network class"
        )
    return int(radius)
