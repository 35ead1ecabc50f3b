"""Noise2Inverse training (Hendriksen et al. 2020; Flenner et al. 2022).

:func:`train` fits a network (:mod:`tomochunk.nn`) that maps one split reconstruction (or
the mean of K-1 of them) to another, on 2.5D slabs with validation, early stopping and
resumable checkpoints; :func:`load_model` reads the resulting model directory safely.
"""

from __future__ import annotations

from .dataset import context_indices, estimate_noise_sigma, pair_input, pair_target
from .modelfile import TrainedModel, denoise_volume_inprocess, load_model, save_model
from .n2i import train

__all__ = [
    "train",
    "TrainedModel",
    "load_model",
    "save_model",
    "denoise_volume_inprocess",
    "context_indices",
    "pair_input",
    "pair_target",
    "estimate_noise_sigma",
]
