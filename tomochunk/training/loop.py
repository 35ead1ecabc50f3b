"""The Noise2Inverse training loop: epochs of random patches, validation, early stopping.

Determinism and resume: epoch ``e`` draws its patches from
``numpy.random.default_rng([seed, e])``; the checkpoint written after every epoch holds the
model, the optimiser, the early-stopping state, the history and the RNG states, so a resumed
run reaches the same weights as an uninterrupted one (on CPU, bit for bit).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..errors import ConfigError
from ..runtime.logs import get_logger
from ..runtime.progress import progress_enabled
from .dataset import TrainingData
from .gpu import to_device
from .modelfile import FORMAT_VERSION, atomic_torch_save
from .modelfile import cpu_state as _cpu_state

__all__ = ["EarlyStopping", "EpochReporter", "FitResult", "fit", "validation_loss"]

log = get_logger("train")


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
    data: TrainingData,
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
    data: TrainingData,
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
    epochs without improvement, or when the next epoch would pass ``cfg.max_minutes``.

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
        Called after every epoch (and its checkpoint) with its record (``epoch``,
        ``train_loss``, ``val_loss``, ``seconds``, ``best_epoch``, ...); default: an
        :class:`EpochReporter`.

    Returns
    -------
    FitResult
    """
    device = torch.device(device)
    patch = patch or cfg.patch_size
    _loss_fn(cfg.loss)  # an unknown loss fails before any work
    network.to(device)
    opt = torch.optim.Adam(network.parameters(), lr=cfg.lr)
    stopper, history, best_state, start = _start(network, opt, cfg, resume_from)
    # whole validation slices per forward pass: as many voxels as one training batch
    val_batch = max(1, (cfg.batch_size * patch * patch) // (data.shape[0] * data.shape[1]))
    t_start, last_seconds, epoch = time.perf_counter(), 0.0, start
    # torch's RNG is seeded per epoch inside fork_rng (restored afterwards): exact resume
    with torch.random.fork_rng(devices=[]), _reporting(on_epoch, cfg.epochs, start) as report:
        while (stopped := _stop_reason(stopper, epoch, start, cfg,
                                       time.perf_counter() - t_start + last_seconds)) is None:
            rec, rng = _epoch(network, opt, data, cfg, norm, patch, device, epoch, val_batch)
            if stopper.update(epoch, rec["val_loss"]):
                best_state = _cpu_state(network)
            last_seconds = rec["seconds"]
            history["epochs"].append(rec)
            history["best_epoch"] = stopper.best_epoch
            if checkpoint_path is not None:
                atomic_torch_save(_checkpoint(epoch, network, opt, best_state, stopper, history,
                                              config_hash_, config_fields, rng),
                                  checkpoint_path)
            if epoch == start:
                _log_estimate(last_seconds, cfg.epochs - start + 1)
            report({**history["epochs"][-1], "best_epoch": stopper.best_epoch})
            epoch += 1
    _finish(history, stopped, stopper, epoch - 1)
    return FitResult(best_state, history, _cpu_state(network))


@contextlib.contextmanager
def _reporting(on_epoch: Callable[[dict[str, Any]], None] | None, epochs: int,
               start: int) -> Iterator[Callable[[dict[str, Any]], None]]:
    """``on_epoch``, or an :class:`EpochReporter` closed at the end."""
    if on_epoch is not None:
        yield on_epoch
        return
    reporter = EpochReporter(epochs, start - 1)
    try:
        yield reporter
    finally:
        reporter.close()


def _log_estimate(seconds: float, epochs: int) -> None:
    """Log the time the remaining ``epochs`` will take at ``seconds`` per epoch."""
    log.info("estimated training time: %.1f min for %d epochs (%.1f s per epoch)",
             seconds * epochs / 60.0, epochs, seconds)


def _epoch(network: torch.nn.Module, opt: torch.optim.Optimizer, data: TrainingData,
           cfg: TrainConfig, norm: dict[str, dict[str, float]], patch: int,
           device: torch.device, epoch: int,
           val_batch: int) -> tuple[dict[str, Any], np.random.Generator]:
    """Train and validate ``epoch``; its history record and the epoch's patch generator."""
    t0, c0 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng([cfg.seed, epoch])
    torch.manual_seed(cfg.seed * 1_000_003 + epoch)
    train_loss, lr_now = _train_epoch(network, opt, data, cfg, norm, patch, device, epoch, rng)
    val = validation_loss(network, data, norm, cfg.loss, val_batch, device)
    if not math.isfinite(train_loss) or not math.isfinite(val):
        raise ConfigError(
            f"training diverged at epoch {epoch} (train loss {train_loss}, validation "
            f"loss {val}); lower --lr"
        )
    rec = {"epoch": epoch, "train_loss": train_loss, "val_loss": val,
           "seconds": round(time.perf_counter() - t0, 4), "lr": lr_now,
           "cpu_seconds": round(time.process_time() - c0, 4)}
    return rec, rng


def _start(network: torch.nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig,
           resume_from: dict[str, Any] | None,
           ) -> tuple[EarlyStopping, dict[str, Any], dict[str, torch.Tensor], int]:
    """``(stopper, history, best state, first epoch)``: fresh, or restored from a checkpoint."""
    if resume_from is None:
        history: dict[str, Any] = {"epochs": [], "best_epoch": None, "stopped": None}
        return EarlyStopping(cfg.patience), history, _cpu_state(network), 1
    network.load_state_dict(resume_from["state_dict"])
    opt.load_state_dict(resume_from["optimizer"])  # casts the state to the params' device
    stopper = EarlyStopping(
        cfg.patience,
        float(resume_from["best_val"]),
        int(resume_from["best_epoch"]),
        int(resume_from["bad_epochs"]),
    )
    start = int(resume_from["epoch"]) + 1
    log.info("resuming after epoch %d (best %d, val %.4g)", start - 1, stopper.best_epoch,
             stopper.best)
    return (stopper, json.loads(resume_from["history_json"]), resume_from["best_state_dict"],
            start)


def _stop_reason(stopper: EarlyStopping, epoch: int, start: int, cfg: TrainConfig,
                 projected_seconds: float) -> str | None:
    """Why training stops before ``epoch`` (None: it goes on).

    ``projected_seconds`` is the time so far plus the last epoch's duration.
    """
    if stopper.should_stop:
        return "early_stop"
    if epoch > cfg.epochs:
        return "epochs"
    if cfg.max_minutes is not None and epoch > start and (
        projected_seconds > 60.0 * cfg.max_minutes
    ):
        return "max_minutes"
    return None


def _train_epoch(network: torch.nn.Module, opt: torch.optim.Optimizer, data: TrainingData,
                 cfg: TrainConfig, norm: dict[str, dict[str, float]], patch: int,
                 device: torch.device, epoch: int,
                 rng: np.random.Generator) -> tuple[float, float]:
    """One epoch of Adam steps on random patches; ``(mean train loss, last learning rate)``."""
    from .schedule import lr_at, set_lr

    loss_fn = _loss_fn(cfg.loss)
    steps = math.ceil(cfg.patches_per_epoch / cfg.batch_size)
    total_steps = steps * cfg.epochs  # the horizon of the learning-rate schedule
    network.train()
    total, count = 0.0, 0
    lr_now = cfg.lr
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
    return total / count, lr_now


def _checkpoint(epoch: int, network: torch.nn.Module, opt: torch.optim.Optimizer,
                best_state: dict[str, torch.Tensor], stopper: EarlyStopping,
                history: dict[str, Any], config_hash_: str,
                config_fields: dict[str, Any] | None,
                rng: np.random.Generator) -> dict[str, Any]:
    """What is saved after every epoch: enough to resume exactly."""
    return {
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
    }


def _finish(history: dict[str, Any], stopped: str, stopper: EarlyStopping,
            last_epoch: int) -> None:
    """Record why training stopped and whether it was still improving; log it."""
    from .schedule import still_improving

    history["stopped"] = stopped
    history["under_trained"] = bool(
        stopped in ("epochs", "max_minutes")
        and still_improving([e["val_loss"] for e in history["epochs"]])
    )
    if history["under_trained"]:
        log.warning("WARNING: training stopped under-trained (%s after epoch %d): the validation "
                    "loss was still falling; give it a larger --budget (or more --epochs)",
                    stopped, last_epoch)
    log.info("training stopped (%s) after epoch %d; best epoch %d (validation loss %.5g)",
             stopped, last_epoch, stopper.best_epoch, stopper.best)
