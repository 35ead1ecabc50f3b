"""GPU resources and routing: which GPUs, a cluster of one worker per GPU, ``{"GPU": 1}``.

A GPU worker advertises the Dask resource ``GPU=1`` and sees exactly one GPU
(``CUDA_VISIBLE_DEVICES``), so ``cuda`` in that process is its own GPU. Tasks that need a GPU
(training, inference) ask for :func:`gpu_resources`, so each GPU runs one such task at a time.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from .logs import get_logger
from .worker_signals import PRELOAD

__all__ = ["gpu_resources", "task_resources", "visible_gpus", "chosen_gpus", "gpu_cluster"]

log = get_logger("cluster")


def gpu_resources(client: Any | None) -> dict[str, float] | None:
    """``{"GPU": 1}`` when a worker of ``client`` advertises a GPU resource, else None."""
    if client is None:
        return None
    info = client.scheduler_info()
    for w in info.get("workers", {}).values():
        if w.get("resources", {}).get("GPU", 0) >= 1:
            return {"GPU": 1}
    return None


def task_resources(client: Any | None, device: str = "auto") -> dict[str, float] | None:
    """The Dask resources a GPU task (training, inference) asks for on ``client``'s cluster.

    Parameters
    ----------
    client : distributed.Client or None
        The active client (None: Dask's local schedulers, no routing).
    device : {"auto", "cpu", "cuda"}
        The device the task was asked to use.

    Raises
    ------
    InputError
        ``cuda`` was asked for, no worker advertises a GPU and torch sees no GPU here.
    """
    resources = gpu_resources(client)
    if device == "cuda" and resources is None:
        import torch

        if not torch.cuda.is_available():
            from ..errors import InputError

            raise InputError(
                "device 'cuda' was requested but no Dask worker advertises a GPU resource and "
                "torch sees no CUDA GPU here; use --device auto or cpu, or start GPU workers "
                "with --resources GPU=1"
            )
    return resources


def visible_gpus() -> list[str]:
    """IDs of the GPUs this process may use (``CUDA_VISIBLE_DEVICES``, else torch's count)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def chosen_gpus(gpus: int) -> list[str]:
    """The GPU ids of ``--gpus N`` (-1: every visible one); an error if there are not N."""
    seen = visible_gpus()
    if not seen:
        raise ConfigError(
            "--gpus was given but no GPU is visible here (CUDA_VISIBLE_DEVICES / torch); "
            "drop --gpus or install a CUDA build of torch (docs/gpu.md)"
        )
    if gpus < 0:
        return seen
    if gpus > len(seen):
        raise ConfigError(f"--gpus {gpus} but only {len(seen)} GPU(s) are visible: {seen}")
    return seen[:gpus]


def gpu_cluster(devices: list[str], *, threads_per_worker: int = 1,
                memory_limit: str | float = "auto", use_dask_cuda: bool = True) -> Any:
    """A local cluster with one worker per GPU in ``devices``, each with resource ``GPU=1``.

    Uses ``dask_cuda.LocalCUDACluster`` when it is installed (and ``use_dask_cuda``); else a
    :class:`distributed.SpecCluster` of nanny workers named ``gpu-<id>``, each started with
    ``CUDA_VISIBLE_DEVICES=<id>``. Either way ``cuda`` inside a worker is its own GPU.
    """
    if not devices:
        raise ConfigError("gpu_cluster needs at least one GPU id")
    log.info("starting %d GPU workers (GPUs %s)", len(devices), ",".join(devices))
    if use_dask_cuda:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            pass
        else:
            log.info("using dask-cuda LocalCUDACluster")
            return LocalCUDACluster(
                CUDA_VISIBLE_DEVICES=",".join(devices),
                threads_per_worker=threads_per_worker,
                memory_limit=memory_limit,
                resources={"GPU": 1},
                dashboard_address=":0",
            )
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {
        f"gpu-{d}": {
            "cls": Nanny,
            "options": {
                "nthreads": threads_per_worker,
                "resources": {"GPU": 1},
                "env": {"CUDA_VISIBLE_DEVICES": d},
                "memory_limit": memory_limit,
                "preload": [PRELOAD],
            },
        }
        for d in devices
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, name="tomochunk-gpu")
