"""Worker set-up for the clusters tomochunk starts: Ctrl-C belongs to the client.

In a terminal, Ctrl-C sends SIGINT to the whole foreground process group, which holds the
worker processes of a LocalCluster too. Each worker would die mid-task with a
``KeyboardInterrupt`` traceback on the terminal, and a task it was running could still write
a chunk into the output the client is about to remove. The client handles Ctrl-C: it cancels
its tasks, waits for the running ones to stop, removes the partial output and closes the
cluster (:func:`tomochunk.runtime.cluster.connect`). So the workers it starts ignore SIGINT; this
module is their Dask preload (``preload=[__name__]``).

While the client starts its local cluster, it blocks SIGINT (:func:`hold_sigint`; the
``tomochunk`` command blocks it from its first import, :mod:`tomochunk_launcher`): the worker
processes spawned then inherit it blocked, so none can die half-started with a traceback,
and a Ctrl-C pressed meanwhile is raised once the cluster object is whole, where
:func:`tomochunk.runtime.cluster.connect` closes it like any other.

Workers of a cluster the user started (``--scheduler``) are left alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["PRELOAD", "dask_setup", "hold_sigint", "ignore_sigint", "release_sigint"]

#: The module name to pass as a worker ``preload``.
PRELOAD = __name__


def ignore_sigint() -> bool:
    """Ignore SIGINT in this process; False where that is impossible (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


def hold_sigint(*, spawning: bool = True) -> Callable[[], None]:
    """Block SIGINT in this thread; return the function that unblocks it (:func:`release_sigint`).

    Threads and processes started meanwhile inherit the blocked mask (a process keeps it
    across ``exec``), so none of them ever sees the Ctrl-C. A Ctrl-C pressed while it is
    held stays pending and is raised as :class:`KeyboardInterrupt` when the returned
    function unblocks it (it may be called more than once). ``spawning``: processes will
    be started meanwhile (see below). Outside the main thread, or where signal masks do not
    exist, nothing is blocked.
    """
    if not _masks():
        return lambda: None
    if spawning:
        # multiprocessing's resource tracker, started with the first spawned process,
        # unblocks SIGINT in the thread that starts it (CPython 3.11's
        # resource_tracker.ensure_running): start it now, so that Dask's event-loop thread
        # keeps the mask it inherits
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    done = False

    def release() -> None:
        nonlocal done
        if not done:
            done = True
            release_sigint()

    return release


def release_sigint() -> None:
    """Unblock SIGINT in the main thread: a pending Ctrl-C is raised right after this call."""
    if _masks():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _masks() -> bool:
    return (hasattr(signal, "pthread_sigmask")
            and threading.current_thread() is threading.main_thread())


def dask_setup(worker: Any) -> None:
    """Dask preload hook, run in the worker process's main thread as it starts."""
    ignore_sigint()
