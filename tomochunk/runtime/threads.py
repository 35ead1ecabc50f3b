"""The thread policy: how many threads each kind of work uses, decided in one place.

Every caller that sizes a thread pool (the LocalCluster, a reconstruction task, an inference
task, training) asks :func:`thread_count`. A number the user gave always wins.
"""

from __future__ import annotations

import os
from typing import Literal

from .client import current_client, in_worker

__all__ = ["Role", "thread_count", "machine_cores", "worker_threads"]

#: The kinds of work that need a thread count.
Role = Literal["local_workers", "recon_task", "inference_task", "training", "training_stage"]


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_threads(default: int | None = None) -> int:
    """Threads torch should use in this process: ``default``, the worker's nthreads, the cores."""
    if default:
        return int(default)
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ValueError, ImportError, AttributeError):
        return machine_cores()


def thread_count(role: Role, *, requested: int | None = None, n_tasks: int = 1,
                 local_cluster: bool = False) -> int | None:
    """The number of threads for ``role``.

    Parameters
    ----------
    role : {"local_workers", "recon_task", "inference_task", "training", "training_stage"}
        ``local_workers``: worker processes of a LocalCluster (one per core).
        ``recon_task``: finufft/FFT threads of one reconstruction task: 1 under a
        distributed client (it runs one task per worker thread), else the cores shared among
        the ``n_tasks`` concurrent tasks.
        ``inference_task``: torch threads of one inference task: 1 on a Dask worker (a worker
        with N threads runs N tasks; N torch threads each oversubscribe it), None elsewhere.
        ``training``: torch threads of the training task: the worker's threads, else the cores.
        ``training_stage``: what a pipeline run asks for training: every core of this machine
        on a LocalCluster (the stages run one after another), None (the worker decides) on a
        remote cluster.
    requested : int, optional
        A number the user gave; returned as is.
    n_tasks : int
        Tasks that run at once (``recon_task``).
    local_cluster : bool
        The cluster is a LocalCluster on this machine (``training_stage``).

    Returns
    -------
    int or None
        None: leave the library's default.
    """
    if requested is not None:
        return requested
    if role == "local_workers":
        return max(1, os.cpu_count() or 1)
    if role == "recon_task":
        if current_client() is not None:
            return 1
        cores = os.cpu_count() or 1
        return max(1, cores // max(1, min(n_tasks, cores)))
    if role == "inference_task":
        return 1 if in_worker() else None
    if role == "training":
        return worker_threads()
    return machine_cores() if local_cluster else None
