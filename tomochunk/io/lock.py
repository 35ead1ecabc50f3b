"""An exclusive lock on a run folder or a stage's output, naming its holder.

Two processes writing the same run folder (or the same store) would redo each other's
stages and read stores the other is replacing. :func:`exclusive` creates a lock file next
to the path with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems) holding the
holder's pid, host and start time; a second process fails at once with
:class:`~tomochunk.errors.LockedError` naming the holder. A lock whose pid is dead on this
host is stale (a killed run) and is cleared. The lock is re-entrant within one process, so
``demo`` -> ``run`` -> stage functions may each take it (the file names this pid).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import LockedError

__all__ = ["exclusive", "lock_path"]

def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of ``path``: ``.NAME.tomochunk-lock`` next to it."""
    p = Path(os.path.abspath(os.fspath(path)))
    return p.with_name(f".{p.name}.tomochunk-lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _read(lock: Path) -> dict[str, object]:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def _try_create(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}, f)
    return True


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], what: str = "output") -> Iterator[Path]:
    """Hold the lock of ``path`` for the ``with`` block.

    Raises
    ------
    LockedError
        Another live process holds it (the message names its pid and host).
    """
    lock = lock_path(path)
    mine = {"pid": os.getpid(), "host": socket.gethostname()}
    held = _read(lock)
    if {k: held.get(k) for k in mine} == mine:  # nested: an outer block of ours holds it
        yield lock
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        if _try_create(lock):
            break
        info = _read(lock)
        pid, host = info.get("pid"), info.get("host")
        here = socket.gethostname()
        if isinstance(pid, int) and host == here and not _pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process died without releasing it
            continue
        if not info and lock.exists() and time.time() - lock.stat().st_mtime < 2.0:
            time.sleep(0.2)  # being written right now
            continue
        raise LockedError(
            f"{what} {path} is in use by another tomochunk process (pid {pid} on host "
            f"{host}); wait for it to finish, or stop it (a lock left by a dead process on "
            f"this host is cleared automatically; otherwise delete {lock})"
        )
    else:
        raise LockedError(f"could not lock {what} {path}; delete {lock} if no run uses it")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
