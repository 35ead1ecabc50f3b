"""Halo-overlapped chunked Noise2Inverse inference over the split reconstructions.

Noise2Inverse (Hendriksen, Pelt & Batenburg 2020, IEEE TCI 6:1320, Eq. 9) denoises by
applying the trained network to every pairing ``k`` of the K split reconstructions (for
``X:1`` the input is the mean of the other K-1 splits) and averaging the K predictions.
Flenner et al. (2022, J. Synchrotron Rad. 29:230) feed 2.5D input: ``context`` slices
centred on the slice to denoise.

Chunking
--------
The volume is cut along z into chunks of ``chunk_z`` slices, whole slices by default. A chunk
needs ``context // 2`` more slices on each side; they are read from the neighbouring chunks
(:func:`tomochunk.chunks.map_z_halo`), and at the volume ends the context is mirrored
with :func:`tomochunk.training.dataset.context_indices`, exactly as in training. Every output
slice therefore sees the same input as in whole-volume inference (:func:`denoise_array`):
chunked == whole to float rounding, for any ``chunk_z``.

In-plane tiling (``tile``) bounds the network's activations for huge slices (MSD-100 keeps
~100 feature maps per pixel). Each tile is extended by ``tile_halo`` pixels (clipped at the
slice border):

- ``tile_halo >= receptive radius`` (the default, 550 px for MSD-100): every kept pixel sees
  its whole receptive field, so tiling is **exact**; the tile cores are pasted.
- ``tile_halo < receptive radius``: a faster **approximation**; neighbouring tiles overlap by
  ``2 * tile_halo`` pixels and are blended with complementary cosine² ramps.

Exact tiling assumes a translation-equivariant network (MSDNet: dilated convolutions only). A
UNet's pooling grid moves with the tile origin, so its tiles are an approximation even with
a full halo; use whole slices (the default) for exact UNet inference.

Workers
-------
A model given as a path is loaded once per worker process (:func:`load_model_cached`, keyed by
path, device and file time) rather than shipped with every task; a model object is put into
the graph once and shared. A worker with ``N`` threads runs ``N`` tasks at once, each with
one torch thread (:func:`task_threads`); tasks ask for ``{"GPU": 1}`` when a worker of the
active client advertises a GPU (:func:`tomochunk.cluster.gpu_resources`). Dask's low-level task
fusion (and xarray's ``to_zarr`` graph) drop such annotations, so :func:`denoise` stores with
fusion off when it routes to GPUs; compute a lazy result under
``dask.config.set({"optimization.fuse.active": False})`` to keep the routing.

Transfer
--------
Applying a model to another scan (:func:`check_transfer`) compares its metadata with the
target: K and context (errors), angles per split, reconstruction filter, pixel size and the
noise level of one split (warnings, or :class:`~tomochunk.errors.ModelError` with
``strict``). A store with ``K_store = m * K_model`` splits is merged to ``K_model`` splits by
averaging splits ``j, j + K_model, ...``: projection ``i`` belongs to split ``i mod K``, so
this is exactly the reconstruction of the model's interleaved split ``j`` (the
reconstruction is linear). Any other K differs from the model's: an error.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .chunks import Slab, ZarrSource, map_z_halo
from .config import DenoiseConfig, replace
from .errors import ConfigError, InputError, ModelError
from .io.store import check_output_path, open_recon, open_store, write_dataset
from .io.urls import is_url
from .progress import current_client, get_logger

__all__ = [
    "denoise",
    "denoise_array",
    "check_transfer",
    "TransferCheck",
    "estimate_split_noise",
    "load_model_cached",
    "merge_splits",
    "task_threads",
    "tile_windows",
]

log = get_logger("infer")

PIXEL_SIZE_RTOL = 1e-3


class Predictor(Protocol):
    """What inference needs of a model (:class:`tomochunk.training.modelfile.TrainedModel`)."""

    metadata: dict[str, Any]

    def predict(self, x: np.ndarray) -> np.ndarray: ...


# ----------------------------------------------------------------------------- model loading


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str, mtime_ns: int) -> Any:
    from .training.modelfile import load_model

    return load_model(path, device=device)


def load_model_cached(path: str | os.PathLike[str], device: str = "cpu") -> Any:
    """Load a model file once per process (cached by path, device and modification time)."""
    p = Path(path)
    f = p / "model.pt" if p.is_dir() else p
    mtime = f.stat().st_mtime_ns if f.exists() else 0
    return _load(str(p.resolve()), device, mtime)


def _worker_model(ref: Any, device: str) -> Any:
    if isinstance(ref, str):
        return load_model_cached(ref, device)
    if device != "cpu" and hasattr(ref, "to"):
        ref.to(device)
    return ref


def task_threads() -> int | None:
    """torch threads for one inference task on a Dask worker: 1 (None outside a worker).

    A worker with ``N`` threads (:func:`tomochunk.cluster.worker_threads`) runs ``N`` tasks
    at once, so each task's torch calls get one thread: ``N`` cores busy and no ``N²``
    oversubscription (``N`` torch threads per task made a 2-thread worker several times
    slower in ``benchmarks/inference.py``). For one task using many cores, start workers
    with one thread and let the cluster run one task per worker process.
    """
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return None
    return 1


@contextlib.contextmanager
def _torch_threads() -> Iterator[None]:
    import torch

    n = task_threads()
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)


# ----------------------------------------------------------------------------- numpy core


def tile_windows(n: int, tile: int, halo: int, blend: bool) -> list[tuple[int, int, np.ndarray]]:
    """Tiles of an axis of length ``n``: ``(start, stop, weight)`` of each extended tile.

    Cores ``[c0, c1)`` of ``tile`` pixels are extended by ``halo`` on both sides (clipped).
    Without ``blend`` the weight is 1 on the core and 0 on the halo (exact pasting); with it,
    the ``2 * halo`` overlaps get complementary cosine² ramps (the weights sum to one).
    """
    out = []
    for c0 in range(0, n, tile):
        c1 = min(n, c0 + tile)
        e0, e1 = max(0, c0 - halo), min(n, c1 + halo)
        pos = np.arange(e0, e1) + 0.5
        if not blend or halo == 0:
            w = ((pos > c0) & (pos < c1)).astype(np.float64)
        else:
            w = np.ones(e1 - e0)
            if c0 > 0:
                t = np.clip((pos - (c0 - halo)) / (2 * halo), 0, 1)
                w *= np.sin(0.5 * np.pi * t) ** 2
            if c1 < n:
                t = np.clip((pos - (c1 - halo)) / (2 * halo), 0, 1)
                w *= np.cos(0.5 * np.pi * t) ** 2
        out.append((e0, e1, w))
    return out


def _predict(model: Predictor, x: np.ndarray, tile: int | None, halo: int,
             blend: bool) -> np.ndarray:
    """Predict ``(B, C, H, W) -> (B, H, W)``, tiled in-plane when ``tile`` is set."""
    b, _, h, w = x.shape
    if tile is None or (tile >= h and tile >= w):
        return np.asarray(model.predict(np.ascontiguousarray(x)), dtype=np.float32)
    out = np.zeros((b, h, w), np.float64)
    wsum = np.zeros((h, w), np.float64)
    for y0, y1, wy in tile_windows(h, tile, halo, blend):
        for x0, x1, wx in tile_windows(w, tile, halo, blend):
            weight = wy[:, None] * wx[None, :]
            pred = model.predict(np.ascontiguousarray(x[:, :, y0:y1, x0:x1]))
            out[:, y0:y1, x0:x1] += weight * pred
            wsum[y0:y1, x0:x1] += weight
    return (out / wsum).astype(np.float32)


def _denoise_slab(slab: np.ndarray, info: Slab, *, model: Any, device: str = "cpu",
                  batch_size: int = 4, tile: int | None = None, tile_halo: int = 0,
                  blend: bool = False, ensemble: int = 1) -> np.ndarray:
    """Denoise the core slices ``[info.z0, info.z1)`` of a split slab ``(K, lo:hi, H, W)``.

    A slab of ``m * K_model`` splits is merged to the model's ``K_model`` first. With
    ``ensemble`` > 1 every prediction is the D4 self-ensemble (:mod:`tomochunk.ensemble`).
    """
    from .ensemble import ensemble_predict
    from .training.dataset import context_indices, pair_input

    net = _worker_model(model, device)
    meta = net.metadata
    context, strategy = int(meta["context"]), str(meta["strategy"])
    slab = merge_splits(np.asarray(slab, dtype=np.float32), int(meta["n_splits"]))
    n_k = slab.shape[0]
    zs = list(range(info.z0, info.z1))
    idx = [context_indices(z, info.n_z, context) - info.lo for z in zs]
    if any(i.min() < 0 or i.max() >= slab.shape[1] for i in idx):
        raise ValueError(f"slab {info} is too thin for a context of {context} slices")
    out = np.zeros((len(zs),) + slab.shape[2:], np.float64)
    with _torch_threads():
        for k in range(n_k):
            inputs = pair_input(slab, k, strategy)  # (hi - lo, H, W), same per voxel
            for b0 in range(0, len(zs), batch_size):
                x = np.stack([inputs[i] for i in idx[b0:b0 + batch_size]])
                out[b0:b0 + len(x)] += ensemble_predict(
                    lambda a: _predict(net, a, tile, tile_halo, blend), x, ensemble)
    return (out / n_k).astype(np.float32)


def _tiling(meta: Mapping[str, Any], tile: int | None,
            tile_halo: int | None) -> tuple[int | None, int, bool]:
    """``(tile, halo, blend)``: exact when the halo covers the receptive radius."""
    if tile is None:
        return None, 0, False
    radius = meta.get("receptive_radius")
    if tile_halo is None:
        if radius is None:
            raise ModelError(
                "the model metadata has no receptive_radius, so the exact in-plane halo is "
                "unknown: give tile_halo (--tile-halo) or do not tile"
            )
        tile_halo = int(radius)
    blend = radius is None or tile_halo < int(radius)
    # a pooling network (UNet) is translation-equivariant only on its alignment grid: tiles
    # and halos in multiples of it put every tile's origin on the grid of the whole slice
    a = _alignment(meta)
    tile, tile_halo = -(-int(tile) // a) * a, -(-int(tile_halo) // a) * a
    return int(tile), int(tile_halo), bool(blend)


def _alignment(meta: Mapping[str, Any]) -> int:
    """Shifts (pixels) under which the model's network is translation-equivariant."""
    if meta.get("network") != "unet":
        return 1
    params = meta.get("network_params") or {}
    return 2 ** int(params.get("depth", 3)) * int(params.get("space_to_depth", 1))


def denoise_array(
    splits: np.ndarray,
    model: Predictor,
    *,
    batch_size: int = 4,
    tile: int | None = None,
    tile_halo: int | None = None,
    ensemble: int = 1,
) -> np.ndarray:
    """Denoise whole split volumes ``(K, Z, H, W)`` in one call (the exactness reference).

    Parameters
    ----------
    splits : numpy.ndarray, shape (K, Z, H, W)
        The split reconstructions; K must equal the model's ``n_splits``.
    model : TrainedModel
        Anything with ``metadata`` (``context``, ``strategy``, ``n_splits``) and
        ``predict((B, context, H, W)) -> (B, H, W)`` on un-normalised data.
    batch_size : int
        Slices per forward pass.
    tile, tile_halo : int, optional
        In-plane tiling (see the module docstring).
    ensemble : {1, 2, 4, 8}
        Symmetries of the D4 self-ensemble averaged per prediction (1, the default: none).

    Returns
    -------
    numpy.ndarray, float32, shape (Z, H, W)
        The mean of the K predictions (Noise2Inverse).
    """
    splits = np.asarray(splits, dtype=np.float32)
    meta = model.metadata
    if splits.ndim != 4 or splits.shape[0] != int(meta["n_splits"]):
        raise InputError(
            f"expected ({meta['n_splits']}, Z, H, W) split volumes for this model, got "
            f"shape {splits.shape}"
        )
    n_z = splits.shape[1]
    t, h, blend = _tiling(meta, tile, tile_halo)
    return _denoise_slab(splits, Slab(0, n_z, 0, n_z, n_z), model=model,
                         batch_size=batch_size, tile=t, tile_halo=h, blend=blend,
                         ensemble=ensemble)


# ----------------------------------------------------------------------------- transfer checks


def merge_splits(split: Any, k_model: int) -> Any:
    """Average ``K_store = m * k_model`` splits into ``k_model`` interleaved splits.

    Split ``j`` of the result is the mean of store splits ``j, j + k_model, ...``: with
    projection ``i`` in split ``i mod K``, that is the (linear) reconstruction of the
    model's split ``j``. Works on numpy, Dask and xarray ``(K, z, y, x)`` arrays.
    """
    k_store = split.shape[0]
    if k_store == k_model:
        return split
    if k_store % k_model:
        raise ModelError(f"{k_store} splits cannot be merged into {k_model}")
    parts = [split[j::k_model].mean(axis=0) if not isinstance(split, xr.DataArray)
             else split[j::k_model].mean("split") for j in range(k_model)]
    if isinstance(split, xr.DataArray):
        return xr.concat(parts, dim="split").transpose("split", ...)
    stack = da.stack if isinstance(split, da.Array) else np.stack
    return stack(parts).astype(np.float32)


def estimate_split_noise(split: Any, n_slices: int = 8) -> float:
    """Noise std of ONE split reconstruction from ``n_slices`` evenly spaced slices.

    Uses :func:`tomochunk.training.dataset.estimate_noise_sigma` (for K = 2,
    ``std((a - b) / sqrt 2)`` over the inscribed circle), as training does for the model's
    ``noise_sigma``; only the sampled slices are read.
    """
    from .training.dataset import estimate_noise_sigma

    n_z = split.shape[1]
    zs = np.unique(np.linspace(0, n_z - 1, min(n_slices, n_z)).round().astype(int))
    sample = split[:, zs]
    sample = sample.values if isinstance(sample, xr.DataArray) else sample
    sample = sample.compute() if isinstance(sample, da.Array) else sample
    return float(estimate_noise_sigma(np.asarray(sample, dtype=np.float32)))


def _describe(mismatch: tuple[Any, ...]) -> str:
    name, model_value, scan_value, *note = mismatch
    text = f"{name}: model {model_value!r}, scan {scan_value!r}"
    return text + (f" ({note[0]})" if note else "")


@dataclass
class TransferCheck:
    """Outcome of comparing a model's metadata with a target reconstruction.

    Attributes
    ----------
    k_store, k_model : int
        Splits in the store and in the model (``k_store`` is a multiple; merged if larger).
    mismatches : list of (field, model value, scan value[, note])
        Fields that differ beyond tolerance.
    noise_scan : float
        Noise of one (merged) split of the target.
    """

    k_store: int
    k_model: int
    noise_scan: float
    mismatches: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return self.k_store != self.k_model

    def message(self) -> str:
        parts = [_describe(m) for m in self.mismatches]
        return (
            "the model was trained on data that differs from this scan ("
            + "; ".join(parts)
            + "); the denoised volume may contain invented or missing structure. Retrain on "
            "this scan, or reconstruct it like the training scan"
        )


def _scan_pixel_size(ds: xr.Dataset) -> float | None:
    ps = ds.attrs.get("pixel_size_um")
    return None if ps is None else float(ps)


def check_transfer(ds: xr.Dataset, meta: Mapping[str, Any], config: DenoiseConfig,
                   where: str = "reconstruction") -> TransferCheck:
    """Check that a model with metadata ``meta`` fits the reconstruction ``ds``.

    Raises
    ------
    InputError
        ``ds`` has no ``split`` volume or fewer slices than the model's context.
    ModelError
        K of the store is not a multiple of the model's; or (``config.strict``) any
        mismatch of angles per split, filter, pixel size or noise level.

    Warns
    -----
    UserWarning
        Each mismatching field with both values, unless strict.
    """
    if "split" not in ds.variables:
        raise InputError(
            f"{where} has no 'split' variable (the K split reconstructions that Noise2Inverse "
            "denoises); re-run 'tomochunk recon' with --splits 2 or more"
        )
    split = ds["split"]
    if split.ndim != 4:
        raise InputError(f"{where}: 'split' must be (split, z, y, x), got dims {split.dims}")
    k_store, n_z = int(split.shape[0]), int(split.shape[1])
    k_model, context = int(meta["n_splits"]), int(meta["context"])
    if k_store % k_model:
        raise ModelError(
            f"the model was trained on K={k_model} splits but {where} holds K={k_store}; "
            f"reconstruct the scan with --splits {k_model} (or a multiple of {k_model}, which "
            "is merged), or retrain the model on this store"
        )
    if n_z < context:
        raise InputError(
            f"{where} has {n_z} slices, fewer than the model's context of {context} slices; "
            "reconstruct more detector rows or use a model trained with a smaller --context"
        )
    factor = k_store // k_model
    attrs = ds.attrs
    mismatches: list[tuple[Any, ...]] = []
    aps = attrs.get("angles_per_split")
    if aps is not None and meta.get("angles_per_split") is not None:
        # recon stores one count per split; compare the mean count per (merged) split
        aps_eff = int(round(float(np.mean(aps)))) * factor
        if aps_eff != int(meta["angles_per_split"]):
            mismatches.append(("angles_per_split", int(meta["angles_per_split"]), aps_eff))
    if attrs.get("filter") is not None and meta.get("filter") is not None:
        if str(attrs["filter"]) != str(meta["filter"]):
            mismatches.append(("filter", meta["filter"], attrs["filter"]))
    ps_scan, ps_model = _scan_pixel_size(ds), meta.get("pixel_size_um")
    if ps_scan is not None and ps_model is not None:
        if not math.isclose(ps_scan, float(ps_model), rel_tol=PIXEL_SIZE_RTOL):
            mismatches.append(("pixel_size_um", float(ps_model), ps_scan))
    noise = estimate_split_noise(merge_splits(split.data, k_model))
    noise_model = float(meta.get("noise_sigma") or 0.0)
    if noise_model > 0:
        rel = abs(noise - noise_model) / noise_model
        if rel > config.noise_tolerance:
            mismatches.append(("noise_sigma", float(f"{noise_model:.4g}"), float(f"{noise:.4g}"),
                               f"relative difference {rel:.2f} > tolerance "
                               f"{config.noise_tolerance}"))
    check = TransferCheck(k_store, k_model, noise, mismatches)
    if mismatches:
        msg = check.message()
        if config.strict:
            raise ModelError(msg + " (strict mode: remove --strict to only warn)")
        log.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    if check.merged:
        log.info("merging %d splits into the model's %d (splits j, j+%d, ... averaged)",
                 k_store, k_model, k_model)
    return check


# ----------------------------------------------------------------------------- API


def _check_config(cfg: DenoiseConfig) -> None:
    problems = []
    if cfg.chunk_z < 1:
        problems.append(f"chunk_z must be >= 1 (got {cfg.chunk_z})")
    if cfg.batch_size < 1:
        problems.append(f"batch_size must be >= 1 (got {cfg.batch_size})")
    if cfg.tile is not None and cfg.tile < 16:
        problems.append(f"tile must be >= 16 pixels or None for whole slices (got {cfg.tile})")
    if cfg.tile_halo is not None and cfg.tile_halo < 0:
        problems.append(f"tile_halo must be >= 0 (got {cfg.tile_halo})")
    if not cfg.noise_tolerance > 0:
        problems.append(f"noise_tolerance must be > 0 (got {cfg.noise_tolerance})")
    if cfg.ensemble not in (1, 2, 4, 8):
        problems.append(f"ensemble must be 1, 2, 4 or 8 (got {cfg.ensemble})")
    if problems:
        raise ConfigError("invalid denoise configuration: " + "; ".join(problems))


def _open(recon: Any, storage_options: Any = None) -> tuple[xr.Dataset, str]:
    if isinstance(recon, xr.Dataset):
        return recon, "recon dataset"
    if isinstance(recon, xr.DataArray):
        if recon.name != "split" and "split" not in recon.dims:
            raise InputError(
                f"expected the 'split' volumes (split, z, y, x), got DataArray {recon.name!r} "
                f"with dims {recon.dims}"
            )
        coords = {c: v.variable for c, v in recon.coords.items() if "split" not in v.dims}
        ds = xr.Dataset(coords={**coords, "split": recon.variable}, attrs=recon.attrs)
        return ds, "split DataArray"
    return open_recon(recon, storage_options), str(recon)


def _model_ref(model: Any, storage_options: Any = None) -> tuple[Any, Mapping[str, Any], str]:
    """``(what tasks receive, metadata, description)``; a path is validated here once.

    A model URL is downloaded and loaded here, and the tasks receive the loaded model.
    """
    from .io.urls import is_url

    if is_url(model):
        from .training.modelfile import load_model

        loaded = load_model(model, device="cpu", storage_options=storage_options)
        return dask.delayed(loaded, pure=True), loaded.metadata, os.fspath(model)
    if isinstance(model, str | os.PathLike):
        from .training.modelfile import load_model

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


def _write(result: xr.DataArray, out: str | os.PathLike[str], *, overwrite: bool,
           attrs: dict[str, Any], routed: bool, storage_options: Any = None) -> None:
    """Write ``denoised.zarr`` atomically, chunk by chunk (each task writes its region).

    With GPU routing the data are stored with :func:`dask.array.store` and task fusion off:
    xarray's ``to_zarr`` graph and low-level fusion both drop the ``resources`` annotation.
    """
    if not routed:
        write_dataset(result.to_dataset(), out, overwrite=overwrite, attrs=attrs,
                      label="denoising", storage_options=storage_options)
        return
    import zarr

    from .io.store import atomic_store, float_encoding
    from .progress import compute

    with atomic_store(out, overwrite=overwrite, attrs=attrs,
                      storage_options=storage_options) as tmp:
        ds = result.to_dataset()
        ds.to_zarr(str(tmp), mode="w", zarr_format=3, consolidated=False, compute=False,
                   encoding=float_encoding(ds))  # metadata and coordinates only
        target = zarr.open_array(str(tmp / str(result.name)), mode="r+")
        stored = da.store(result.data, target, lock=False, compute=False)
        with dask.config.set({"optimization.fuse.active": False}):
            compute(stored, label="denoising")


def denoise(
    recon: str | os.PathLike[str] | xr.Dataset | xr.DataArray,
    model: str | os.PathLike[str] | Predictor,
    out: str | os.PathLike[str] | None = None,
    *,
    config: DenoiseConfig | None = None,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> xr.DataArray:
    """Denoise a reconstruction with a trained Noise2Inverse model, chunk by chunk.

    ``recon``, ``model`` and ``out`` may be fsspec URLs (``s3://...``) opened with
    ``storage_options``.

    Parameters
    ----------
    recon : path, xarray.Dataset or xarray.DataArray
        ``recon.zarr`` (or the dataset) with ``split(split, z, y, x)``, or the ``split``
        DataArray itself.
    model : path or TrainedModel
        A model directory / ``model.pt`` (loaded once per worker) or a loaded model.
    out : path, optional
        Write ``denoised(z, y, x)`` float32 to this Zarr store (atomically) and return the
        written variable; None returns the lazy result.
    config : DenoiseConfig, optional
        ``chunk_z``, ``tile``, ``tile_halo``, ``strict``, ``noise_tolerance``, ``device``,
        ``batch_size``, ``ensemble``; ``overrides`` (``chunk_z=8``, ...) are applied on top.
    overwrite : bool
        Replace an existing ``out`` (only once the new one is complete).

    Returns
    -------
    xarray.DataArray
        ``denoised(z, y, x)`` with the coords of the split volumes (lazy when ``out`` is
        None).

    Raises
    ------
    OutputExistsError, InputError, ModelError, ConfigError
        Before any work: existing output, no ``split`` in the store, too few slices, a
        model whose K does not divide the store's, an unreadable model, bad settings; with
        ``strict``, any metadata mismatch (see :func:`check_transfer`).
    """
    cfg = replace(config or DenoiseConfig(), **overrides)
    _check_config(cfg)
    if out is not None:
        check_output_path(out, overwrite, storage_options)
    ds, where = _open(recon, storage_options)
    ref, meta, model_desc = _model_ref(model, storage_options)
    check = check_transfer(ds, meta, cfg, where)
    tile, halo, blend = _tiling(meta, cfg.tile, cfg.tile_halo)
    if blend and tile is not None:
        log.info("in-plane tiles with a %d px halo < receptive radius %s: blended "
                 "approximation (not exact)", halo, meta.get("receptive_radius"))
    split = ds["split"]
    if isinstance(recon, str | os.PathLike):  # each task reads its own slab of the store
        data: da.Array | ZarrSource = ZarrSource.open(recon, "split", storage_options)
    else:
        data = split.data if isinstance(split.data, da.Array) else da.from_array(split.data)
        data = data.rechunk({0: -1, 2: -1, 3: -1})
    context = int(meta["context"])
    client = current_client()
    resources = None
    if client is not None:
        from .cluster import gpu_resources

        resources = gpu_resources(client)
    if cfg.device == "cuda" and resources is None:
        import torch

        if not torch.cuda.is_available():
            raise InputError(
                "device 'cuda' was requested but no Dask worker advertises a GPU resource and "
                "torch sees no CUDA GPU here; use --device auto or cpu, or start GPU workers "
                "with --resources GPU=1"
            )
    params = {"model": ref, "device": cfg.device, "batch_size": cfg.batch_size,
              "tile": tile, "tile_halo": halo, "blend": blend, "ensemble": cfg.ensemble}
    with dask.annotate(resources=resources) if resources else contextlib.nullcontext():
        arr = map_z_halo(_denoise_slab, data, halo=context // 2, chunk_z=cfg.chunk_z,
                         dtype=np.float32, out_shape=tuple(data.shape[1:]), extra=params,
                         name="denoise")
    coords = {c: v for c, v in split.coords.items() if "split" not in v.dims}
    attrs = {
        "model": model_desc,
        "model_path": ref if isinstance(ref, str) else None,  # resolved in _model_ref
        "model_path_kind": "absolute" if isinstance(ref, str) else "in-memory model",
        **({"model_path": str(model), "model_path_kind": "url"} if is_url(model) else {}),
        "network": meta.get("network"),
        "context": context,
        "n_splits_model": int(meta["n_splits"]),
        "n_splits_store": check.k_store,
        "strategy": meta.get("strategy"),
        "chunk_z": cfg.chunk_z,
        "tile": tile,
        "tile_halo": halo,
        "tiling_exact": not blend,
        "ensemble": cfg.ensemble,
        "noise_sigma_model": meta.get("noise_sigma"),
        "noise_sigma_scan": check.noise_scan,
        "transfer_mismatches": [_describe(m) for m in check.mismatches],
    }
    for key in ("pixel_size_um", "center", "filter", "algorithm"):
        if key in ds.attrs:
            attrs[f"recon_{key}"] = ds.attrs[key]
    result = xr.DataArray(arr, dims=("z", "y", "x"), coords=coords, name="denoised",
                          attrs=attrs)
    if out is None:
        return result
    log.info("denoising %s slices of %sx%s with %s (K=%d, context %d), chunk_z=%d",
             *split.shape[1:], model_desc, int(meta["n_splits"]), context, cfg.chunk_z)
    _write(result, out, overwrite=overwrite, attrs=attrs, routed=bool(resources),
           storage_options=storage_options)
    return open_store(out, required=("denoised",), what="denoised store",
                      storage_options=storage_options)["denoised"]
