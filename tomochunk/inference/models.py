"""The model that inference applies: loaded once per worker process, validated once."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import dask
import numpy as np

from ..errors import ModelError

__all__ = ["Predictor", "load_model_cached", "model_ref", "worker_model"]


class Predictor(Protocol):
    """What inference needs of a model (:class:`tomochunk.training.modelfile.TrainedModel`)."""

    metadata: dict[str, Any]

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str, mtime_ns: int) -> Any:
    from ..training.modelfile import load_model

    return load_model(path, device=device)


def load_model_cached(path: str | os.PathLike[str], device: str = "cpu") -> Any:
    """Load a model file once per process (cached by path, device and modification time)."""
    p = Path(path)
    f = p / "model.pt" if p.is_dir() else p
    mtime = f.stat().st_mtime_ns if f.exists() else 0
    return _load(str(p.resolve()), device, mtime)


def worker_model(ref: Any, device: str) -> Any:
    if isinstance(ref, str):
        return load_model_cached(ref, device)
    if device != "cpu" and hasattr(ref, "to"):
        ref.to(device)
    return ref


def model_ref(model: Any, storage_options: Any = None) -> tuple[Any, Mapping[str, Any], str]:
    """``(what tasks receive, metadata, description)``; a path is validated here once.

    A model URL is downloaded and loaded here, and the tasks receive the loaded model.
    """
    from ..io.urls import is_url

    if is_url(model):
        from ..training.modelfile import load_model

        loaded = load_model(model, device="cpu", storage_options=storage_options)
        return dask.delayed(loaded, pure=True), loaded.metadata, os.fspath(model)
    if isinstance(model, str | os.PathLike):
        from ..training.modelfile import load_model

        loaded = load_model(model, device="cpu")  # validates the file before any work
        return str(Path(model).resolve()), loaded.metadata, str(model)
    if not hasattr(model, "predict") or not isinstance(getattr(model, "metadata", None), dict):
        raise ModelError(
            f"model must be a model path or a trained model with .predict and .metadata, got "
            f"{type(model).__name__}"
        )
    for key in ("context", "n_splits", "strategy"):
        if key not in model.metadata:
            raise ModelError(f"the model metadata lacks {key!r}; retrain the model")
    return dask.delayed(model, pure=True), model.metadata, type(model).__name__
