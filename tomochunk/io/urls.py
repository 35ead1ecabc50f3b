"""fsspec URLs (``s3://``, ``gs://``, ``https://``, ``file://``) for reading stores.

A path with a ``scheme://`` prefix is opened through fsspec with ``storage_options`` (for S3:
``key``, ``secret``, ``endpoint_url``, ``anon``, ...; ``--storage-option k=v`` on the command
line). Plain paths and ``file://`` URLs stay local paths.

Scope of this version: *reading* complete stores (``tc.open_store`` and everything built on
it, e.g. ``tomochunk export``). Writing stages to object stores is not implemented: it needs a
completion protocol without rename (see the README).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["is_url", "local_path", "parse_storage_options", "zarr_store"]

_LOCAL = ("file://", "local://")


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for a remote fsspec URL (``s3://...``); False for paths and ``file://`` URLs."""
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


def zarr_store(url: str, storage_options: Mapping[str, Any] | None = None, *,
               read_only: bool = True) -> Any:
    """A Zarr v3 store for a remote URL (``zarr.storage.FsspecStore``)."""
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(url, storage_options=dict(storage_options or {}),
                                read_only=read_only)
