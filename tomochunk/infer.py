"""Former path of :mod:`tomochunk.inference` (kept for scripts and benchmarks)."""

from .inference import (  # noqa: F401
    TransferCheck,
    check_transfer,
    denoise,
    denoise_array,
    estimate_split_noise,
    load_model_cached,
    merge_splits,
    task_threads,
    tile_windows,
)
