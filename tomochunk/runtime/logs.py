"""Logging: the ``tomochunk.*`` loggers, and the console / log-file set-up of a session.

One implementation for the CLI commands and for :func:`tomochunk.pipeline.run`: the console
shows INFO (WARNING with ``--quiet``, DEBUG with ``--verbose``), a run's log file gets
everything from INFO up. Forwarding the workers' records is in :mod:`.worker_logs`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

__all__ = ["get_logger", "levels", "set_levels", "child_loggers", "session_logging"]


def get_logger(name: str) -> logging.Logger:
    """Logger ``tomochunk.<name>``."""
    return logging.getLogger(f"tomochunk.{name}" if not name.startswith("tomochunk") else name)


def levels(quiet: bool, verbose: bool) -> tuple[int, int]:
    """(console level, log-file level) for the command-line flags."""
    console = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    return console, logging.DEBUG if verbose else logging.INFO


def set_levels(console: int, file: int, children: list[str]) -> None:
    """Level the ``tomochunk`` loggers so the log file gets ``file`` and up, the bars follow
    the console.

    Progress bars are drawn while the ``tomochunk`` logger shows INFO
    (:func:`tomochunk.runtime.progress.progress_enabled`); with ``--quiet`` it is set to
    WARNING and its ``children`` (the stage modules' loggers) to ``file`` so the log stays complete.
    """
    root = logging.getLogger("tomochunk")
    root.setLevel(max(console, file))
    for name in children:
        logging.getLogger(name).setLevel(file if console > file else logging.NOTSET)


def child_loggers() -> list[str]:
    """The ``tomochunk.*`` loggers, after importing every stage module (which creates them)."""
    import importlib

    for name in ("runtime.cluster", "filters", "infer", "io.ingest", "phantom", "recon.volume",
                 "report", "training.n2i"):
        importlib.import_module(f"tomochunk.{name}")
    return sorted(n for n in logging.Logger.manager.loggerDict if n.startswith("tomochunk."))


@contextlib.contextmanager
def session_logging(quiet: bool, verbose: bool, log_file: Path | None = None) -> Iterator[None]:
    """Console at the chosen level and, with ``log_file``, the whole log into that file.

    Used by every CLI command (console only) and by :func:`tomochunk.pipeline.run`
    (``RUN_DIR/tomochunk.log``). The loggers are restored on exit; a nested use with the
    same log file (``demo`` calling ``run``) keeps the outer set-up.

    Parameters
    ----------
    quiet, verbose : bool
        Console level: warnings only, or debug.
    log_file : path, optional
        A file that receives INFO and up (DEBUG with ``verbose``) whatever the console shows.
    """
    root = logging.getLogger("tomochunk")
    if log_file is not None and any(isinstance(h, logging.FileHandler)
                                    and Path(h.baseFilename) == log_file for h in root.handlers):
        yield
        return
    console, file = levels(quiet, verbose)
    if log_file is None:
        file = console
    saved_level, saved_propagate = root.level, root.propagate
    saved = {h: h.level for h in root.handlers}
    streams = [h for h in root.handlers if not isinstance(h, logging.FileHandler)]
    if not streams:
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(sh)
        streams = [sh]
    for h in streams:
        h.setLevel(console)
    fh = None
    if log_file is not None:
        fh = logging.FileHandler(log_file)
        fh.setLevel(file)
        fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.addHandler(fh)
    root.propagate = False
    children = child_loggers() if log_file is not None else []  # (imports the stages)
    set_levels(console, file, children)
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in saved:
                root.removeHandler(h)
                if h is fh:
                    h.close()
        for h, lvl in saved.items():
            h.setLevel(lvl)
        set_levels(logging.NOTSET, logging.NOTSET, children)
        root.setLevel(saved_level)
        root.propagate = saved_propagate
