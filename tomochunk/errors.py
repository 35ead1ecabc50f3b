"""Exception types raised by tomochunk.

Every error raised on bad input names the problem and the fix, and is raised before any
expensive work starts.
"""

from __future__ import annotations

__all__ = [
    "TomochunkError",
    "InputError",
    "ConfigError",
    "OutputExistsError",
    "IncompleteStoreError",
    "ModelError",
    "BackendUnavailableError",
    "BlockError",
    "located",
]


class TomochunkError(Exception):
    """Base class of every error tomochunk raises on purpose."""


class InputError(TomochunkError, ValueError):
    """The input data (shape, values, angles, flats/darks, ...) cannot be used as given."""


class ConfigError(TomochunkError, ValueError):
    """A configuration value or key is invalid."""


class OutputExistsError(TomochunkError, FileExistsError):
    """The output path exists and ``overwrite`` was not requested."""


class IncompleteStoreError(TomochunkError, RuntimeError):
    """A store exists but was never marked complete (an interrupted or failed stage)."""


class ModelError(TomochunkError, ValueError):
    """A model file is missing metadata, is corrupt or does not fit the data."""


class BackendUnavailableError(TomochunkError, ImportError):
    """A registered backend exists but its optional dependency is not importable."""


class BlockError(TomochunkError, RuntimeError):
    """A chunk/block task failed on something other than a tomochunk error.

    The message names the block (detector rows or slices, and the store) and the cause.
    """


def located(err: Exception, where: str) -> TomochunkError:
    """``err`` as a tomochunk error whose message starts with ``where``.

    Used by chunk and block tasks so that a failure names the block (detector rows or
    slices, and the store) and the cause. Tomochunk errors keep their type; any other
    error becomes a :class:`BlockError` naming the original type. The result carries a
    single message, so it survives pickling between Dask processes.
    """
    if isinstance(err, TomochunkError):
        try:
            return type(err)(f"{where}: {err}")
        except TypeError:  # an error class with another constructor
            pass
    return BlockError(f"{where}: {type(err).__name__}: {err}")
