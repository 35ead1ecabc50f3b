"""Forward the workers' ``tomochunk`` log records to the client's console and log file."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from distributed import WorkerPlugin

from .logs import child_loggers, get_logger, levels, set_levels

__all__ = ["forward_worker_logs"]

log = get_logger("pipeline")


class _WorkerLogLevel(WorkerPlugin):
    """Worker plugin: level the ``tomochunk`` loggers of every worker like this process's.

    Together with :meth:`distributed.Client.forward_logging`, what tasks log (training epochs
    with their losses, per-block reports) reaches the console and the run's log file, and
    the workers' progress bars (training epochs) follow ``--quiet``.
    """

    name = "tomochunk-log-level"

    def __init__(self, console: int, file: int, children: list[str]) -> None:
        self.console, self.file, self.children = console, file, children

    def setup(self, worker: Any) -> None:
        set_levels(self.console, self.file, self.children)


class _OwnProcessFilter(logging.Filter):
    """Pass warnings, and other records only when logged by this process."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.process == os.getpid()


@contextlib.contextmanager
def forward_worker_logs(client: Any, quiet: bool, verbose: bool, local: bool) -> Iterator[None]:
    """Forward the workers' ``tomochunk`` log records to this process while in the block.

    They all go to the log file. On the console, a local cluster's workers draw their own
    progress bars (training epochs with losses) on this terminal, so their INFO records are
    left out there unless ``verbose``; a remote cluster's are shown.
    """
    console, file = levels(quiet, verbose)
    try:
        client.register_plugin(_WorkerLogLevel(console, file, child_loggers()),
                               name=_WorkerLogLevel.name)
        client.forward_logging("tomochunk", level=file)
    except Exception as exc:  # noqa: BLE001 - logging from workers is a convenience
        log.debug("worker log forwarding unavailable: %s", exc)
        yield
        return
    streams = [h for h in logging.getLogger("tomochunk").handlers
               if not isinstance(h, logging.FileHandler)] if local and not verbose else []
    only_own = _OwnProcessFilter()
    for h in streams:
        h.addFilter(only_own)
    try:
        yield
    finally:
        for h in streams:
            h.removeFilter(only_own)
        try:
            client.unforward_logging("tomochunk")
            client.unregister_worker_plugin(_WorkerLogLevel.name)
        except Exception as exc:  # noqa: BLE001 - the cluster may be gone already
            log.debug("could not stop worker log forwarding: %s", exc)
