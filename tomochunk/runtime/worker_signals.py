"""Worker set-up for the clusters tomochunk starts: Ctrl-C belongs to the client.

In a terminal, Ctrl-C sends SIGINT to the whole foreground process group, which holds the
worker processes of a LocalCluster too. Each worker would die mid-task with a
``KeyboardInterrupt`` traceback on the terminal, and a task it was running could still write
a chunk into the output the client is about to remove. The client handles Ctrl-C: it cancels
its tasks, waits for the running ones to stop, removes the partial output and closes the
cluster (:func:`tomochunk.runtime.cluster.connect`). So the workers it starts ignore SIGINT; this
module is their Dask preload (``preload=[__name__]``).

Workers of a cluster the user started (``--scheduler``) are left alone.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["PRELOAD", "dask_setup", "ignore_sigint"]

#: The module name to pass as a worker ``preload``.
PRELOAD = __name__


def ignore_sigint() -> bool:
    """Ignore SIGINT in this process; False where that is impossible (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


def dask_setup(worker: Any) -> None:
    """Dask preload hook, run in the worker process's main thread as it starts."""
    ignore_sigint()
