"""The chunk manifests of a completed store: every chunk file of each array and its size.

Zarr reads a missing chunk as its fill value (zeros), so a deleted or truncated chunk file
would reconstruct silently. When a stage completes a store, :func:`write_manifest` writes
into each array's folder a ``tomochunk_manifest.json`` listing its chunk files (relative
paths) with their sizes; :func:`verify_manifest`, called when a store is opened, checks
that each is present with its recorded size: a few stat calls per chunk and no data read.
The manifests live inside the array folders, where Zarr never lists members (a file at a
group level would make Zarr warn on every open), and travel with the store when it is
copied. A chunk overwritten with other bytes of the same size is caught when it is decoded
(:func:`tomochunk.faults.explain` turns the codec error into a one-line message). Stores
written before manifests existed have none and are not checked. Stores in a bucket are
checked the same way, from one listing of their objects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import CorruptStoreError
from .atomic import atomic_write_text

__all__ = ["MANIFEST_FILE", "write_manifest", "verify_manifest", "recreate_hint"]

MANIFEST_FILE = "tomochunk_manifest.json"
_METADATA = {"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata", MANIFEST_FILE}

_STAGE_OF = {"scan": "tomochunk ingest", "recon": "tomochunk recon",
             "denoised": "tomochunk denoise", "truth": "tomochunk demo"}


def recreate_hint(path: str | os.PathLike[str]) -> str:
    """"re-create it with tomochunk ingest"-style advice for the store at ``path``."""
    stem = os.fspath(path).rstrip("/").rsplit("/", 1)[-1].removesuffix(".zarr")
    command = _STAGE_OF.get(stem, "tomochunk filter" if stem in ("median", "nlm", "iternlm")
                            else "the stage that wrote it")
    return f"re-create it with {command} --overwrite (or re-run tomochunk run)"


def _arrays(root: Path) -> list[Path]:
    """The array folders of the Zarr v3 hierarchy at ``root`` (not descending into arrays)."""
    found, todo = [], [root]
    while todo:
        d = todo.pop()
        try:
            node = json.loads((d / "zarr.json").read_text()).get("node_type")
        except (OSError, ValueError, AttributeError):
            continue
        if node == "array":
            found.append(d)
        elif node == "group":
            todo.extend(p for p in d.iterdir() if p.is_dir())
    return sorted(found)


def _chunk_files(array: Path) -> dict[str, int]:
    files: dict[str, int] = {}
    for dirpath, _dirs, names in os.walk(array):
        for name in names:
            if name in _METADATA or name.startswith(f".{MANIFEST_FILE}"):
                continue
            p = Path(dirpath) / name
            files[p.relative_to(array).as_posix()] = p.stat().st_size
    return files


def write_manifest(root: str | os.PathLike[str]) -> int:
    """Write the manifest of every array of the store at ``root``; return the chunk count."""
    total = 0
    for array in _arrays(Path(root)):
        files = _chunk_files(array)
        atomic_write_text(array / MANIFEST_FILE,
                          json.dumps({"version": 1, "files": files}, separators=(",", ":")))
        total += len(files)
    return total


def verify_manifest(root: str | os.PathLike[str], what: str = "store",
                    storage_options: Any = None) -> None:
    """Raise :class:`CorruptStoreError` when a chunk of ``root`` is missing or resized.

    ``root`` is a path or an fsspec URL (read with ``storage_options``): one listing of the
    store's files with their sizes (through fsspec, for both), then each manifest is read.
    """
    from .urls import filesystem, is_url

    text = os.fspath(root)
    fs, base = filesystem(text if is_url(text) else os.path.abspath(text), storage_options)
    sizes = {str(k).rstrip("/"): v.get("size") for k, v in fs.find(base, detail=True).items()}
    suffix = f"/{MANIFEST_FILE}"
    for key in sorted(k for k in sizes if k.endswith(suffix)):
        array = key[: -len(suffix)]
        name = array.rsplit("/", 1)[-1]
        try:
            files = json.loads(fs.cat_file(key))["files"]
            files.items()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptStoreError(
                f"{what} {root}: the chunk manifest of {name} is unreadable ({exc}); "
                f"the store is damaged: {recreate_hint(root)}"
            ) from exc
        for rel, size in files.items():
            chunk = f"{array[len(base) + 1:]}/{rel}"
            actual = sizes.get(f"{array}/{rel}")
            if actual is None:
                raise CorruptStoreError(
                    f"{what} {root}: chunk {chunk} is missing (zarr would read it as zeros); "
                    f"the store is damaged: {recreate_hint(root)}"
                )
            if actual != size:
                raise CorruptStoreError(
                    f"{what} {root}: chunk {chunk} has {actual} bytes, {size} when written; "
                    f"the store is damaged: {recreate_hint(root)}"
                )
