"""Progress display and logging for long work.

:func:`compute` runs Dask collections with a progress bar: the distributed progress bar when
a :class:`distributed.Client` is active, otherwise :class:`dask.diagnostics.ProgressBar`.
Bars are hidden when the ``tomochunk`` logger is above INFO (``--quiet``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import dask

__all__ = ["get_logger", "compute", "progress_enabled", "tqdm", "current_client"]

T = TypeVar("T")


def get_logger(name: str) -> logging.Logger:
    """Logger ``tomochunk.<name>``."""
    return logging.getLogger(f"tomochunk.{name}" if not name.startswith("tomochunk") else name)


def progress_enabled() -> bool:
    """Whether progress bars should be drawn (the tomochunk logger shows INFO)."""
    return logging.getLogger("tomochunk").getEffectiveLevel() <= logging.INFO


def current_client() -> Any | None:
    """The active :class:`distributed.Client`, or None."""
    try:
        from distributed import default_client

        return default_client()
    except (ValueError, ImportError):
        return None


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
        if show:
            from distributed.diagnostics.progressbar import progress

            print(f"{label}:", file=sys.stderr)
            progress(futures, notebook=False)
            print(file=sys.stderr)
        results = tuple(client.gather(futures))
    elif show:
        from dask.diagnostics import ProgressBar

        print(f"{label}:", file=sys.stderr)
        with ProgressBar(out=sys.stderr):
            results = dask.compute(*collections)
    else:
        results = dask.compute(*collections)
    log.info("%s done in %.1f s", label, time.perf_counter() - t0)
    return results


def tqdm(iterable: Iterable[T], **kwargs: Any) -> Iterator[T]:
    """:func:`tqdm.tqdm` that respects ``--quiet``."""
    from tqdm.auto import tqdm as _tqdm

    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("file", sys.stderr)
    return iter(_tqdm(iterable, **kwargs))
