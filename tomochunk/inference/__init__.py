"""Noise2Inverse inference: a trained model applied chunk by chunk over the split volumes.

- :mod:`~tomochunk.inference.denoise`: :func:`denoise` (the stage) and :func:`denoise_array`
  (whole volume in memory, the exactness reference);
- :mod:`~tomochunk.inference.models`: the model, loaded once per worker process;
- :mod:`~tomochunk.inference.transfer`: does the model fit the scan (:func:`check_transfer`);
- :mod:`~tomochunk.inference.tiling`: in-plane tiles, exact or blended;
- :mod:`~tomochunk.inference.ensemble`: the D4 self-ensemble;
- :mod:`~tomochunk.inference.threads`: torch threads of a task on a Dask worker.

The pairing, merging, noise estimate and K-prediction average are the Noise2Inverse core
(:mod:`tomochunk.n2i`), shared with training.
"""

from ..n2i import estimate_split_noise, merge_splits
from .denoise import denoise, denoise_array
from .models import load_model_cached
from .threads import task_threads
from .tiling import tile_windows
from .transfer import TransferCheck, check_transfer

__all__ = [
    "TransferCheck",
    "check_transfer",
    "denoise",
    "denoise_array",
    "estimate_split_noise",
    "load_model_cached",
    "merge_splits",
    "task_threads",
    "tile_windows",
]
