"""The client lookup: the active :class:`distributed.Client`, if any."""

from __future__ import annotations

from typing import Any

__all__ = ["current_client", "in_worker"]


def current_client() -> Any | None:
    """The active :class:`distributed.Client`, or None."""
    try:
        from distributed import default_client

        return default_client()
    except (ValueError, ImportError):
        return None


def in_worker() -> bool:
    """Whether this code runs inside a Dask worker's task."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True
