"""Training on GPUs: mixed precision, channels-last, pinned batches, memory-sized batches, and
data-parallel training on the GPUs of one node.

:func:`fit_on_devices` is what :mod:`tomochunk.training.n2i` calls instead of
:func:`~tomochunk.training.loop.fit`; it leaves CPU training exactly as it was. The one-device
pieces (pinned batches, autocast, memory-sized batches) are in :mod:`tomochunk.training.gpu`.

Precision (``TrainConfig.precision``)
    ``bf16`` runs the network's forward pass under :func:`torch.autocast` in bfloat16 (the
    loss, the gradients' accumulation in the weights and Adam stay float32; bf16 has float32's
    range, so no loss scaling is needed). ``auto`` uses bf16 on CUDA only if it keeps the
    loss curve: :func:`compare_precision` trains a copy of the network for a few steps in
    float32 and in bf16 on the same batches and accepts bf16 when the mean loss of the last
    half of the steps differs by at most ``BF16_LOSS_RTOL``. fp16 is not offered: it needs a
    gradient scaler inside the loop for no gain over bf16 on the GPUs that have bf16.
Channels-last
    On CUDA the network's weights and inputs use ``torch.channels_last`` (faster cuDNN
    convolution kernels on tensor-core GPUs).
Pinned batches
    :func:`to_device` copies a batch through page-locked memory with ``non_blocking=True``.
Batch size from memory
    :func:`max_batch_size` measures the peak memory of a training step at two batch sizes and
    returns the largest batch that fits a fraction of the free GPU memory
    (:func:`batch_from_memory`, the pure arithmetic).
Data parallel (``TrainConfig.data_parallel``)
    ``N`` processes, one per GPU (NCCL), or, with ``device="cpu"``, ``N`` CPU processes
    (gloo; for testing). Every rank draws the same batch from the same ``[seed, epoch]`` RNG
    and trains on its ``1/N`` share of it (:class:`RankShard`); DDP averages the gradients,
    so a step equals the single-process step on the whole batch (to float summation order).
    Every rank evaluates the whole validation set, so all ranks agree on the best epoch and
    on early stopping; rank 0 writes the same atomic checkpoint after every epoch, so
    ``resume`` works as in single-process training (resuming with another ``data_parallel``
    also works, at the level of float rounding). ``max_minutes`` is decided by rank 0 and
    broadcast after every epoch. The ranks are subprocesses (``python -m
    tomochunk.training.cuda``), so this also works inside a daemonic Dask worker process.
    The ``train_loss`` in the history is rank 0's share of each batch.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, replace
from ..errors import ConfigError, InputError
from ..runtime.logs import get_logger
from .gpu import (
    BF16_LOSS_RTOL,
    AutocastModule,
    autocast_error,
    batch_from_memory,
    choose_dtype,
    compare_precision,
    max_batch_size,
    precision_keeps_loss,
    to_device,
)
from .schedule import still_improving

__all__ = [
    "BF16_LOSS_RTOL",
    "AutocastModule",
    "RankShard",
    "batch_from_memory",
    "check_cuda_config",
    "autocast_error",
    "compare_precision",
    "fit_on_devices",
    "max_batch_size",
    "n_ranks",
    "precision_keeps_loss",
    "to_device",
]

log = get_logger("train.cuda")

# ----------------------------------------------------------------------------- config


def check_cuda_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` for bad ``precision`` / ``data_parallel`` before any work."""
    problems = []
    if cfg.precision not in ("auto", "fp32", "bf16"):
        problems.append(f"precision must be auto, fp32 or bf16 (got {cfg.precision!r})")
    if cfg.data_parallel < 0:
        problems.append(f"data_parallel must be >= 0 (0: all GPUs; got {cfg.data_parallel})")
    if cfg.data_parallel > 1:
        for name in ("batch_size", "patches_per_epoch"):
            if getattr(cfg, name) % cfg.data_parallel:
                problems.append(
                    f"{name}={getattr(cfg, name)} must be a multiple of data_parallel="
                    f"{cfg.data_parallel} so every rank trains on an equal share"
                )
    if problems:
        raise ConfigError("invalid training configuration: " + "; ".join(problems))


def n_ranks(cfg: TrainConfig, device: torch.device) -> int:
    """Data-parallel processes for ``cfg`` on ``device`` (0 means every visible GPU)."""
    if cfg.data_parallel == 0:
        return torch.cuda.device_count() if device.type == "cuda" else 1
    if device.type == "cuda" and cfg.data_parallel > torch.cuda.device_count():
        raise InputError(
            f"data_parallel={cfg.data_parallel} but this worker sees "
            f"{torch.cuda.device_count()} GPU(s); lower --data-parallel or use 0 (all GPUs)"
        )
    return int(cfg.data_parallel)


# ----------------------------------------------------------------------------- data parallel


class RankShard:
    """``data`` whose :meth:`sample_patches` returns rank ``rank``'s share of each batch.

    The whole batch is drawn (so the RNG advances exactly as in one process) and split into
    ``world`` equal consecutive parts. Everything else is delegated to ``data``.
    """

    def __init__(self, data: Any, rank: int, world: int):
        self.data, self.rank, self.world = data, int(rank), int(world)

    def sample_patches(self, rng: np.random.Generator, n: int,
                       patch: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.data.sample_patches(rng, n, patch)
        if n % self.world:
            raise ConfigError(f"a batch of {n} patches cannot be shared by {self.world} ranks")
        m = n // self.world
        part = slice(self.rank * m, (self.rank + 1) * m)
        return x[part], y[part]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.data, name)


class _StopTraining(Exception):
    """Raised in every rank at once when rank 0's wall-clock limit is reached."""


def _ddp_wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    class _DDP(DistributedDataParallel):
        def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return self.module.state_dict(*args, **kwargs)

        def load_state_dict(self, state: Any, strict: bool = True,  # type: ignore[override]
                            assign: bool = False) -> Any:
            return self.module.load_state_dict(state, strict=strict, assign=assign)

    ids = [device.index] if device.type == "cuda" else None
    return _DDP(net.to(device), device_ids=ids, broadcast_buffers=False)


def _rank_main(workdir: str, rank: int) -> None:
    """One data-parallel rank (run as ``python -m tomochunk.training.cuda WORKDIR RANK``)."""
    import torch.distributed as dist

    from .dataset import N2IData
    from .loop import fit

    wd = Path(workdir)
    with open(wd / "payload.pkl", "rb") as f:
        p = pickle.load(f)
    world, cfg = p["world"], p["cfg"]
    cuda = p["device"] == "cuda"
    device = torch.device(f"cuda:{rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(p["threads"])
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{wd / 'rdv'}",
                            rank=rank, world_size=world)
    try:
        slab = np.load(wd / "slab.npy", mmap_mode="r")
        data = RankShard(N2IData(slab, p["layout"], p["strategy"]), rank, world)
        net = p["network"]
        dtype = p["dtype"]
        if dtype is not None or cuda:
            net = AutocastModule(net, dtype, channels_last=cuda)
        net = _ddp_wrap(net, device)
        ckpt = Path(p["checkpoint"] or wd / "checkpoint.pt")
        limit = p["max_minutes"]
        t_start = p["t_start"]
        progress = wd / "progress.jsonl"

        def on_epoch(rec: dict[str, Any]) -> None:
            stop = torch.zeros(1)
            if rank == 0:
                with open(progress, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                last = float(rec["seconds"])
                if limit is not None and time.time() - t_start + last > 60.0 * limit:
                    stop[0] = 1
            dist.broadcast(stop, 0)
            if stop.item():
                raise _StopTraining

        resume = torch.load(p["resume"], map_location="cpu", weights_only=False) \
            if p["resume"] else None
        result_path = wd / "result.pt"
        try:
            res = fit(net, data, replace(cfg, max_minutes=None), norm=p["norm"],
                      patch=p["patch"], device=device,
                      checkpoint_path=ckpt if rank == 0 else None, resume_from=resume,
                      config_hash_=p["config_hash"], config_fields=p["config_fields"],
                      on_epoch=on_epoch)
            out = {"best_state": res.best_state, "history": res.history,
                   "last_state": res.last_state}
        except _StopTraining:
            out = None
            if rank == 0:
                c = torch.load(ckpt, map_location="cpu", weights_only=False)
                history = json.loads(c["history_json"])
                history["stopped"] = "max_minutes"
                history["under_trained"] = bool(still_improving(
                    [e["val_loss"] for e in history["epochs"]]))
                out = {"best_state": c["best_state_dict"], "history": history,
                       "last_state": c["state_dict"]}
        if rank == 0:
            assert out is not None
            torch.save(out, result_path)
    finally:
        dist.destroy_process_group()


def _follow(progress: Path, on_epoch: Callable[[dict[str, Any]], None] | None,
            done: threading.Event) -> None:
    seen = 0
    while True:
        finished = done.is_set()
        if progress.exists() and on_epoch is not None:
            lines = progress.read_text().splitlines()
            for line in lines[seen:]:
                if line.strip():
                    on_epoch(json.loads(line))
            seen = len(lines)
        if finished:
            return
        done.wait(0.5)


def fit_data_parallel(
    network: torch.nn.Module,
    data: Any,
    cfg: TrainConfig,
    *,
    world: int,
    norm: dict[str, dict[str, float]],
    patch: int | None = None,
    device: torch.device | str = "cpu",
    checkpoint_path: Path | None = None,
    resume_from: dict[str, Any] | None = None,
    config_hash_: str = "",
    config_fields: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    dtype: torch.dtype | None = None,
) -> Any:
    """:func:`~tomochunk.training.loop.fit` on ``world`` ranks of this node (see module doc).

    Returns the :class:`~tomochunk.training.loop.FitResult` of rank 0.
    """
    from .loop import EpochReporter, FitResult

    device = torch.device(device)
    reporter = None
    if on_epoch is None:  # as fit() does: a progress bar and a log line per epoch
        done_epochs = int(resume_from["epoch"]) if resume_from is not None else 0
        reporter = on_epoch = EpochReporter(cfg.epochs, done_epochs)
    threads = 1 if device.type == "cuda" else max(1, torch.get_num_threads() // world)
    with tempfile.TemporaryDirectory(prefix="tomochunk-ddp-") as tmp:
        wd = Path(tmp)
        np.save(wd / "slab.npy", np.asarray(data.slab, dtype=np.float32))
        resume_path = None
        if resume_from is not None:
            resume_path = str(wd / "resume.pt")
            torch.save(resume_from, resume_path)
        payload = {
            "world": world, "cfg": cfg, "device": device.type, "threads": threads,
            "layout": data.layout, "strategy": data.strategy, "network": network.cpu(),
            "dtype": dtype, "norm": norm, "patch": patch or cfg.patch_size,
            "checkpoint": str(checkpoint_path) if checkpoint_path else None,
            "resume": resume_path, "config_hash": config_hash_,
            "config_fields": config_fields or {}, "max_minutes": cfg.max_minutes,
            "t_start": time.time(),
        }
        with open(wd / "payload.pkl", "wb") as f:
            pickle.dump(payload, f)
        log.info("data-parallel training on %d %s ranks (%d threads each)", world,
                 device.type, threads)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        logs = [wd / f"rank{r}.log" for r in range(world)]
        procs = []
        for r in range(world):
            with open(logs[r], "w") as log_file:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "tomochunk.training.cuda", tmp, str(r)],
                    env=env, stdout=log_file, stderr=subprocess.STDOUT))
        done = threading.Event()
        follower = threading.Thread(target=_follow, args=(wd / "progress.jsonl", on_epoch, done),
                                    daemon=True)
        follower.start()
        errors = _wait_all(procs, logs)
        done.set()
        follower.join()
        if reporter is not None:
            reporter.close()
        if errors:
            raise RuntimeError("data-parallel training failed: " + " | ".join(errors))
        out = torch.load(wd / "result.pt", map_location="cpu", weights_only=False)
    network.load_state_dict(out["last_state"])
    log.info("data-parallel training stopped (%s); best epoch %s", out["history"]["stopped"],
             out["history"]["best_epoch"])
    return FitResult(out["best_state"], out["history"], out["last_state"])


def _wait_all(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> list[str]:
    """Wait for every rank; when one fails, stop the others. Returns the failures' output."""
    errors: list[str] = []
    pending = list(enumerate(procs))
    while pending:
        for item in list(pending):
            r, p = item
            if p.poll() is None:
                continue
            pending.remove(item)
            if p.returncode != 0:
                tail = logs[r].read_text(errors="replace").strip().splitlines()[-3:]
                errors.append(f"rank {r} exited with {p.returncode}: " + " / ".join(tail))
                for _, other in pending:
                    other.terminate()
        time.sleep(0.1)
    return errors


# ----------------------------------------------------------------------------- the hook


def fit_on_devices(fit: Callable[..., Any], network: torch.nn.Module, data: Any,
                   cfg: TrainConfig, **kwargs: Any) -> Any:
    """Call ``fit`` as configured: data-parallel, mixed precision, channels-last on CUDA.

    On one CPU process with ``precision`` auto or fp32 this is exactly ``fit(network, data,
    cfg, **kwargs)``.
    """
    device = torch.device(kwargs.get("device", "cpu"))
    world = n_ranks(cfg, device)
    patch = kwargs.get("patch") or cfg.patch_size
    dtype = choose_dtype(network, data, kwargs["norm"], cfg, patch, device)
    if world > 1:
        return fit_data_parallel(network, data, cfg, world=world, dtype=dtype, **kwargs)
    cuda = device.type == "cuda"
    if dtype is None and not cuda:
        return fit(network, data, cfg, **kwargs)
    return fit(AutocastModule(network, dtype, channels_last=cuda), data, cfg, **kwargs)


if __name__ == "__main__":
    _rank_main(sys.argv[1], int(sys.argv[2]))
