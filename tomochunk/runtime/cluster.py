"""Connect to a Dask cluster or start a LocalCluster.

GPU workers: :mod:`tomochunk.runtime.gpu`.

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

from ..config import ClusterConfig
from ..errors import ConfigError
from .gpu import chosen_gpus, gpu_cluster
from .logs import get_logger
from .openmp_env import passive_openmp
from .threads import thread_count
from .worker_signals import PRELOAD, hold_sigint

__all__ = ["connect", "make_security"]

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
    cfg = cfg or ClusterConfig()
    if cfg.scheduler and cfg.scheduler_file:
        raise ConfigError("give either a scheduler address or a scheduler file, not both")
    security = make_security(cfg)
    if cfg.scheduler_file and not os.path.exists(cfg.scheduler_file):
        raise ConfigError(f"scheduler file {cfg.scheduler_file} does not exist")
    if cfg.scheduler and cfg.scheduler.startswith("tls://") and security is None:
        raise ConfigError(
            f"scheduler {cfg.scheduler} uses TLS: give --tls-ca-file, --tls-cert, --tls-key"
        )
    local = not (cfg.scheduler or cfg.scheduler_file)
    cluster = client = None
    # a Ctrl-C while the local cluster starts is held back and raised inside the try below,
    # once the cluster is whole (its workers inherit it blocked: no half-started tracebacks)
    release = hold_sigint() if local else (lambda: None)
    interrupted = False
    try:
        cluster, client = _start(cfg, security)
        release()
        log.info("Dask cluster: %s (dashboard: %s)", client.scheduler.address,
                 client.dashboard_link)
        with client.as_current():
            yield client
    except KeyboardInterrupt:
        interrupted = cluster is not None
        raise
    finally:
        release()
        # a Ctrl-C while the cluster closes is held back until it is closed: cut short, the
        # close leaves workers half-stopped, which Dask's exit handler then trips over
        closed = hold_sigint(spawning=False) if local else (lambda: None)
        try:
            with _quiet_logs(client) if interrupted and client is not None \
                    else contextlib.nullcontext():
                if client is not None:
                    client.close()
                if cluster is not None:
                    cluster.close()
        finally:
            closed()


def _start(cfg: ClusterConfig, security: Any) -> tuple[Any, Any]:
    """The ``(cluster, client)`` of ``cfg``: cluster None when connecting to a running one."""
    from distributed import Client, LocalCluster

    if cfg.scheduler_file:
        return None, Client(scheduler_file=cfg.scheduler_file, security=security)
    if cfg.scheduler:
        return None, Client(cfg.scheduler, security=security, timeout="30s")
    if cfg.gpus:
        cluster = gpu_cluster(chosen_gpus(cfg.gpus), memory_limit=cfg.memory_limit or "auto")
    else:
        n = thread_count("local_workers", requested=cfg.n_workers)
        passive_openmp()  # the workers inherit it: torch threads sleep, not spin, when waiting
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=cfg.threads_per_worker or 1,
            processes=True,
            memory_limit=cfg.memory_limit or "auto",
            dashboard_address=":0",
            preload=[PRELOAD],  # Ctrl-C reaches the workers too; the client handles it
        )
    try:
        return cluster, Client(cluster)
    except BaseException:
        cluster.close()
        raise


_NOISY = ("distributed", "asyncio", "tornado")


def _silence() -> None:
    import logging

    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _quiet_logs(client: Any) -> Iterator[None]:
    """After Ctrl-C, keep the closing of our own cluster off the terminal.

    The job's tasks were cancelled already (:func:`tomochunk.runtime.progress.compute`); closing the
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
