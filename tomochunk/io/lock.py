"""An exclusive lock on a run folder or a stage's output, naming its holder.

Two processes writing the same run folder (or the same store) would redo each other's
stages and read stores the other is replacing. :func:`exclusive` creates a lock file next
to the path with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems) holding the
holder's pid, host and start time; a second process fails at once with
:class:`~tomochunk.errors.LockedError` naming the holder. A lock whose pid is dead on this
host is stale (a killed run) and is cleared. The lock is re-entrant within one process, so
``demo`` -> ``run`` -> stage functions may each take it (the file names this pid).

On an object store (an fsspec URL, :func:`exclusive` with ``storage_options``) the lock is
an object ``.NAME.tomochunk-lock`` next to the output, created with a conditional put
(``mode="create"``: S3's ``If-None-Match: *``, which AWS S3 and S3-compatible servers such as
moto honour), so of two processes racing for it exactly one succeeds. A file system whose
fsspec driver cannot create exclusively falls back to check-then-write and reads the lock
back to see that it holds its own token: that narrows the race window but does not close
it. A remote lock whose holder died on this host is cleared like a local one; one left on
another host must be deleted by hand (the message names it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
    """The lock file's JSON object; ``{}`` when it is missing, unreadable or not an object."""
    try:
        info = json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _try_create(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}, f)
    return True


def _refuse(what: str, path: Any, info: dict[str, object], lock: Any) -> LockedError:
    return LockedError(
        f"{what} {path} is in use by another tomochunk process (pid {info.get('pid')} on host "
        f"{info.get('host')}); wait for it to finish, or stop it (a lock left by a dead "
        f"process on this host is cleared automatically; otherwise delete {lock})"
    )


def _remote_lock_url(url: str) -> str:
    parent, _, name = url.rstrip("/").rpartition("/")
    return f"{parent}/.{name}.tomochunk-lock"


@contextlib.contextmanager
def _exclusive_remote(url: str, what: str,
                      storage_options: Mapping[str, Any] | None) -> Iterator[str]:
    """:func:`exclusive` for an fsspec URL: a lock object created with a conditional put."""
    import json as _json

    from .urls import filesystem

    lock = _remote_lock_url(url)
    fs, key = filesystem(lock, storage_options)
    here = socket.gethostname()
    mine = {"pid": os.getpid(), "host": here, "since": time.time(), "token": uuid.uuid4().hex}

    def read() -> dict[str, object]:
        try:
            return dict(_json.loads(fs.cat_file(key)))
        except (FileNotFoundError, ValueError, TypeError):
            return {}

    held = read()
    if (held.get("pid"), held.get("host")) == (mine["pid"], here):  # nested: ours already
        yield lock
        return
    for _ in range(3):
        try:
            fs.pipe_file(key, _json.dumps(mine).encode(), mode="create")
        except FileExistsError:
            info = read()
            pid = info.get("pid")
            if isinstance(pid, int) and info.get("host") == here and not _pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(key)  # stale: its process died without releasing it
                continue
            raise _refuse(what, url, info, lock) from None
        if read().get("token") != mine["token"]:  # a non-exclusive driver lost a race
            raise _refuse(what, url, read(), lock)
        break
    else:
        raise LockedError(f"could not lock {what} {url}; delete {lock} if no run uses it")
    try:
        yield lock
    finally:
        if read().get("token") == mine["token"]:
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(key)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], what: str = "output",
              storage_options: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """Hold the lock of ``path`` (a path or an fsspec URL) for the ``with`` block.

    Raises
    ------
    LockedError
        Another live process holds it (the message names its pid and host).
    """
    from .urls import is_url, local_path

    if is_url(path):
        with _exclusive_remote(os.fspath(path), what, storage_options) as remote:
            yield remote
        return
    path = local_path(path)
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
        raise _refuse(what, path, {"pid": pid, "host": host}, lock)
    else:
        raise LockedError(f"could not lock {what} {path}; delete {lock} if no run uses it")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
