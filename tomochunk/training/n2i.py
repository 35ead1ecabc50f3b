"""Noise2Inverse training: the loop, validation, early stopping, checkpoints, resume, Dask task.

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
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from ..config import TrainConfig, checkpoint_fields, config_hash, from_dict, replace, to_dict
from ..errors import ConfigError, InputError, ModelError, OutputExistsError
from ..io.store import open_dataset
from ..runtime.client import current_client
from ..runtime.logs import get_logger
from ..runtime.progress import progress_enabled, wait_for
from . import cancel
from .budget import SIZE_FIELDS  # the fields a budget plan sets, replayed on resume
from .cuda import check_cuda_config, fit_on_devices, to_device
from .dataset import N2IData, SlabLayout, check_finite
from .modelfile import (
    CHECKPOINT_FILE,
    FORMAT_VERSION,
    MODEL_FILE,
    TrainedModel,
    _resolve_device,
    atomic_torch_save,
    write_model_files,
)
from .validation import plan_layout, train_width

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

#: Reconstruction attributes copied into the model metadata.
RECON_ATTRS = ("center", "filter", "algorithm", "backend", "n_splits", "angles_per_split",
               "stripe", "pixel_size_um", "tomochunk_config_hash")

_DEFAULT_PATCH = TrainConfig().patch_size


# --------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class ReconInfo:
    """What training needs to know about the reconstruction before reading any voxel."""

    n_splits: int
    n_z: int
    height: int
    width: int
    layout: SlabLayout
    patch: int
    attrs: dict[str, Any]
    pixel_size_um: float | None


def _json_safe(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if v is None or isinstance(v, str | int | float | bool):
        return v
    return str(v)


def _pixel_size(ds: xr.Dataset) -> float | None:
    ps = ds.attrs.get("pixel_size_um")
    if ps is not None:
        return float(ps)
    x = ds.coords.get("x")
    if x is not None and x.size > 1 and str(x.attrs.get("units", "")) in ("um", "µm", "micrometre",
                                                                         "micrometer"):
        return float(abs(x.values[1] - x.values[0]))
    return None


def inspect_recon(ds: xr.Dataset, cfg: TrainConfig, where: str = "reconstruction") -> ReconInfo:
    """Check that ``ds`` can be trained on with ``cfg``; reads metadata only.

    Raises
    ------
    InputError
        No ``split`` variable, K < 2, too few slices for the context and validation slab,
        or a patch larger than the slice (unless the patch size is the default, which is
        then clamped to the slice).
    """
    if "split" not in ds.variables:
        raise InputError(
            f"{where} has no 'split' variable (the K split reconstructions); re-run "
            "'tomochunk recon' with --splits 2 or more"
        )
    split = ds["split"]
    if split.dims != ("split", "z", "y", "x"):
        raise InputError(f"{where}: 'split' must have dims (split, z, y, x), got {split.dims}")
    k, n_z, h, w = (int(s) for s in split.shape)
    if k < 2:
        raise InputError(
            f"{where} holds {k} split reconstruction(s); Noise2Inverse needs K >= 2: re-run "
            "'tomochunk recon' with --splits 2 or more"
        )
    layout = plan_layout(n_z, h, w, cfg)  # z slab, or held-out columns of few-slice scans
    side = min(h, train_width(layout, w))
    patch = cfg.patch_size
    if patch > side:
        if patch != _DEFAULT_PATCH:
            raise InputError(
                f"patch size {patch} is larger than the {h}x{w} slices; use --patch-size "
                f"{side} or less"
            )
        patch = side
    attrs = {a: _json_safe(ds.attrs[a]) for a in RECON_ATTRS if a in ds.attrs}
    return ReconInfo(k, n_z, h, w, layout, patch, attrs, _pixel_size(ds))


def training_hash(cfg: TrainConfig, info: ReconInfo) -> tuple[str, dict[str, Any]]:
    """Hash (and the fields behind it) of what makes two training runs the same."""
    fields_ = checkpoint_fields(cfg)
    fields_["data_shape"] = [info.n_splits, info.n_z, info.height, info.width]
    return config_hash(fields_), fields_


def _open_recon(recon: Any, storage_options: Any = None) -> tuple[xr.Dataset, Path | str | None]:
    """The recon dataset and its location: a Path, an fsspec URL (str) or None (in memory)."""
    if isinstance(recon, xr.Dataset):
        return recon, None
    if isinstance(recon, str | os.PathLike):
        from ..io.store import open_store
        from ..io.urls import is_url

        path: Path | str = os.fspath(recon) if is_url(recon) else Path(recon)
        return open_store(path, what="recon store", storage_options=storage_options), path
    raise InputError(
        f"recon must be the path of a recon.zarr store or an xarray.Dataset, got "
        f"{type(recon).__name__}"
    )


def _read_slab(recon: xr.Dataset | Path | str, layout: SlabLayout,
               storage_options: Any = None) -> np.ndarray:
    """Read the split volumes of ``layout.read`` as float32 (K, R, H, W)."""
    lo, hi = layout.read
    if isinstance(recon, Path | str):
        # no Dask inside the task: read the Zarr arrays directly
        ds = open_dataset(recon, storage_options=storage_options)
        return np.asarray(ds["split"][:, lo:hi].values, dtype=np.float32)
    return np.asarray(recon["split"].isel(z=slice(lo, hi)).values, dtype=np.float32)


# --------------------------------------------------------------------------------------
# checkpoints


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: unusable checkpoint
        raise ModelError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); train again with "
            "--overwrite"
        ) from exc
    if not isinstance(ckpt, dict) or "config_hash" not in ckpt or "epoch" not in ckpt:
        raise ModelError(f"{path} is not a tomochunk training checkpoint; train again with "
                         "--overwrite")
    return ckpt


def _check_model_dir(
    model_dir: Path, cfg: TrainConfig, info: ReconInfo, overwrite: bool
) -> dict[str, Any] | None:
    """Validate the output/resume situation; return the checkpoint to resume from, if any."""
    if cfg.resume:
        ck = model_dir / CHECKPOINT_FILE
        if not model_dir.exists():
            log.warning("resume: %s does not exist yet, starting a fresh training", model_dir)
            return None
        if not ck.exists():
            raise InputError(
                f"cannot resume: {model_dir} holds no {CHECKPOINT_FILE}; train without --resume "
                "(with --overwrite to replace the directory)"
            )
        ckpt = _load_checkpoint(ck)
        h, fields_ = training_hash(cfg, info)
        if ckpt["config_hash"] != h:
            old = json.loads(ckpt.get("config_fields_json", "{}"))
            diff = [
                f"{k}: {old.get(k)!r} -> {v!r}" for k, v in fields_.items() if old.get(k) != v
            ]
            raise ConfigError(
                f"cannot resume from {ck}: it was written by a training with another "
                f"configuration or data ({'; '.join(diff) or 'unknown fields'}); resume with "
                "the same settings, or train afresh with --overwrite"
            )
        return ckpt
    if model_dir.exists() and not overwrite:
        raise OutputExistsError(
            f"output {model_dir} already exists; pass --overwrite (overwrite=True) to replace "
            "it, --resume to continue its training, or choose another path"
        )
    return None


# --------------------------------------------------------------------------------------
# the loop


@dataclass
class EarlyStopping:
    """Track the best validation loss; stop after ``patience`` epochs without improvement.

    An epoch improves when its loss is strictly below the best so far.
    """

    patience: int | None
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, epoch: int, loss: float) -> bool:
        """Record ``loss`` of ``epoch``; return True when it is the new best."""
        if loss < self.best:
            self.best, self.best_epoch, self.bad_epochs = float(loss), int(epoch), 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience


@dataclass
class FitResult:
    """Outcome of :func:`fit`: the best weights (CPU) and the loss history."""

    best_state: dict[str, torch.Tensor]
    history: dict[str, Any]
    last_state: dict[str, torch.Tensor] = field(default_factory=dict)


def _loss_fn(name: str) -> Any:
    if name == "mse":
        return torch.nn.functional.mse_loss
    if name == "l1":
        return torch.nn.functional.l1_loss
    raise ConfigError(f"unknown loss {name!r}; use 'mse' or 'l1'")


def _normalise(a: np.ndarray, stats: dict[str, float], device: torch.device) -> torch.Tensor:
    return to_device((a - stats["mean"]) / stats["std"], device)  # pinned on CUDA


def validation_loss(
    network: torch.nn.Module,
    data: N2IData,
    norm: dict[str, dict[str, float]],
    loss: str = "mse",
    batch_size: int = 4,
    device: torch.device | str = "cpu",
) -> float:
    """Mean loss (normalised units) over every validation slice in every pairing."""
    fn = _loss_fn(loss)
    device = torch.device(device)
    pairs = data.validation_pairs()
    network.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            chunk = [data.val_pair(z, k) for z, k in pairs[i : i + batch_size]]
            x = _normalise(np.stack([c[0] for c in chunk]), norm["input"], device)
            y = _normalise(np.stack([c[1] for c in chunk])[:, None], norm["output"], device)
            total += float(fn(network(x), y, reduction="sum")) / y[0].numel()
    return total / len(pairs)


def _cpu_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


class EpochReporter:
    """Per-epoch progress bar (train/validation loss in its postfix) and log line.

    Used in the training process, or on the client, fed with the epoch records a Dask
    training task publishes as worker events.
    """

    def __init__(self, epochs: int, done: int = 0):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=epochs, initial=min(done, epochs), desc="training", unit="epoch",
                        disable=not progress_enabled())

        self.last = done

    def __call__(self, rec: dict[str, Any]) -> None:
        if rec["epoch"] <= self.last:
            return
        self.last = rec["epoch"]
        self.bar.update(max(0, rec["epoch"] - self.bar.n))
        self.bar.set_postfix(train=f"{rec['train_loss']:.4g}", val=f"{rec['val_loss']:.4g}",
                             best=rec["best_epoch"])
        log.info("epoch %d: train loss %.5g, validation loss %.5g%s (%.1f s)", rec["epoch"],
                 rec["train_loss"], rec["val_loss"],
                 " (best)" if rec["best_epoch"] == rec["epoch"] else "", rec["seconds"])

    def close(self) -> None:
        self.bar.close()


def fit(
    network: torch.nn.Module,
    data: N2IData,
    cfg: TrainConfig,
    *,
    norm: dict[str, dict[str, float]],
    patch: int | None = None,
    device: torch.device | str = "cpu",
    checkpoint_path: Path | None = None,
    resume_from: dict[str, Any] | None = None,
    config_hash_: str = "",
    config_fields: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``network`` on ``data`` (Adam, MSE or L1) with validation and early stopping.

    Every epoch draws ``cfg.patches_per_epoch`` augmented random patches from
    ``numpy.random.default_rng([cfg.seed, epoch])``, takes Adam steps of ``cfg.batch_size``,
    then evaluates the loss on every validation slice in every pairing. The best weights by
    validation loss are kept; training stops after ``cfg.epochs`` epochs, ``cfg.patience``
    epochs without improvement, or when the next epoch would pass ``cfg.max_minutes`` (wall
    clock of this call).

    Parameters
    ----------
    network : torch.nn.Module
        Maps normalised (B, context, p, p) to normalised (B, 1, p, p).
    data : N2IData
    cfg : TrainConfig
    norm : dict
        ``{"input": {"mean", "std"}, "output": {...}}`` from :meth:`N2IData.norm_stats`.
    patch : int, optional
        Patch side (default ``cfg.patch_size``).
    device : torch.device or str
    checkpoint_path : Path, optional
        Where the checkpoint is written atomically after every epoch.
    resume_from : dict, optional
        A checkpoint to continue from.
    config_hash_, config_fields
        Stored in the checkpoint so that resume can detect a changed configuration.
    on_epoch : callable, optional
        Called after every epoch (and its checkpoint) with ``{"epoch", "train_loss",
        "val_loss", "seconds", "best_epoch"}``; default: an :class:`EpochReporter`.
    """
    device = torch.device(device)
    patch = patch or cfg.patch_size
    loss_fn = _loss_fn(cfg.loss)
    network.to(device)
    opt = torch.optim.Adam(network.parameters(), lr=cfg.lr)
    from .schedule import lr_at, set_lr, still_improving
    stopper = EarlyStopping(cfg.patience)
    history: dict[str, Any] = {"epochs": [], "best_epoch": None, "stopped": None}
    best_state = _cpu_state(network)
    start = 1
    if resume_from is not None:
        network.load_state_dict(resume_from["state_dict"])
        opt.load_state_dict(resume_from["optimizer"])  # casts the state to the params' device
        best_state = resume_from["best_state_dict"]
        history = json.loads(resume_from["history_json"])
        stopper = EarlyStopping(
            cfg.patience,
            float(resume_from["best_val"]),
            int(resume_from["best_epoch"]),
            int(resume_from["bad_epochs"]),
        )
        start = int(resume_from["epoch"]) + 1
        log.info("resuming after epoch %d (best %d, val %.4g)", start - 1, stopper.best_epoch,
                 stopper.best)

    steps = math.ceil(cfg.patches_per_epoch / cfg.batch_size)
    total_steps = steps * cfg.epochs  # the horizon of the learning-rate schedule
    # whole validation slices per forward pass: as many voxels as one training batch
    val_batch = max(1, (cfg.batch_size * patch * patch) // (data.shape[0] * data.shape[1]))
    t_start = time.perf_counter()
    last_seconds = 0.0
    reporter = EpochReporter(cfg.epochs, start - 1) if on_epoch is None else None
    on_epoch = on_epoch or reporter
    stopped = "epochs"
    epoch = start
    # torch's global RNG is seeded per epoch inside fork_rng (restored afterwards), so a
    # network with random layers would also resume exactly; patches come from numpy.
    with torch.random.fork_rng(devices=[]), contextlib.ExitStack() as stack:
        if reporter is not None:
            stack.callback(reporter.close)
        while True:
            if stopper.should_stop:
                stopped = "early_stop"
                break
            if epoch > cfg.epochs:
                stopped = "epochs"
                break
            elapsed = time.perf_counter() - t_start
            if cfg.max_minutes is not None and epoch > start and (
                elapsed + last_seconds > 60.0 * cfg.max_minutes
            ):
                stopped = "max_minutes"
                break
            t0, c0 = time.perf_counter(), time.process_time()
            rng = np.random.default_rng([cfg.seed, epoch])
            torch.manual_seed(cfg.seed * 1_000_003 + epoch)
            network.train()
            total, count = 0.0, 0
            for step in range(steps):
                n = min(cfg.batch_size, cfg.patches_per_epoch - step * cfg.batch_size)
                xb, yb = data.sample_patches(rng, n, patch)
                x = _normalise(xb, norm["input"], device)
                y = _normalise(yb, norm["output"], device)
                lr_now = lr_at((epoch - 1) * steps + step, total_steps, cfg.lr, cfg.lr_schedule,
                               cfg.warmup)
                set_lr(opt, lr_now)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(network(x), y)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * n
                count += n
            train_loss = total / count
            val = validation_loss(network, data, norm, cfg.loss, val_batch, device)
            if not math.isfinite(train_loss) or not math.isfinite(val):
                raise ConfigError(
                    f"training diverged at epoch {epoch} (train loss {train_loss}, validation "
                    f"loss {val}); lower --lr"
                )
            if stopper.update(epoch, val):
                best_state = _cpu_state(network)
            last_seconds = time.perf_counter() - t0
            history["epochs"].append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val,
                 "seconds": round(last_seconds, 4), "lr": lr_now,
                 "cpu_seconds": round(time.process_time() - c0, 4)}
            )
            history["best_epoch"] = stopper.best_epoch
            if checkpoint_path is not None:
                atomic_torch_save(
                    {
                        "epoch": epoch,
                        "state_dict": _cpu_state(network),
                        "optimizer": _to_device(opt.state_dict(), torch.device("cpu")),
                        "best_state_dict": best_state,
                        "best_val": stopper.best,
                        "best_epoch": stopper.best_epoch,
                        "bad_epochs": stopper.bad_epochs,
                        "history_json": json.dumps(history),
                        "config_hash": config_hash_,
                        "config_fields_json": json.dumps(config_fields or {}, default=str),
                        "torch_rng": torch.get_rng_state(),
                        "numpy_rng_json": json.dumps(rng.bit_generator.state),
                        "format_version": FORMAT_VERSION,
                    },
                    checkpoint_path,
                )
            if epoch == start:
                log.info("estimated training time: %.1f min for %d epochs (%.1f s per epoch)",
                         last_seconds * (cfg.epochs - start + 1) / 60.0, cfg.epochs - start + 1,
                         last_seconds)
            on_epoch({**history["epochs"][-1], "best_epoch": stopper.best_epoch})
            epoch += 1
    history["stopped"] = stopped
    history["under_trained"] = bool(
        stopped in ("epochs", "max_minutes")
        and still_improving([e["val_loss"] for e in history["epochs"]])
    )
    if history["under_trained"]:
        log.warning("WARNING: training stopped under-trained (%s after epoch %d): the validation "
                    "loss was still falling; give it a larger --budget (or more --epochs)",
                    stopped, epoch - 1)
    log.info("training stopped (%s) after epoch %d; best epoch %d (validation loss %.5g)",
             stopped, epoch - 1, stopper.best_epoch, stopper.best)
    return FitResult(best_state, history, _cpu_state(network))


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


def _build(cfg: TrainConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    from ..nn.registry import build_network, network_params_from_config

    params = network_params_from_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_network(cfg.network, cfg.context, 1, **params)
    return net, _json_safe(params)


def _check_network_fits(net: torch.nn.Module, context: int, patch: int) -> None:
    """Run the network once on a zero patch so a size it cannot take fails before training."""
    try:
        with torch.no_grad():
            net(torch.zeros(1, context, patch, patch))
    except InputError as exc:
        raise InputError(f"training patches of {patch}x{patch} do not fit the network: {exc}") \
            from exc


def _metadata(
    cfg: TrainConfig,
    info: ReconInfo,
    net: torch.nn.Module,
    params: dict[str, Any],
    norm: dict[str, dict[str, float]],
    sigma: float,
) -> dict[str, Any]:
    from .. import __version__
    from ..nn.registry import receptive_radius

    aps = info.attrs.get("angles_per_split")
    return {
        "format_version": FORMAT_VERSION,
        "network": cfg.network,
        "network_params": params,
        "in_channels": cfg.context,
        "context": cfg.context,
        "n_splits": info.n_splits,
        "strategy": cfg.strategy,
        # recon stores one count per split (a list); the model keeps the mean count per split
        "angles_per_split": None if aps is None else int(round(float(np.mean(aps)))),
        "filter": info.attrs.get("filter"),
        "pixel_size_um": info.pixel_size_um,
        "noise_sigma": float(sigma),
        "norm": norm,
        "receptive_radius": int(receptive_radius(net)),
        "train_config": _json_safe(to_dict(cfg)),
        "recon_attrs": info.attrs,
        "tomochunk_version": __version__,
        "data_shape": [info.n_splits, info.n_z, info.height, info.width],
        "train_slices": list(info.layout.train),
        "val_slices": list(info.layout.val),
        "patch_size": info.patch,
    }


#: The settings a budget plan fixes, kept in the checkpoint so a resumed run keeps its plan.


def _checkpoint_plan(model_dir: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The budget plan stored in ``model_dir``'s checkpoint when resuming a budgeted run."""
    ck = model_dir / CHECKPOINT_FILE
    if not (cfg.resume and cfg.budget_minutes is not None and ck.exists()):
        return None
    fields_ = json.loads(_load_checkpoint(ck).get("config_fields_json", "{}"))
    plan = fields_.get("budget_plan")
    return dict(plan) if isinstance(plan, dict) else None


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
        planned = _checkpoint_plan(model_dir, cfg) if model_dir else None
        if planned is not None:
            cfg = replace(cfg, **planned)  # resume a budgeted run with its own plan
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
            fields_["budget_plan"] = {f: getattr(cfg, f) for f in SIZE_FIELDS}
        ckpt = _check_model_dir(model_dir, cfg, info, overwrite) if model_dir else None
        t0 = time.perf_counter()
        slab = _read_slab(recon, info.layout, storage_options)
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
        net, params = _build(cfg)
        _check_network_fits(net, cfg.context, info.patch)
        meta = _metadata(cfg, info, net, params, norm, sigma)
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


def _train_task(
    recon_path: str,
    model_dir: str | None,
    cfg_dict: dict[str, Any],
    overwrite: bool,
    topic: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Dask task: train from the store at ``recon_path``; return CPU weights + metadata.

    ``recon_path`` may be an fsspec URL, read with ``storage_options``.

    Every epoch's record is published as a worker event on ``topic`` so the client can show
    progress.
    """
    on_epoch = None
    if topic is not None:
        from distributed import get_worker

        worker = get_worker()

        def on_epoch(rec: dict[str, Any]) -> None:
            worker.log_event(topic, rec)
            cancel.check(Path(model_dir) if model_dir else None)

    cfg = from_dict(TrainConfig, cfg_dict)
    from ..io.urls import is_url

    state, meta, history, _ = _train_here(
        recon_path if is_url(recon_path) else Path(recon_path),
        Path(model_dir) if model_dir else None, cfg, overwrite, on_epoch, storage_options
    )
    return {"state_dict": state, "metadata": meta, "history": history}


def _submit(client: Any, path: Path | str, model_dir: Path | None, cfg: TrainConfig,
            overwrite: bool, storage_options: Any = None) -> dict[str, Any]:
    """Run :func:`_train_task` on the cluster, showing its epochs here as they finish."""
    import uuid

    from ..runtime.gpu import task_resources

    resources = task_resources(client)
    log.info("training as one Dask task%s", " on a GPU worker" if resources else "")
    topic = f"tomochunk-train-{uuid.uuid4().hex}"
    reporter = EpochReporter(cfg.epochs)
    client.subscribe_topic(topic, lambda event: reporter(event[1]))
    future = None
    try:
        future = client.submit(
            _train_task, path if isinstance(path, str) else str(path.resolve()),
            str(model_dir.resolve()) if model_dir else None,
            to_dict(cfg), overwrite, topic, dict(storage_options or {}),
            resources=resources, pure=False,
        )
        wait_for(future)  # Ctrl-C lands here, not inside the client's event loop
        payload = future.result()
    except BaseException:
        cancel.mark(model_dir)  # the task stops after its epoch and writes no model
        if future is not None:
            future.cancel()
        raise
    finally:
        client.unsubscribe_topic(topic)
        reporter.close()
    # events still in flight when the result arrived: report them from the history
    for rec in payload["history"]["epochs"]:
        if rec["epoch"] > reporter.last:
            log.info("epoch %d: train loss %.5g, validation loss %.5g (%.1f s)",
                     rec["epoch"], rec["train_loss"], rec["val_loss"], rec["seconds"])
    return payload


def _model_from_payload(payload: dict[str, Any]) -> TrainedModel:
    from ..nn.registry import build_network

    meta = payload["metadata"]
    net = build_network(meta["network"], meta["in_channels"], 1, **meta["network_params"])
    net.load_state_dict(payload["state_dict"])
    return TrainedModel(net.eval(), meta, payload["history"])


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

    Notes
    -----
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
    every epoch) when its configuration hash (:func:`~tomochunk.config.checkpoint_fields`
    and the data shape) matches, and reaches the weights of an uninterrupted run;
    ``epochs``, ``max_minutes``,
    ``patience``, ``device`` and ``threads`` may change. Without a ``MODEL`` directory it
    starts afresh. ``overwrite=True`` removes an existing directory once the input checks
    have passed. ``MODEL/model.pt`` is written last, so a directory without it is an
    unfinished training. On CPU the result is bit-for-bit reproducible for a given seed and
    thread count.

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
    ds, path = _open_recon(recon, storage_options)
    info = inspect_recon(ds, cfg, str(path) if path else "recon dataset")
    model_dir = Path(model_path) if model_path is not None else None
    if model_dir is not None and not (cfg.resume and cfg.budget_minutes is not None):
        # (a budgeted resume is checked once the budget has picked its settings)
        _check_model_dir(model_dir, cfg, info, overwrite)
    client = client if client is not None else (current_client() if path else None)
    if client is not None and path is not None:
        return _model_from_payload(_submit(client, path, model_dir, cfg, overwrite,
                                           storage_options))
    state, meta, history, net = _train_here(path or ds, model_dir, cfg, overwrite,
                                            storage_options=storage_options)
    return TrainedModel(net, meta, history)
