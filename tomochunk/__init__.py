"""tomochunk: Noise2Inverse denoising of synchrotron X-ray (nano)tomography on Dask.

The public API mirrors the CLI::

    import tomochunk as tc
    scan = tc.ingest("tooth.h5", "scan.zarr")                # or tc.open_scan("scan.zarr")
    rec = tc.reconstruct(scan, "recon.zarr", splits=2)      # full(z,y,x), split(split,z,y,x)
    model = tc.train(rec, "model", tc.TrainConfig(depth=30, epochs=20))
    den = tc.denoise(rec, model)                            # lazy xr.DataArray
    med = tc.filters.median(rec.full, radius=2)
    tc.metrics.frc(rec.split[0, 10].values, rec.split[1, 10].values)
    tc.run("scan.h5", "run1")                               # the whole pipeline

Stage functions work on whatever Dask scheduler is active; :func:`tomochunk.run` and the CLI
start a LocalCluster (or connect to ``ClusterConfig(scheduler=...)``). Importing tomochunk
registers the ``.tomo`` xarray accessor (``vol.tomo.median(2)``, ``ds.tomo.denoise(model)``).
Names backed by PyTorch are imported on first use, so ``import tomochunk`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from . import accessor as _accessor  # noqa: F401  (registers the .tomo accessor)
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

# name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    # stages
    "ingest": ("tomochunk.io.ingest", "ingest"),
    "from_arrays": ("tomochunk.io.ingest", "from_arrays"),
    "validate_scan": ("tomochunk.io.ingest", "validate_scan"),
    "find_center": ("tomochunk.preprocess", "find_center"),
    "preprocess_block": ("tomochunk.preprocess", "preprocess_block"),
    "reconstruct": ("tomochunk.recon.volume", "reconstruct"),
    "train": ("tomochunk.training.n2i", "train"),
    "load_model": ("tomochunk.training.modelfile", "load_model"),
    "TrainedModel": ("tomochunk.training.modelfile", "TrainedModel"),
    "save_model": ("tomochunk.training.modelfile", "save_model"),
    "denoise": ("tomochunk.inference", "denoise"),
    "apply_filter": ("tomochunk.filters", "apply_filter"),
    "make_report": ("tomochunk.report", "make_report"),
    "run": ("tomochunk.pipeline", "run"),
    "demo": ("tomochunk.pipeline", "demo"),
    "connect": ("tomochunk.runtime.cluster", "connect"),
    # synthetic scans
    "ScanSpec": ("tomochunk.phantom", "ScanSpec"),
    "demo_spec": ("tomochunk.phantom", "demo_spec"),
    "simulate_scan": ("tomochunk.phantom", "simulate_scan"),
    "make_truth": ("tomochunk.phantom", "make_truth"),
    # subpackages
    "preprocess": ("tomochunk.preprocess", None),
    "recon": ("tomochunk.recon", None),
    "nn": ("tomochunk.nn", None),
    "filters": ("tomochunk.filters", None),
    "metrics": ("tomochunk.metrics", None),
    "phantom": ("tomochunk.phantom", None),
    "report": ("tomochunk.report", None),
    "training": ("tomochunk.training", None),
    "pipeline": ("tomochunk.pipeline", None),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'tomochunk' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
    *_LAZY,
]
