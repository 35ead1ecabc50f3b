"""The ``tomochunk`` console command's entry point, kept outside the ``tomochunk`` package.

Importing tomochunk takes seconds (NumPy, Dask, xarray, Zarr, PyTorch on first use), and a
local cluster takes seconds more to start. A Ctrl-C in those seconds used to end in a
``KeyboardInterrupt`` traceback from whichever module was being imported, or from worker
processes that were still starting. So the command blocks SIGINT before its first import:
every thread and process started meanwhile inherits it blocked, and the command unblocks it
in its main thread only where it can stop cleanly (:func:`tomochunk.cli_support.errors` as a
command starts, :func:`tomochunk.runtime.cluster.connect` once the local cluster is whole). A
Ctrl-C pressed while it is blocked stays pending and is raised there, as one line and exit
status 130. Once the command has finished, SIGINT is blocked again, so a late Ctrl-C cannot
turn its exit status into a kill by signal. This module must import nothing of tomochunk
at its top.
"""

from __future__ import annotations

import signal

__all__ = ["main"]


def main() -> None:
    """Run the ``tomochunk`` command line with Ctrl-C held back until it can be handled."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        from tomochunk.cli import main as cli

        cli()
    finally:
        # the command is done (click exits through SystemExit): a Ctrl-C from now on must
        # not kill the exiting process, which would turn its exit status into -SIGINT
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
