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
with :func:`tomochunk.n2i.context_indices`, exactly as in training. Every output
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
A model given as a path is loaded once per worker process
(:func:`~tomochunk.inference.models.load_model_cached`, keyed by path, device and file time)
rather than shipped with every task; a model object is put into the graph once and shared. A
worker with ``N`` threads runs ``N`` tasks at once, each with one torch thread
(:func:`~tomochunk.inference.threads.task_threads`); tasks ask for ``{"GPU": 1}`` when a worker
of the active client advertises a GPU (:func:`tomochunk.runtime.gpu.gpu_resources`). Dask's
low-level task fusion (and xarray's ``to_zarr`` graph) drop such annotations, so
:func:`denoise` stores with fusion off when it routes to GPUs; compute a lazy result under
``dask.config.set({"optimization.fuse.active": False})`` to keep the routing.

Transfer
--------
Before any work the model's metadata is compared with the target
(:func:`tomochunk.inference.transfer.check_transfer`); a store with ``m * K_model`` splits is
merged to the model's K (:func:`tomochunk.n2i.merge_splits`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..chunks import Slab, ZarrSource, map_z_halo
from ..config import DenoiseConfig, replace
from ..errors import InputError
from ..io.store import check_output_path, open_recon, open_store, write_dataset
from ..io.urls import is_url
from ..n2i import denoise_slab, denoise_volume, merge_splits
from ..runtime.client import current_client
from ..runtime.logs import get_logger
from .ensemble import ensemble_predict
from .models import Predictor, model_ref, worker_model
from .threads import torch_threads
from .tiling import predict_tiled, tiling
from .transfer import TransferCheck, check_transfer, describe

__all__ = ["denoise", "denoise_array"]

log = get_logger("infer")


def _denoise_slab(slab: np.ndarray, info: Slab, *, model: Any, device: str = "cpu",
                  batch_size: int = 4, tile: int | None = None, tile_halo: int = 0,
                  blend: bool = False, ensemble: int = 1) -> np.ndarray:
    """Denoise the core slices ``[info.z0, info.z1)`` of a split slab ``(K, lo:hi, H, W)``.

    A slab of ``m * K_model`` splits is merged to the model's ``K_model`` first. With
    ``ensemble`` > 1 every prediction is the D4 self-ensemble (:mod:`tomochunk.inference.ensemble`).
    """
    net = worker_model(model, device)
    meta = net.metadata
    slab = merge_splits(np.asarray(slab, dtype=np.float32), int(meta["n_splits"]))

    def predict(x: np.ndarray) -> np.ndarray:
        return ensemble_predict(lambda a: predict_tiled(net, a, tile, tile_halo, blend), x,
                                ensemble)

    with torch_threads():
        return denoise_slab(slab, info, predict, context=int(meta["context"]),
                            strategy=str(meta["strategy"]), batch_size=batch_size)


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

    :func:`tomochunk.n2i.denoise_volume` with inference's tiling and self-ensemble.

    Parameters
    ----------
    splits : numpy.ndarray, shape (K, Z, H, W)
        The split reconstructions; K must equal the model's ``n_splits``.
    model : TrainedModel
        See :func:`tomochunk.n2i.denoise_volume`.
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
    t, h, blend = tiling(model.metadata, tile, tile_halo)

    def predict(x: np.ndarray) -> np.ndarray:
        return ensemble_predict(lambda a: predict_tiled(model, a, t, h, blend), x, ensemble)

    with torch_threads():
        return denoise_volume(splits, model, batch_size=batch_size, predict=predict)


# ----------------------------------------------------------------------------- API


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

    from ..io.store import atomic_store, float_encoding
    from ..runtime.progress import compute

    with atomic_store(out, overwrite=overwrite, attrs=attrs,
                      storage_options=storage_options) as tmp:
        ds = result.to_dataset()
        ds.to_zarr(str(tmp), mode="w", zarr_format=3, consolidated=False, compute=False,
                   encoding=float_encoding(ds))  # metadata and coordinates only
        target = zarr.open_array(str(tmp / str(result.name)), mode="r+")
        # dask's hint for the target is numpy-like; it only needs __setitem__, as zarr.Array has
        stored = da.store(result.data, target,  # type: ignore[arg-type]
                          lock=False, compute=False)
        with dask.config.set({"optimization.fuse.active": False}):
            compute(stored, label="denoising")


def _split_source(recon: Any, split: xr.DataArray,
                  storage_options: Any) -> da.Array | ZarrSource:
    """The split volumes as tasks read them: from the store per task, or a Dask array."""
    if isinstance(recon, str | os.PathLike):  # each task reads its own slab of the store
        return ZarrSource.open(recon, "split", storage_options)
    data = split.data if isinstance(split.data, da.Array) else da.from_array(split.data)
    rechunked: da.Array = data.rechunk({0: -1, 2: -1, 3: -1})
    return rechunked


def _gpu_resources(device: str) -> dict[str, Any] | None:
    """``{"GPU": 1}`` when a worker of the active client has a GPU; check ``device="cuda"``."""
    from ..runtime.gpu import task_resources

    return task_resources(current_client(), device)


def _attrs(ds: xr.Dataset, model: Any, ref: Any, model_desc: str, meta: Mapping[str, Any],
           check: TransferCheck, cfg: DenoiseConfig, tile: int | None, halo: int,
           blend: bool) -> dict[str, Any]:
    """The provenance attributes of ``denoised.zarr``."""
    attrs = {
        "model": model_desc,
        "model_path": ref if isinstance(ref, str) else None,  # resolved in model_ref
        "model_path_kind": "absolute" if isinstance(ref, str) else "in-memory model",
        **({"model_path": str(model), "model_path_kind": "url"} if is_url(model) else {}),
        "network": meta.get("network"),
        "context": int(meta["context"]),
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
        "transfer_mismatches": [describe(m) for m in check.mismatches],
    }
    for key in ("pixel_size_um", "center", "filter", "algorithm"):
        if key in ds.attrs:
            attrs[f"recon_{key}"] = ds.attrs[key]
    return attrs


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
    cfg = replace(config or DenoiseConfig(), **overrides)  # checked when constructed
    if out is not None:
        check_output_path(out, overwrite, storage_options)
    ds, where = _open(recon, storage_options)
    ref, meta, model_desc = model_ref(model, storage_options)
    check = check_transfer(ds, meta, cfg, where)
    tile, halo, blend = tiling(meta, cfg.tile, cfg.tile_halo)
    if blend and tile is not None:
        log.info("in-plane tiles with a %d px halo < receptive radius %s: blended "
                 "approximation (not exact)", halo, meta.get("receptive_radius"))
    split = ds["split"]
    data = _split_source(recon, split, storage_options)
    context = int(meta["context"])
    resources = _gpu_resources(cfg.device)
    params = {"model": ref, "device": cfg.device, "batch_size": cfg.batch_size,
              "tile": tile, "tile_halo": halo, "blend": blend, "ensemble": cfg.ensemble}
    with dask.annotate(resources=resources) if resources else contextlib.nullcontext():
        arr = map_z_halo(_denoise_slab, data, halo=context // 2, chunk_z=cfg.chunk_z,
                         dtype=np.float32, out_shape=tuple(data.shape[1:]), extra=params,
                         name="denoise")
    coords = {c: v for c, v in split.coords.items() if "split" not in v.dims}
    attrs = _attrs(ds, model, ref, model_desc, meta, check, cfg, tile, halo, blend)
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
