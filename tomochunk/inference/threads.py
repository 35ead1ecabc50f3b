"""torch threads of an inference task on a Dask worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["task_threads", "torch_threads"]


def task_threads() -> int | None:
    """torch threads for one inference task on a Dask worker: 1 (None outside a worker).

    A worker with ``N`` threads (:func:`tomochunk.cluster.worker_threads`) runs ``N`` tasks
    at once, so each task's torch calls get one thread: ``N`` cores busy and no ``N²``
    oversubscription (``N`` torch threads per task made a 2-thread worker several times
    slower in ``benchmarks/inference.py``). For one task using many cores, start workers
    with one thread and let the cluster run one task per worker process.
    """
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return None
    return 1


@contextlib.contextmanager
def torch_threads() -> Iterator[None]:
    import torch

    n = task_threads()
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)
