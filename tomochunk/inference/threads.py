"""torch threads of an inference task on a Dask worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["task_threads", "torch_threads"]


def task_threads() -> int | None:
    """torch threads for one inference task on a Dask worker: 1 (None outside a worker).

    The policy is :func:`tomochunk.runtime.threads.thread_count` (``inference_task``): a
    worker with ``N`` threads runs ``N`` tasks at once, so each task's torch calls get one
    thread.
    """
    from ..runtime.threads import thread_count

    return thread_count("inference_task")


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
