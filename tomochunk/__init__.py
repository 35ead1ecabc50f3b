"""tomochunk: Noise2Inverse denoising of synchrotron X-ray (nano)tomography on Dask.

The public API mirrors the CLI::

    import tomochunk as tc
    scan = tc.ingest("tooth.h5", "scan.zarr")
    rec = tc.reconstruct(scan, "recon.zarr", splits=2)
    model = tc.train(rec, "model", tc.TrainConfig(depth=30, epochs=20))
    den = tc.denoise(rec, model)
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import config
from .config import (
    ClusterConfig,
    DenoiseConfig,
    FilterConfig,
    IngestConfig,
    PreprocessConfig,
    ReconConfig,
    ReportConfig,
    RunConfig,
    TrainConfig,
    load_config,
)
from .errors import (
    BackendUnavailableError,
    ConfigError,
    IncompleteStoreError,
    InputError,
    ModelError,
    OutputExistsError,
    TomochunkError,
)
from .io.store import open_recon, open_scan, open_store

__all__ = [
    "__version__",
    "config",
    "ClusterConfig",
    "DenoiseConfig",
    "FilterConfig",
    "IngestConfig",
    "PreprocessConfig",
    "ReconConfig",
    "ReportConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "BackendUnavailableError",
    "ConfigError",
    "IncompleteStoreError",
    "InputError",
    "ModelError",
    "OutputExistsError",
    "TomochunkError",
    "open_recon",
    "open_scan",
    "open_store",
]
