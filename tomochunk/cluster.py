"""Connect to a Dask cluster or start a LocalCluster; route GPU work.

Library functions compute on whatever Dask scheduler is active (a :class:`distributed.Client`
made current by :func:`connect`, else Dask's threaded scheduler). The CLI and
:func:`tomochunk.run` call :func:`connect`, which by default starts a LocalCluster sized to
the machine (one single-threaded worker process per core).
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

__all__ = ["connect", "gpu_resources", "make_security", "worker_threads"]

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
    else:
        n = cfg.n_workers or max(1, os.cpu_count() or 1)
        passive_openmp()  # the workers inherit it: torch threads sleep, not spin, when waiting
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=cfg.threads_per_worker or 1,
            processes=True,
            memory_limit=cfg.memory_limit or "auto",
            dashboard_address=":0",
        )
        client = Client(cluster)
    log.info("Dask cluster: %s (dashboard: %s)", client.scheduler.address, client.dashboard_link)
    try:
        with client.as_current():
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
