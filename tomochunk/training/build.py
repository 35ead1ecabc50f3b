"""The network of a training run and the metadata its model file carries."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, to_dict
from ..errors import InputError
from ..io.jsonsafe import json_safe
from .inputs import ReconInfo
from .modelfile import FORMAT_VERSION

__all__ = ["build_network_for", "check_network_fits", "model_metadata"]


def build_network_for(cfg: TrainConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    from ..nn.registry import build_network, network_params_from_config

    params = network_params_from_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_network(cfg.network, cfg.context, 1, **params)
    return net, json_safe(params, finite=False)


def check_network_fits(net: torch.nn.Module, context: int, patch: int) -> None:
    """Run the network once on a zero patch so a size it cannot take fails before training."""
    try:
        with torch.no_grad():
            net(torch.zeros(1, context, patch, patch))
    except InputError as exc:
        raise InputError(f"training patches of {patch}x{patch} do not fit the network: {exc}") \
            from exc


def model_metadata(
    cfg: TrainConfig,
    info: ReconInfo,
    net: torch.nn.Module,
    params: dict[str, Any],
    norm: dict[str, dict[str, float]],
    sigma: float,
) -> dict[str, Any]:
    from .. import __version__
    from ..nn.registry import receptive_radius

    aps = info.attrs.get("angles_per_split")
    return {
        "format_version": FORMAT_VERSION,
        "network": cfg.network,
        "network_params": params,
        "in_channels": cfg.context,
        "context": cfg.context,
        "n_splits": info.n_splits,
        "strategy": cfg.strategy,
        # recon stores one count per split (a list); the model keeps the mean count per split
        "angles_per_split": None if aps is None else int(round(float(np.mean(aps)))),
        "filter": info.attrs.get("filter"),
        "pixel_size_um": info.pixel_size_um,
        "noise_sigma": float(sigma),
        "norm": norm,
        "receptive_radius": int(receptive_radius(net)),
        # the sections and, for readers of older models, the old flat network keys
        "train_config": json_safe({**to_dict(cfg), **cfg.flat_values()}, finite=False),
        "recon_attrs": info.attrs,
        "tomochunk_version": __version__,
        "data_shape": [info.n_splits, info.n_z, info.height, info.width],
        "train_slices": list(info.layout.train),
        "val_slices": list(info.layout.val),
        "patch_size": info.patch,
    }
