"""The Noise2Inverse core, shared by training and inference (numpy only, no torch).

- :mod:`~tomochunk.n2i.pairs`: the 2.5D context of a slice, the input and target of a
  pairing (``X:1`` / ``1:X``) and merging ``m * K`` splits into K;
- :mod:`~tomochunk.n2i.noise`: the noise of one split, estimated from the K splits;
- :mod:`~tomochunk.n2i.reference`: the K predictions averaged, for a slab or a whole volume.
"""

from .noise import circle_mask, estimate_noise_sigma, estimate_split_noise
from .pairs import (
    Strategy,
    context_indices,
    merge_splits,
    pair_input,
    pair_target,
    reflect_indices,
)
from .reference import Predict, denoise_slab, denoise_volume

__all__ = [
    "Predict",
    "Strategy",
    "circle_mask",
    "context_indices",
    "denoise_slab",
    "denoise_volume",
    "estimate_noise_sigma",
    "estimate_split_noise",
    "merge_splits",
    "pair_input",
    "pair_target",
    "reflect_indices",
]
