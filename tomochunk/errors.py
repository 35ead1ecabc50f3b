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
    "LockedError",
    "CorruptStoreError",
    "LoggedWarning",
    "located",
    "shorten",
]


class TomochunkError(Exception):
    """Base class of every error tomochunk raises on purpose."""


class LoggedWarning(UserWarning):
    """A warning tomochunk also writes to its log: the CLI shows the log line only."""


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


class LockedError(TomochunkError, RuntimeError):
    """Another tomochunk process holds the run folder or stage output (names pid and host)."""


class CorruptStoreError(TomochunkError, RuntimeError):
    """A store's chunk is missing or does not match the manifest written at completion."""


def shorten(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages that echo user input.

    A huge value (a YAML alias bomb, a pasted array) must never make the message itself
    expensive or unreadable: containers are summarised before they are printed in full.
    """
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 6, 6, 6, 6
    r.maxstring = r.maxother = r.maxlong = limit
    try:
        text = r.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
