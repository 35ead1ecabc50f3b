"""The built-in networks as components: MSDNet (``msd``) and UNet (``unet``).

Their Params are the ``train: {msd: {...}, unet: {...}}`` config sections. Importing this
module registers them in :data:`~tomochunk.nn.registry.NETWORKS` (the registry does it on
its first lookup); it does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigError
from ..registry import ParamRangeError
from .component import Network
from .registry import NETWORKS

__all__ = ["MSD", "MSDNetwork", "MSDParams", "UNET", "UNetNetwork", "UNetParams"]


def _positive(section: str, flags: dict[str, str], **values: Any) -> None:
    for name, value in values.items():
        where = f"train.{section}.{name}"
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a positive integer, got {value!r}")
        if value < 1:  # named by the command-line flag where there is one
            named = f"{flags[name]} must be >= 1 ({where}; " if name in flags else (
                f"{where} must be >= 1 (")
            raise ParamRangeError(f"{named}got {value})", param=name, rule="must be >= 1",
                                  value=value)


@dataclass(frozen=True)
class MSDParams:
    """Parameters of the mixed-scale dense network.

    Attributes
    ----------
    depth : int
        Layers (the paper: 100); the receptive radius grows with it (550 px for 100).
    width : int
        Channels per layer.
    """

    depth: int = 100
    width: int = 1

    def __post_init__(self) -> None:
        _positive("msd", {"depth": "--depth", "width": "--width"}, depth=self.depth,
                  width=self.width)


@dataclass(frozen=True)
class UNetParams:
    """Parameters of the UNet.

    Attributes
    ----------
    depth : int
        Levels (poolings); the slice side must be a multiple of ``2**depth``.
    features : int
        Feature channels of the first level (doubled at every level).
    space_to_depth : int
        1: plain UNet. 2: the UNet runs on the 2x2 pixel-unshuffled slice (4x the channels
        at half resolution, FFDNet-style), about 2.5x the training steps per CPU second.
    """

    depth: int = 3
    features: int = 32
    space_to_depth: int = 1

    def __post_init__(self) -> None:
        _positive("unet", {}, depth=self.depth, features=self.features,
                  space_to_depth=self.space_to_depth)


class MSDNetwork(Network):
    """MSDNet (:class:`tomochunk.nn.msd.MSDNet`)."""

    name = "msd"
    description = ("Mixed-scale dense network (Pelt & Sethian 2018); params "
                                  "depth, width, dilations")
    Params = MSDParams
    module_class: ClassVar[str] = "tomochunk.nn.msd:MSDNet"


class UNetNetwork(Network):
    """UNet (:class:`tomochunk.nn.unet.UNet`)."""

    name = "unet"
    description = ("U-Net (Ronneberger et al. 2015), reflect padding; params "
                                  "depth, features")
    Params = UNetParams
    module_class: ClassVar[str] = "tomochunk.nn.unet:UNet"


MSD, UNET = MSDNetwork(), UNetNetwork()
for _component in (MSD, UNET):
    if _component.name not in NETWORKS:
        NETWORKS.register(_component)
