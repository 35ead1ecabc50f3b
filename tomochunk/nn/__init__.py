"""Denoising networks: MSDNet (default), UNet, and a registry to build them by name.

The registry and the network components (:mod:`.registry`, :mod:`.component`,
:mod:`.builtin`) do not import torch; the network classes are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .component import Network
from .registry import NETWORKS, build_network, network_params_from_config, receptive_radius

__all__ = [
    "NETWORKS",
    "MSDNet",
    "Network",
    "UNet",
    "build_network",
    "network_params_from_config",
    "receptive_radius",
]

_LAZY = {"MSDNet": ".msd", "UNet": ".unet"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
