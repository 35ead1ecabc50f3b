"""The trained-model artefact: weights plus JSON metadata in a directory, loaded safely.

Layout of a model directory ``MODEL/`` (contract, see ``docs/architecture.md``)::

    model.pt         torch.save({"state_dict": ..., "metadata_json": json.dumps(meta)})
    metadata.json    the same metadata, for humans
    history.json     {"epochs": [{"epoch", "train_loss", "val_loss", "seconds"}, ...],
                      "best_epoch": k, "stopped": "early_stop" | "epochs" | "max_minutes"}
    checkpoint.pt    the last epoch's training state (written by training, for --resume)

``model.pt`` is written last: a directory without it is an unfinished training run.
Loading uses ``torch.load(..., weights_only=True)``, so a model file cannot run code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError, ModelError
from ..io.atomic import atomic_file, atomic_write_text
from ..io.store import atomic_store
from .metadata import FORMAT_VERSION, REQUIRED_KEYS, validate_metadata

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_KEYS",
    "MODEL_FILE",
    "METADATA_FILE",
    "HISTORY_FILE",
    "CHECKPOINT_FILE",
    "TrainedModel",
    "save_model",
    "load_model",
    "write_model_files",
    "validate_metadata",
    "atomic_torch_save",
    "denoise_volume_inprocess",
]

MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.json"
CHECKPOINT_FILE = "checkpoint.pt"

def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary sibling, then :func:`os.replace` it onto ``path``."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def cpu_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def write_model_files(
    directory: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    history: dict[str, Any] | None = None,
) -> Path:
    """Write ``metadata.json``, ``history.json`` and finally ``model.pt`` into ``directory``.

    Each file is replaced atomically; ``model.pt`` comes last so the directory reads as a
    complete model only once everything is there.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    validate_metadata(metadata, str(directory))
    text = json.dumps(metadata, indent=2, sort_keys=True)
    atomic_write_text(directory / METADATA_FILE, text + "\n")
    if history is not None:
        atomic_write_text(directory / HISTORY_FILE, json.dumps(history, indent=2) + "\n")
    state = {k: v.detach().cpu() for k, v in state_dict.items()}
    atomic_torch_save({"state_dict": state, "metadata_json": text}, directory / MODEL_FILE)
    return directory


def save_model(
    path: str | os.PathLike[str],
    network: torch.nn.Module,
    metadata: dict[str, Any],
    history: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Write a model directory atomically (temporary sibling, renamed when complete).

    ``path`` may be an fsspec URL (``s3://bucket/run/model``, written with
    ``storage_options``): ``model.pt`` is uploaded last, so a model folder is never
    complete before its files are.

    Parameters
    ----------
    path : path-like
        The model directory to create.
    network : torch.nn.Module
        The trained network (its weights are copied to the CPU).
    metadata : dict
        See :data:`REQUIRED_KEYS`; validated before anything is written.
    history : dict, optional
        The loss history, written as ``history.json``.
    overwrite : bool
        Replace an existing ``path`` (only once the new one is complete).

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    ModelError
        If the metadata is incomplete.
    """
    from ..io.urls import is_url

    validate_metadata(metadata, str(path))
    with atomic_store(path, overwrite=overwrite, storage_options=storage_options) as tmp:
        write_model_files(tmp, cpu_state(network), metadata, history)
    return os.fspath(path) if is_url(path) else Path(path)


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "device 'cuda' was requested but torch sees no CUDA GPU here; use --device cpu "
            "or auto, or run on a worker with a GPU"
        )
    return dev


@dataclass
class TrainedModel:
    """A trained Noise2Inverse network with its metadata (normalisation, context, K, ...).

    Attributes
    ----------
    network : torch.nn.Module
        The plain network (normalised input -> normalised output), in eval mode.
    metadata : dict
        See :data:`REQUIRED_KEYS`.
    history : dict or None
        The loss history of training.
    """

    network: torch.nn.Module
    metadata: dict[str, Any]
    history: dict[str, Any] | None = None

    @property
    def context(self) -> int:
        """Number of input slices (channels)."""
        return int(self.metadata["context"])

    @property
    def n_splits(self) -> int:
        """K, the number of split reconstructions the model was trained on."""
        return int(self.metadata["n_splits"])

    @property
    def strategy(self) -> str:
        """Noise2Inverse pairing, ``"X:1"`` or ``"1:X"``."""
        return str(self.metadata["strategy"])

    @property
    def receptive_radius(self) -> int:
        """In-plane receptive radius of the network in pixels (halo for exact tiling)."""
        return int(self.metadata["receptive_radius"])

    @property
    def noise_sigma(self) -> float:
        """Noise standard deviation of one split reconstruction of the training data."""
        return float(self.metadata["noise_sigma"])

    @property
    def device(self) -> torch.device:
        try:
            return next(self.network.parameters()).device
        except StopIteration:
            return torch.device("cpu")

    def to(self, device: str | torch.device) -> TrainedModel:
        """Move the network to ``device`` (``auto``, ``cpu``, ``cuda``); returns self."""
        self.network.to(_resolve_device(device))
        return self

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Denoise a batch of 2.5D inputs.

        Parameters
        ----------
        x : float32 array or tensor, shape (B, context, H, W)
            Un-normalised network inputs (for X:1 the mean of the other K-1 splits), in the
            data's units; build them with :func:`tomochunk.n2i.context_indices`
            and :func:`tomochunk.n2i.pair_input`.

        Returns
        -------
        numpy.ndarray, float32, shape (B, H, W)
            The denoised centre slices in the data's units.
        """
        t = torch.as_tensor(x)
        if t.ndim != 4 or t.shape[1] != self.context:
            raise InputError(
                f"predict expects (batch, {self.context}, H, W) input slabs, got {tuple(t.shape)}"
            )
        n_in, n_out = self.metadata["norm"]["input"], self.metadata["norm"]["output"]
        t = t.to(self.device, torch.float32)
        self.network.eval()
        with torch.no_grad():
            y = self.network((t - n_in["mean"]) / n_in["std"])
        y = y[:, 0] * n_out["std"] + n_out["mean"]
        return y.cpu().numpy().astype(np.float32, copy=False)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False,
             storage_options: Mapping[str, Any] | None = None) -> Any:
        """Write this model as a directory (:func:`save_model`; a path or an fsspec URL)."""
        return save_model(path, self.network, self.metadata, self.history, overwrite=overwrite,
                          storage_options=storage_options)


def _load_detail(exc: Exception) -> str:
    """The cause of a failed ``torch.load``, without torch's advice to drop ``weights_only``
    (loading untrusted pickles can run code: tomochunk never does that)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "weights_only" not in ln and "torch.load" not in ln]
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _model_file(path: Path) -> Path:
    if path.is_dir():
        f = path / MODEL_FILE
        if not f.exists():
            hint = (
                "training did not finish (resume it with --resume)"
                if (path / CHECKPOINT_FILE).exists()
                else "it is not a tomochunk model directory"
            )
            raise ModelError(f"model directory {path} holds no {MODEL_FILE}: {hint}")
        return f
    if not path.exists():
        raise ModelError(f"model {path} does not exist; train one with 'tomochunk train'")
    return path


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu",
               storage_options: Mapping[str, Any] | None = None) -> TrainedModel:
    """Load a model directory (or the ``model.pt`` inside it) safely.

    Parameters
    ----------
    path : path-like or fsspec URL
        ``MODEL/`` or ``MODEL/model.pt``; a URL (read with ``storage_options``) is
        downloaded into a staging folder first.
    device : {"cpu", "cuda", "auto"} or torch.device

    Raises
    ------
    ModelError
        If the file is missing, is not a tomochunk model, has missing or invalid metadata
        (the missing keys are named), an unknown ``format_version``, or weights that do not
        fit the network the metadata describes.
    """
    from ..io.urls import exists, fetch, is_url, staging_dir
    from ..nn.registry import build_network

    if is_url(path):
        url = os.fspath(path)
        if not exists(url, storage_options):
            raise ModelError(f"model {url} does not exist; train one with 'tomochunk train'")
        with staging_dir(url) as tmp:
            tmp.mkdir(parents=True)
            return load_model(fetch(url, tmp, storage_options), device)
    path = Path(path)
    f = _model_file(path)
    try:
        obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a model"
        raise ModelError(
            f"{f} is not a loadable tomochunk model file ({_load_detail(exc)}); give the "
            "model folder written by 'tomochunk train', or train one"
        ) from exc
    if not isinstance(obj, dict) or "state_dict" not in obj or "metadata_json" not in obj:
        raise ModelError(
            f"{f} is not a tomochunk model: expected a dict with 'state_dict' and "
            "'metadata_json' (written by tomochunk train)"
        )
    try:
        meta = json.loads(obj["metadata_json"])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{f}: metadata_json is not valid JSON ({exc})") from exc
    validate_metadata(meta, str(f))
    try:
        net = build_network(
            meta["network"], meta["in_channels"], 1, **meta["network_params"]
        )
        net.load_state_dict(obj["state_dict"], strict=True)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{f}: the weights do not fit network {meta['network']!r} with parameters "
            f"{meta['network_params']}: {str(exc).splitlines()[0]}"
        ) from exc
    history = None
    hist_file = f.parent / HISTORY_FILE
    if hist_file.exists():
        try:
            history = json.loads(hist_file.read_text())
        except ValueError:
            history = None
    net.eval()
    model = TrainedModel(net, meta, history)
    return model.to(device)


def denoise_volume_inprocess(
    model: TrainedModel, split_volumes: np.ndarray, batch_size: int = 4
) -> np.ndarray:
    """Denoise a whole volume in memory: :func:`tomochunk.n2i.denoise_volume` with the model.

    For every pairing k (0..K-1) the network input is built as in training
    (:func:`~tomochunk.n2i.pair_input` of the ``context`` slices from
    :func:`~tomochunk.n2i.context_indices`), and the K predictions are averaged
    (Hendriksen et al. 2020, Eq. 9).

    Parameters
    ----------
    model : TrainedModel
    split_volumes : array, shape (K, Z, H, W)
    batch_size : int
        Slices per forward pass.

    Returns
    -------
    numpy.ndarray, float32, shape (Z, H, W)
    """
    from ..n2i import denoise_volume

    return denoise_volume(split_volumes, model, batch_size=batch_size)
