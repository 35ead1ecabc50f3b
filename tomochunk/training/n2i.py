"""Noise2Inverse training, the stage: checks, then training here or as one Dask task.

Noise2Inverse (Hendriksen, Pelt & Batenburg 2020) trains a network to map the reconstruction
from some of K interleaved projection subsets to the reconstruction from the others; because
their noise is independent the network regresses the signal only. We follow Flenner et al.
(2022): K = 2, a 5-slice 2.5D input, an MSDNet (Pelt & Sethian 2018), Adam, MSE, and the model
at the minimum of the validation loss on a separate slab of slices.

Training runs as ONE Dask task when a distributed client is active: the task asks for
``resources={"GPU": 1}`` if a worker advertises a GPU, reads its slab from the Zarr store
itself (only the path travels through the scheduler), writes the model directory and returns
CPU tensors. Without a client, or for an in-memory dataset, it runs in this process.

Determinism and resume: the network is initialised from ``seed``; epoch ``e`` draws its
patches from ``numpy.random.default_rng([seed, e])``; the checkpoint written after every epoch
holds the model, the optimiser, the early-stopping state, the history and the RNG states, so
``resume`` reaches the same weights as an uninterrupted run (on CPU, bit for bit).

Notes on :func:`train`
----------------------
Budget: with ``budget_minutes`` a short throughput probe (CPU time per thread, so a busy
machine gives the same plan) picks the network, patch, batch and a fixed step count
(:mod:`tomochunk.training.budget`), logged with the estimated time before training
starts; a resumed budgeted run keeps the plan stored in its checkpoint. The learning rate
follows ``lr_schedule`` with ``warmup`` over the planned ``epochs``
(:mod:`tomochunk.training.schedule`). A run whose validation loss is still falling when
it stops (``epochs`` or ``max_minutes``) logs one WARNING line and records
``under_trained`` in the metadata.

Patch size: the default (256) is clamped to the slice when the slice is smaller; any
other value larger than the slice is an error. Validation slab: the
``max(1, round(val_fraction * Z))`` slices at one end of z (``val_end``), separated from
the training slices by ``context // 2`` unused slices.

Resume (``resume=True``) continues from ``MODEL/checkpoint.pt`` (written atomically after
every epoch) when its configuration hash (:func:`~tomochunk.config.checkpoint_fields` and
the data shape) matches, and reaches the weights of an uninterrupted run; ``epochs``,
``max_minutes``, ``patience``, ``device`` and ``threads`` may change. Without a ``MODEL``
directory it starts afresh. ``overwrite=True`` removes an existing directory once the input
checks have passed. ``MODEL/model.pt`` is written last, so a directory without it is an
unfinished training. On CPU the result is bit-for-bit reproducible for a given seed and
thread count.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import xarray as xr

from ..config import TrainConfig, replace
from ..io.store import open_dataset
from ..runtime.client import current_client
from ..runtime.logs import get_logger
from . import cancel
from .budget import SIZE_FIELDS  # the fields a budget plan sets, replayed on resume
from .build import build_network_for, check_network_fits, model_metadata
from .checkpoint import check_model_dir, checkpoint_plan
from .cuda import check_cuda_config, fit_on_devices
from .dataset import N2IData, check_finite
from .inputs import (
    RECON_ATTRS,
    ReconInfo,
    inspect_recon,
    open_recon,
    read_slab,
    training_hash,
)
from .loop import EarlyStopping, FitResult, fit, validation_loss
from .modelfile import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    TrainedModel,
    _resolve_device,
    write_model_files,
)
from .remote import model_from_payload, submit_training

__all__ = [
    "train",
    "fit",
    "FitResult",
    "EarlyStopping",
    "validation_loss",
    "RECON_ATTRS",
    "training_hash",
    "inspect_recon",
    "ReconInfo",
]

log = get_logger("train")



# --------------------------------------------------------------------------------------
# the loop


# --------------------------------------------------------------------------------------
# the whole stage


@contextlib.contextmanager
def _torch_session(threads: int | None, device: torch.device) -> Iterator[None]:
    """Set torch's thread count (and deterministic CUDA algorithms); restore afterwards.

    CPU training is deterministic for a given thread count without further settings, so
    :func:`torch.use_deterministic_algorithms` (whose first call imports torch's compiler
    stack, seconds) is only switched on for CUDA, with ``warn_only``.
    """
    from ..runtime.threads import thread_count

    old_threads = torch.get_num_threads()
    torch.set_num_threads(thread_count("training", requested=threads) or 1)
    cuda = device.type == "cuda"
    if cuda:
        old_det = torch.are_deterministic_algorithms_enabled()
        old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        if cuda:
            torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _train_here(
    recon: xr.Dataset | Path | str,
    model_dir: Path | None,
    cfg: TrainConfig,
    overwrite: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    storage_options: Any = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any], torch.nn.Module]:
    """Train in this process (the body of the Dask task); returns state, metadata, history.

    ``recon`` is a dataset, a store Path or a store URL (read with ``storage_options``).
    """
    device = _resolve_device(cfg.device)
    with _torch_session(cfg.threads, device):
        ds = open_dataset(recon, storage_options=storage_options) if isinstance(
            recon, Path | str) else recon
        where = str(recon) if isinstance(recon, Path | str) else "recon dataset"
        info = inspect_recon(ds, cfg, where)
        plan = None
        planned = checkpoint_plan(model_dir, cfg) if model_dir else None
        if planned is not None:
            # resume a budgeted run with its own plan (network keys by their flat names;
            # None: not given, as replace() takes it)
            cfg = cfg.with_values(**{k: v for k, v in planned.items() if v is not None})
            info = inspect_recon(ds, cfg, where)
            log.info("resuming a budgeted training with its plan: %s", str(planned))
        elif cfg.budget_minutes is not None:
            from .budget import plan_budget

            n_val = info.layout.val[1] - info.layout.val[0]
            plan = plan_budget(cfg, cfg.budget_minutes, context=cfg.context,
                               side=min(info.height, info.width),
                               val_pixels=n_val * info.n_splits * info.height * info.width,
                               device=device)
            cfg = plan.config
            info = inspect_recon(ds, cfg, where)
            log.info("training plan for a %g-minute budget: %s", cfg.budget_minutes,
                     plan.describe())
        h, fields_ = training_hash(cfg, info)
        if plan is not None or planned is not None:
            fields_["budget_plan"] = {f: cfg.value(f) for f in SIZE_FIELDS}
        ckpt = check_model_dir(model_dir, cfg, info, overwrite) if model_dir else None
        t0 = time.perf_counter()
        slab = read_slab(recon, info.layout, storage_options)
        check_finite(slab, info.layout.read[0])
        data = N2IData(slab, info.layout, cfg.strategy)
        norm = data.norm_stats()
        sigma = data.noise_sigma()
        log.info(
            "training data: %d splits, slices %s train / %s validation, %dx%d, read in %.1f s; "
            "noise sigma %.4g; device %s, %d threads",
            info.n_splits, info.layout.train, info.layout.val, info.height, info.width,
            time.perf_counter() - t0, sigma, device, torch.get_num_threads(),
        )
        net, params = build_network_for(cfg)
        check_network_fits(net, cfg.context, info.patch)
        meta = model_metadata(cfg, info, net, params, norm, sigma)
        if plan is not None:
            meta["budget"] = {"minutes": cfg.budget_minutes, **plan.metadata()}
        if model_dir is not None and ckpt is None and model_dir.exists():
            shutil.rmtree(model_dir)  # overwrite=True was checked above
        if model_dir is not None:
            model_dir.mkdir(parents=True, exist_ok=True)
            cancel.clear(model_dir)
        result = fit_on_devices(
            fit, net, data, cfg, norm=norm, patch=info.patch, device=device,
            checkpoint_path=model_dir / CHECKPOINT_FILE if model_dir else None,
            resume_from=ckpt, config_hash_=h, config_fields=fields_, on_epoch=on_epoch,
        )
        meta["best_epoch"] = result.history["best_epoch"]
        meta["under_trained"] = result.history["under_trained"]
        if result.history["under_trained"]:
            meta["warnings"] = ["training stopped under-trained: the validation loss was still "
                                "falling at the end of the budget"]
        if model_dir is not None:
            cancel.check(model_dir)  # Ctrl-C on the client: no model.pt
            write_model_files(model_dir, result.best_state, meta, result.history)
            log.info("model written to %s", model_dir / MODEL_FILE)
        net.load_state_dict(result.best_state)
        return result.best_state, meta, result.history, net.cpu().eval()


def train(
    recon: str | os.PathLike[str] | xr.Dataset,
    model_path: str | os.PathLike[str] | None = None,
    *,
    config: TrainConfig | None = None,
    overwrite: bool = False,
    client: Any | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> TrainedModel:
    """Train a Noise2Inverse denoiser on the split reconstructions of ``recon``.

    ``recon`` and ``model_path`` may be fsspec URLs (``s3://...``) opened with
    ``storage_options``. A remote model folder is trained in a local staging folder
    (checkpoints included) and uploaded when training ends, ``model.pt`` last; so an
    interrupted remote training restarts from scratch.

    Parameters
    ----------
    recon : path or xarray.Dataset
        ``recon.zarr`` (or a dataset) with ``split(split, z, y, x)``, K >= 2.
    model_path : path, optional
        Model directory to write (``model.pt``, ``metadata.json``, ``history.json``,
        ``checkpoint.pt``). None: train in memory only (no checkpoints).
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``; ``overrides`` (``epochs=5``, ...) are applied on top
        (None values ignored).
    overwrite : bool
        Replace an existing model directory (it is removed when training starts).
    client : distributed.Client, optional
        Run training as one task on this cluster (default: the active client, if any, when
        ``recon`` is a path). The task asks for ``{"GPU": 1}`` when a worker advertises one.

    Returns
    -------
    TrainedModel
        The network at the epoch of minimal validation loss, its metadata and history.

    Raises
    ------
    InputError, ConfigError, OutputExistsError
        On bad input, before training starts: no ``split`` or K < 2, too few slices,
        patch larger than the slice, non-finite values, ``device="cuda"`` without CUDA,
        resuming a checkpoint of another configuration, an existing model path.

    See the module docstring for the budget, patch size, validation slab and resume.

    References
    ----------
    Hendriksen, Pelt & Batenburg (2020), Noise2Inverse, IEEE TCI 6, 1320.
    Flenner et al. (2022), J. Synchrotron Rad. 29, 230.
    """
    cfg = replace(config or TrainConfig(), **overrides)  # checked when constructed
    check_cuda_config(cfg)
    from ..io.urls import is_url

    if is_url(model_path):
        from ..io.store import atomic_store

        with atomic_store(os.fspath(model_path), overwrite=overwrite,  # type: ignore[arg-type]
                          storage_options=storage_options) as tmp:
            return train(recon, tmp, config=cfg, client=client,
                         storage_options=storage_options)
    ds, path = open_recon(recon, storage_options)
    info = inspect_recon(ds, cfg, str(path) if path else "recon dataset")
    model_dir = Path(model_path) if model_path is not None else None
    if model_dir is not None and not (cfg.resume and cfg.budget_minutes is not None):
        # (a budgeted resume is checked once the budget has picked its settings)
        check_model_dir(model_dir, cfg, info, overwrite)
    client = client if client is not None else (current_client() if path else None)
    if client is not None and path is not None:
        return model_from_payload(submit_training(client, path, model_dir, cfg, overwrite,
                                                  storage_options))
    state, meta, history, net = _train_here(path or ds, model_dir, cfg, overwrite,
                                            storage_options=storage_options)
    return TrainedModel(net, meta, history)
