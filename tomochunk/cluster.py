"""Connect to a Dask cluster or start a LocalCluster; route GPU work.

Library functions compute on whatever Dask scheduler is active (a :class:`distributed.Client`
made current by :func:`connect`, else Dask's threaded scheduler). The CLI and
:func:`tomochunk.run` call :func:`connect`, which by default starts a LocalCluster sized to
the machine (one single-threaded worker process per core), or, with ``gpus``, one
single-threaded worker per GPU (:func:`gpu_cluster`).

GPU routing: a GPU worker advertises the Dask resource ``GPU=1`` and sees exactly one GPU
(``CUDA_VISIBLE_DEVICES``), so ``cuda`` in that process is its own GPU. Tasks that need a GPU
(training, inference; see :func:`gpu_resources`) ask for ``{"GPU": 1}``, so each GPU runs
one such task at a time and several GPU workers share the chunks. The trained model is loaded
once per worker process and stays resident on its GPU
(:func:`tomochunk.inference.load_model_cached`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from .config import ClusterConfig
from .errors import ConfigError
from .openmp_env import passive_openmp
from .progress import get_logger
from .worker_signals import PRELOAD

__all__ = [
    "connect",
    "gpu_cluster",
    "gpu_resources",
    "make_security",
    "visible_gpus",
    "worker_threads",
]

log = get_logger("cluster")


def make_security(cfg: ClusterConfig) -> Any:
    """A :class:`distributed.security.Security` from the TLS fields, or None."""
    if not (cfg.tls_ca_file or cfg.tls_cert or cfg.tls_key):
        return None
    missing = [
        n for n in ("tls_ca_file", "tls_cert", "tls_key") if not getattr(cfg, n)
    ]
    if missing:
        raise ConfigError(
            f"TLS needs tls_ca_file, tls_cert and tls_key together; missing: {', '.join(missing)}"
        )
    for n in ("tls_ca_file", "tls_cert", "tls_key"):
        if not os.path.exists(getattr(cfg, n)):
            raise ConfigError(f"{n} file {getattr(cfg, n)} does not exist")
    from distributed.security import Security

    return Security(
        tls_ca_file=cfg.tls_ca_file,
        tls_client_cert=cfg.tls_cert,
        tls_client_key=cfg.tls_key,
        require_encryption=True,
    )


@contextlib.contextmanager
def connect(cfg: ClusterConfig | None = None) -> Iterator[Any]:
    """Yield a :class:`distributed.Client` for the configured cluster.

    ``scheduler`` or ``scheduler_file`` connect to an existing cluster; otherwise a
    LocalCluster is started (and closed on exit). The client is made the default for
    Dask computations inside the ``with`` block.
    """
    from distributed import Client, LocalCluster

    cfg = cfg or ClusterConfig()
    if cfg.scheduler and cfg.scheduler_file:
        raise ConfigError("give either a scheduler address or a scheduler file, not both")
    security = make_security(cfg)
    if cfg.scheduler_file:
        if not os.path.exists(cfg.scheduler_file):
            raise ConfigError(f"scheduler file {cfg.scheduler_file} does not exist")
        client = Client(scheduler_file=cfg.scheduler_file, security=security)
        cluster = None
    elif cfg.scheduler:
        if cfg.scheduler.startswith("tls://") and security is None:
            raise ConfigError(
                f"scheduler {cfg.scheduler} uses TLS: give --tls-ca-file, --tls-cert, --tls-key"
            )
        client = Client(cfg.scheduler, security=security, timeout="30s")
        cluster = None
    elif cfg.gpus:
        cluster = gpu_cluster(_chosen_gpus(cfg.gpus), memory_limit=cfg.memory_limit or "auto")
        client = Client(cluster)
    else:
        n = cfg.n_workers or max(1, os.cpu_count() or 1)
        passive_openmp()  # the workers inherit it: torch threads sleep, not spin, when waiting
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=cfg.threads_per_worker or 1,
            processes=True,
            memory_limit=cfg.memory_limit or "auto",
            dashboard_address=":0",
            preload=[PRELOAD],  # Ctrl-C reaches the workers too; the client handles it
        )
        client = Client(cluster)
    log.info("Dask cluster: %s (dashboard: %s)", client.scheduler.address, client.dashboard_link)
    interrupted = False
    try:
        with client.as_current():
            yield client
    except KeyboardInterrupt:
        interrupted = cluster is not None
        raise
    finally:
        with _quiet_logs(client) if interrupted else contextlib.nullcontext():
            client.close()
            if cluster is not None:
                cluster.close()


_NOISY = ("distributed", "asyncio", "tornado")


def _silence() -> None:
    import logging

    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _quiet_logs(client: Any) -> Iterator[None]:
    """After Ctrl-C, keep the closing of our own cluster off the terminal.

    The job's tasks were cancelled already (:func:`tomochunk.progress.compute`); closing the
    workers then only logs about the tasks it stops, which the one-line "Interrupted"
    message says already. The workers are silenced for good (they are closing); this
    process's loggers get their levels back afterwards.
    """
    import logging

    with contextlib.suppress(Exception):
        client.run(_silence, wait=True)
    levels = {name: logging.getLogger(name).level for name in _NOISY}
    _silence()
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def gpu_resources(client: Any | None) -> dict[str, float] | None:
    """``{"GPU": 1}`` when a worker of ``client`` advertises a GPU resource, else None."""
    if client is None:
        return None
    info = client.scheduler_info()
    for w in info.get("workers", {}).values():
        if w.get("resources", {}).get("GPU", 0) >= 1:
            return {"GPU": 1}
    return None


def worker_threads(default: int | None = None) -> int:
    """Threads torch should use in this process: the worker's nthreads, else the cores."""
    if default:
        return int(default)
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ValueError, ImportError, AttributeError):
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


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


def _chosen_gpus(gpus: int) -> list[str]:
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
