"""Compute with progress: bars for long work, one timing line per computation.

:func:`compute` runs Dask collections with a progress bar: the distributed progress bar when
a :class:`distributed.Client` is active, otherwise :class:`dask.diagnostics.ProgressBar`.
Bars are hidden when the ``tomochunk`` logger is above INFO (``--quiet``), and drawn only
on a terminal: redirected to a file, each computation logs one line ("LABEL done in N s")
instead of hundreds of bar frames. Every bar goes to stderr, never to stdout.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import dask

from .client import current_client
from .logs import get_logger

__all__ = ["compute", "progress_enabled", "tqdm", "wait_for"]

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars should be drawn: the tomochunk logger shows INFO and stderr is
    a terminal."""
    on_terminal = bool(getattr(sys.stderr, "isatty", lambda: False)())
    return on_terminal and logging.getLogger("tomochunk").getEffectiveLevel() <= logging.INFO


def compute(*collections: Any, label: str = "computing") -> tuple[Any, ...]:
    """Compute Dask collections with a progress bar and a one-line timing log.

    Works with the distributed scheduler when a client is active and with the local
    threaded scheduler otherwise.
    """
    log = get_logger("progress")
    t0 = time.perf_counter()
    client = current_client()
    show = progress_enabled()
    if client is not None:
        futures = client.compute(list(collections))
        try:
            if show:
                from distributed.diagnostics.progressbar import progress

                print(f"{label}:", file=sys.stderr)
                with contextlib.redirect_stdout(sys.stderr):  # the text bar prints to stdout
                    progress(futures, notebook=False)
                print(file=sys.stderr)
            wait_for(futures)
            results = tuple(client.gather(futures))
        except BaseException:
            _stop_running(client, futures)
            raise
    elif show:
        from dask.diagnostics import ProgressBar

        print(f"{label}:", file=sys.stderr)
        with ProgressBar(out=sys.stderr):
            results = dask.compute(*collections)
    else:
        results = dask.compute(*collections)
    log.info("%s done in %.1f s", label, time.perf_counter() - t0)
    return results


def wait_for(futures: Any, poll: float = 0.05) -> None:
    """Wait in this thread until every future is finished, failed or cancelled.

    Ctrl-C then interrupts a ``time.sleep`` here, not a blocking call into the client's
    event loop: that would leave an orphaned gather that logs "Task exception was never
    retrieved" with a traceback when the job is cancelled.
    """
    futures = list(futures) if isinstance(futures, (list, tuple)) else [futures]
    while any(f.status == "pending" for f in futures):
        time.sleep(poll)


def _executing(dask_worker: Any) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def _stop_running(client: Any, futures: Any, timeout: float = 60.0) -> None:
    """Cancel a failed computation and wait until none of its tasks still runs.

    Dask cannot interrupt a running task, so tasks of a failed job that are already running
    on other workers would otherwise go on writing chunks into an output the caller removes
    next (leaving a stale partial store behind).
    """
    try:
        client.cancel(futures, force=True)
        keys: set[str] = set()
        for _ in range(2):
            keys |= {k for ks in client.run(_executing).values() for k in ks}
            time.sleep(0.05)
        t0 = time.monotonic()
        while keys and time.monotonic() - t0 < timeout:
            keys &= {k for ks in client.run(_executing).values() for k in ks}
            time.sleep(0.05)
    except Exception:  # noqa: BLE001 - best effort: the original error is what matters
        get_logger("progress").debug("could not wait for the failed job's tasks", exc_info=True)


def tqdm(iterable: Iterable[T], **kwargs: Any) -> Iterator[T]:
    """:func:`tqdm.tqdm` that respects ``--quiet``."""
    from tqdm.auto import tqdm as _tqdm

    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("file", sys.stderr)
    return iter(_tqdm(iterable, **kwargs))
