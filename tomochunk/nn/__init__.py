"""Denoising networks: MSDNet (default), UNet, and a registry to build them by name."""

from .msd import MSDNet
from .registry import NETWORKS, build_network, network_params_from_config, receptive_radius
from .unet import UNet

__all__ = [
    "NETWORKS",
    "MSDNet",
    "UNet",
    "build_network",
    "network_params_from_config",
    "receptive_radius",
]
