"""Turn environment faults into one-line tomochunk errors that name the fix.

Bad input is caught by the checks of each stage; what remains are faults of the machine
(a read-only or full file system, no permission), of the cluster (an address that is not
one, a scheduler that does not answer) and of the data on disk (a corrupt chunk). The CLI
passes any other exception through :func:`explain`; a known fault becomes a
:class:`~tomochunk.errors.TomochunkError` printed as one line with exit status 2, an
unknown one keeps its traceback (a bug to report).
"""

from __future__ import annotations

import errno
import re
import socket

from .errors import ConfigError, CorruptStoreError, InputError, TomochunkError

__all__ = ["explain", "check_scheduler_address"]

_OS_FIXES = {
    errno.EROFS: "the file system is read-only; write the output to a writable location",
    errno.ENOSPC: "no space left on the device; free some space or write the output elsewhere "
                  "(the partial output was removed)",
    errno.EFBIG: "the file grew beyond what the file system or the process limit allows; free "
                 "space, raise the limit (ulimit -f) or write the output elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write the output elsewhere",
    errno.EACCES: "permission denied; write the output to a folder you may write to",
    errno.EPERM: "operation not permitted; write the output to a folder you may write to",
    errno.EISDIR: "a folder is in the way of a file; choose another path",
    errno.ENOTDIR: "a file is in the way of a folder; choose another path",
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def explain(exc: BaseException) -> TomochunkError | None:
    """The one-line tomochunk error for a known environment fault, else None."""
    if isinstance(exc, TomochunkError):
        return exc
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:  # look through the chain of causes
        seen.add(id(cur))
        found = _explain_one(cur)
        if found is not None:
            return found
        cur = cur.__cause__ or cur.__context__
    return None


def _explain_one(exc: BaseException) -> TomochunkError | None:
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES:
        where = f" ({exc.filename})" if exc.filename else ""
        return InputError(f"cannot write{where}: {_OS_FIXES[exc.errno]}")
    if isinstance(exc, OSError) and "Timed out trying to connect" in text:
        addr = re.search(r"connect to (\S+)", text)
        return ConfigError(
            f"no Dask scheduler answers at {addr.group(1).rstrip(':') if addr else 'the address'}"
            "; start it ('dask scheduler') or fix --scheduler / --scheduler-file"
        )
    if isinstance(exc, ValueError) and ("missing port number" in text
                                        or "unknown address scheme" in text.lower()):
        return ConfigError(
            f"the scheduler address is not valid ({_first_line(exc)}); give --scheduler as "
            "tcp://HOST:PORT or tls://HOST:PORT"
        )
    low = text.lower()
    if "blosc" in low or "decompress" in low or "codec" in low and "decod" in low:
        return CorruptStoreError(
            f"a chunk of a store cannot be decoded ({_first_line(exc)}); the store is "
            "corrupt: re-create it with the stage that wrote it (tomochunk ingest for "
            "scan.zarr) and --overwrite"
        )
    return None


def check_scheduler_address(address: str | None, timeout: float = 5.0) -> None:
    """Refuse a scheduler address that is not one, or where nothing listens, at once.

    Distributed retries a refused connection for its whole timeout (30 s) and then raises
    ``OSError: Timed out``; a plain TCP connect tells the same in milliseconds.
    """
    if not address or address.startswith(("inproc://", "ucx://")):
        return  # in-process clusters (tests, notebooks) and UCX: nothing to probe over TCP
    m = re.fullmatch(r"(?:(tcp|tls)://)?\[?([^\s/\[\]]+?)\]?:(\d{1,5})/?", address.strip())
    if m is None:
        if "://" in address and not address.startswith(("tcp://", "tls://")):
            scheme = address.split("://", 1)[0]
            raise ConfigError(
                f"--scheduler {address[:80]!r} uses the unsupported scheme {scheme[:20]!r}; "
                "give tcp://HOST:PORT or tls://HOST:PORT"
            )
        raise ConfigError(
            f"--scheduler {address[:80]!r} is not a scheduler address; give tcp://HOST:PORT "
            "or tls://HOST:PORT (as printed by 'dask scheduler')"
        )
    host, port = m.group(2), int(m.group(3))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"no Dask scheduler answers at {address[:80]} ({_first_line(exc)}); start it "
            "('dask scheduler') or fix --scheduler"
        ) from exc
