"""The chunk manifest of a completed store: every chunk file and its size.

Zarr reads a missing chunk as its fill value (zeros), so a deleted or truncated chunk file
would reconstruct silently. When a stage completes a store, :func:`write_manifest` lists
every data file under it (paths relative to the store, with their sizes) in
``tomochunk_manifest.json``; :func:`verify_manifest`, called when a store is opened, checks
that each is present with its recorded size, a few stat calls per chunk and no data read.
A chunk overwritten with other bytes of the same size is caught when it is decoded
(:func:`tomochunk.faults.explain` turns the codec error into the same one-line message).
Stores written before manifests existed have none and are not checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import CorruptStoreError

__all__ = ["MANIFEST_FILE", "write_manifest", "verify_manifest", "recreate_hint"]

MANIFEST_FILE = "tomochunk_manifest.json"
_METADATA = {"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata", MANIFEST_FILE}

_STAGE_OF = {"scan": "tomochunk ingest", "recon": "tomochunk recon",
             "denoised": "tomochunk denoise", "truth": "tomochunk demo"}


def recreate_hint(path: str | os.PathLike[str]) -> str:
    """"re-create it with tomochunk ingest"-style advice for the store at ``path``."""
    stem = Path(path).name.removesuffix(".zarr")
    command = _STAGE_OF.get(stem, "tomochunk filter" if stem in ("median", "nlm", "iternlm")
                            else "the stage that wrote it")
    return f"re-create it with {command} --overwrite (or re-run tomochunk run)"


def _data_files(root: Path) -> dict[str, int]:
    files: dict[str, int] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name in _METADATA:
                continue
            p = Path(dirpath) / name
            files[p.relative_to(root).as_posix()] = p.stat().st_size
    return files


def write_manifest(root: str | os.PathLike[str]) -> int:
    """List the data files of the Zarr store at ``root``; return how many."""
    root = Path(root)
    files = _data_files(root)
    tmp = root / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps({"version": 1, "files": files}, separators=(",", ":")))
    os.replace(tmp, root / MANIFEST_FILE)
    return len(files)


def verify_manifest(root: str | os.PathLike[str], what: str = "store") -> None:
    """Raise :class:`CorruptStoreError` when a chunk of ``root`` is missing or resized."""
    root = Path(root)
    f = root / MANIFEST_FILE
    try:
        files = json.loads(f.read_text())["files"]
    except FileNotFoundError:
        return  # written before manifests existed
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptStoreError(
            f"{what} {root}: its chunk manifest {MANIFEST_FILE} is unreadable ({exc}); the "
            f"store is damaged: {recreate_hint(root)}"
        ) from exc
    for rel, size in files.items():
        try:
            actual = (root / rel).stat().st_size
        except FileNotFoundError:
            raise CorruptStoreError(
                f"{what} {root}: chunk {rel} is missing (zarr would read it as zeros); the "
                f"store is damaged: {recreate_hint(root)}"
            ) from None
        if actual != size:
            raise CorruptStoreError(
                f"{what} {root}: chunk {rel} has {actual} bytes, {size} when written; the "
                f"store is damaged: {recreate_hint(root)}"
            )
