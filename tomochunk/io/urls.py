"""fsspec URLs (``s3://``, ``gs://``, ``https://``, ``file://``) for inputs and outputs.

A path with a ``scheme://`` prefix is opened through fsspec with ``storage_options`` (for S3:
``key``, ``secret``, ``endpoint_url``, ``anon``, ...; ``--storage-option k=v`` on the command
line, ``io.storage_options`` in a run configuration). Plain paths and ``file://`` URLs stay
local paths. Nothing here names a scheme: every call goes through the URL's fsspec filesystem.

Writing without rename (object stores have none). A remote output is written in a local
staging folder (:func:`staging_dir`) with the same code as a local one, finalized there
(units, NGFF, chunk manifest, completion attribute, consolidated metadata) and then
*published* (:func:`publish`): every object is uploaded first, the output's completion marker
(:data:`MARKERS`: the store's root ``zarr.json``, which holds the completion attribute and
the consolidated metadata; a model folder's ``model.pt``; a report's ``index.html``) last,
in one PUT. A store whose upload was interrupted therefore has no root ``zarr.json`` and is
never read as complete. Replacing an output (:func:`remove`) first invalidates its marker
(strips the completion attribute and the consolidated metadata from the root ``zarr.json``,
or deletes ``model.pt``/``index.html``), then deletes the rest, so a crash mid-way leaves
an incomplete output, never a stale complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, InputError

__all__ = ["MARKERS", "is_url", "local_path", "parse_storage_options", "zarr_store",
           "filesystem", "join", "basename", "exists", "read_bytes", "write_bytes",
           "fetch", "publish", "invalidate", "remove", "staging_dir", "redact", "RemotePath",
           "location", "zarr_array", "array_version"]

_LOCAL = ("file://", "local://")

#: The objects that mark a remote output complete, uploaded last and invalidated first.
MARKERS = ("zarr.json", "model.pt", "index.html")

#: storage_options keys whose values are credentials (never written to run.json/config.yaml).
_SECRET_WORDS = ("key", "secret", "token", "password", "credential")


def is_url(path: Any) -> bool:
    """True for a remote fsspec URL (``s3://...``); False for paths and ``file://`` URLs."""
    if not isinstance(path, str | os.PathLike):
        return False
    text = os.fspath(path)
    return "://" in text and not text.startswith(_LOCAL)


def local_path(path: str | os.PathLike[str]) -> str:
    """``file:///a/b`` -> ``/a/b``; other paths unchanged."""
    text = os.fspath(path)
    for prefix in _LOCAL:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def parse_storage_options(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["anon=true", "endpoint_url=http://h:9000"]`` -> ``{"anon": True, ...}``.

    Values are read as YAML scalars (``true``, ``3``, ``1.5``; anything else stays a string).
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--storage-option must be KEY=VALUE, got {item!r}")
        try:
            parsed = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            parsed = value
        out[key.strip()] = parsed if isinstance(parsed, bool | int | float | str) else value
    return out


def redact(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with credential values replaced by ``"<redacted>"`` (for records on disk)."""
    return {k: ("<redacted>" if any(w in k.lower() for w in _SECRET_WORDS)
                and "url" not in k.lower() else
                (redact(v) if isinstance(v, Mapping) else v))
            for k, v in options.items()}


def zarr_store(url: str, storage_options: Mapping[str, Any] | None = None, *,
               read_only: bool = True) -> Any:
    """A Zarr v3 store for a remote URL (``zarr.storage.FsspecStore``)."""
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(url, storage_options=dict(storage_options or {}),
                                read_only=read_only)


def zarr_array(path: str | os.PathLike[str], name: str,
               storage_options: Mapping[str, Any] | None = None) -> Any:
    """Array ``name`` of the Zarr store at ``path`` (a path or a URL), read-only."""
    import zarr

    if is_url(path):
        return zarr.open_array(zarr_store(join(path, name), storage_options), mode="r")
    return zarr.open_array(os.path.join(local_path(path), name), mode="r")


def array_version(path: str | os.PathLike[str], name: str,
                  storage_options: Mapping[str, Any] | None = None) -> int:
    """A number that changes when array ``name`` of the store at ``path`` is rewritten.

    The mtime of its metadata file, or for a URL a digest of its ETag / modification time;
    0 when absent. Tasks that read a store put it in their key, so a new store is read again.
    """
    import hashlib

    if not is_url(path):
        meta = os.path.join(local_path(path), name, "zarr.json")
        return os.stat(meta).st_mtime_ns if os.path.exists(meta) else 0
    fs, key = filesystem(join(path, f"{name}/zarr.json"), storage_options)
    try:
        info = fs.info(key)
    except FileNotFoundError:
        return 0
    tag = str(info.get("ETag") or info.get("LastModified") or info.get("mtime") or "")
    return int(hashlib.sha256(tag.encode()).hexdigest()[:12], 16)


def filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` of ``url``, listing caches cleared."""
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(url, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise InputError(f"cannot open {url}: {exc}; install the fsspec package for its "
                         "scheme (s3fs for s3://, gcsfs for gs://)") from exc
    fs.invalidate_cache()
    return fs, path.rstrip("/")


def join(url: str | os.PathLike[str], name: str) -> str:
    """``join("s3://b/run", "scan.zarr")`` -> ``"s3://b/run/scan.zarr"``."""
    return f"{os.fspath(url).rstrip('/')}/{name}"


def basename(url: str | os.PathLike[str]) -> str:
    """The last component of a URL or path (``s3://b/run/scan.zarr`` -> ``scan.zarr``)."""
    return os.fspath(url).rstrip("/").rsplit("/", 1)[-1]


def exists(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """True when ``url`` is an object or a prefix holding objects."""
    fs, path = filesystem(url, storage_options)
    return bool(fs.exists(path))


def read_bytes(url: str, storage_options: Mapping[str, Any] | None = None) -> bytes | None:
    """The bytes of object ``url``, or None when it does not exist."""
    fs, path = filesystem(url, storage_options)
    try:
        return bytes(fs.cat_file(path))
    except FileNotFoundError:
        return None


def write_bytes(url: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write object ``url`` in one PUT (an object store replaces it atomically)."""
    fs, path = filesystem(url, storage_options)
    fs.pipe_file(path, data)


def fetch(url: str, dest: str | os.PathLike[str],
          storage_options: Mapping[str, Any] | None = None) -> Path:
    """Download the file or folder ``url`` into the folder ``dest``; return the local copy."""
    fs, path = filesystem(url, storage_options)
    if not fs.exists(path):
        raise InputError(f"input {url} does not exist; check the URL and --storage-option")
    local = Path(dest) / basename(url)
    if fs.isdir(path):
        local.mkdir(parents=True, exist_ok=True)
        files = [f for f in fs.find(path)]
        fs.get(files, [str(local / f[len(path) + 1:]) for f in files])
    else:
        fs.get_file(path, str(local))
    return local


def publish(local: str | os.PathLike[str], url: str,
            storage_options: Mapping[str, Any] | None = None,
            is_marker: Callable[[Path], bool] | None = None) -> int:
    """Upload the complete output folder ``local`` to ``url``, its completion markers last.

    The markers are the files for which ``is_marker`` is true; by default the
    :data:`MARKERS` at the top of ``local``. ``url`` must be empty (see :func:`remove`).
    Returns the number of objects written.
    """
    fs, root = filesystem(url, storage_options)
    local = Path(local)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    if is_marker is None:
        def is_marker(p: Path) -> bool:
            return p.parent == local and p.name in MARKERS
    last = [p for p in files if is_marker(p)]
    first = [p for p in files if p not in last]
    for group in (first, last):
        if group:
            fs.put([str(p) for p in group],
                   [f"{root}/{p.relative_to(local).as_posix()}" for p in group])
    return len(files)


def invalidate(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Make the output at ``url`` look incomplete (the first step of replacing it).

    Strips the completion attribute and the consolidated metadata from a store's root
    ``zarr.json``; deletes a model's ``model.pt`` and a report's ``index.html``. Returns
    whether a marker was found.
    """
    from .store import COMPLETE_ATTR

    fs, root = filesystem(url, storage_options)
    found = False
    for name in MARKERS:
        key = f"{root}/{name}"
        if not fs.exists(key):
            continue
        found = True
        if name == "zarr.json":
            meta = json.loads(fs.cat_file(key))
            (meta.get("attributes") or {}).pop(COMPLETE_ATTR, None)
            meta.pop("consolidated_metadata", None)
            fs.pipe_file(key, json.dumps(meta, indent=2).encode())
        else:
            fs.rm_file(key)
    return found


def remove(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete the output at ``url``: :func:`invalidate` it first, then every object."""
    fs, root = filesystem(url, storage_options)
    if not fs.exists(root):
        return
    invalidate(url, storage_options)
    fs.rm(root, recursive=True)


@dataclass(frozen=True)
class RemotePath:
    """The few :class:`pathlib.Path` operations of a run folder, for an fsspec URL.

    It carries its ``storage_options``, so code written for a run folder's ``Path``
    (``run_dir / "recon.zarr"``, ``.exists()``, ``.read_text()``) reads a bucket too;
    :func:`tomochunk.io.store.open_store` accepts it.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __truediv__(self, name: str) -> RemotePath:
        return RemotePath(join(self.url, name), self.storage_options)

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return basename(self.url)

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind("."):] if "." in name else ""

    def exists(self) -> bool:
        return exists(self.url, self.storage_options)

    def is_dir(self) -> bool:
        fs, path = filesystem(self.url, self.storage_options)
        return bool(fs.isdir(path))

    def read_text(self, encoding: str = "utf-8") -> str:
        data = read_bytes(self.url, self.storage_options)
        if data is None:
            raise FileNotFoundError(self.url)
        return data.decode(encoding)


def location(path: Any, storage_options: Mapping[str, Any] | None = None) -> Any:
    """``path`` as a :class:`~pathlib.Path`, or as a :class:`RemotePath` for a URL."""
    if isinstance(path, RemotePath):
        return path
    if is_url(path):
        return RemotePath(os.fspath(path), dict(storage_options or {}))
    return Path(local_path(path))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def staging_dir(url: str) -> Iterator[Path]:
    """A fresh local folder to write the output for ``url`` in; removed afterwards.

    It lies in the system temporary folder (``TMPDIR``), which must hold the largest output
    and, with a distributed cluster, be shared by the workers (as a local output's folder
    must be). Folders left by killed processes of this host are removed on the next use.
    """
    base = Path(tempfile.gettempdir())
    host = socket.gethostname()
    for old in base.glob(f"tomochunk-stage-{host}-*"):
        pid = old.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    tmp = base / f"tomochunk-stage-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        yield tmp / basename(url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
