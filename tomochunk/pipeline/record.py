"""The run folder's bookkeeping: its ``run.json`` record, written files, and claiming it.

A run folder is a local directory or, for a run in a bucket, a
:class:`~tomochunk.io.urls.RemotePath`; every function here takes either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xarray as xr

from .. import __version__
from ..config import RunConfig, to_dict
from ..errors import OutputExistsError
from ..io.atomic import atomic_write_text
from ..io.urls import (
    RemotePath,
    basename,
    filesystem,
    is_url,
    join,
    read_bytes,
    redact,
    staging_dir,
    write_bytes,
)
from ..io.urls import remove as remove_url

__all__ = ["RUN_FILE", "input_id", "recorded", "read_run", "write_text", "write_run",
           "remove_output", "claim_run_dir", "log_file", "storage"]

RUN_FILE = "run.json"


def input_id(source: Any) -> str:
    """What identifies the input of a run in ``run.json`` (a path, a URL, an in-memory scan)."""
    if isinstance(source, xr.Dataset):
        spec = source.attrs.get("phantom_spec")
        return f"in-memory:{source.attrs.get('source', 'dataset')}:{spec or ''}"
    if is_url(source):
        return os.fspath(source)
    return str(Path(source).resolve())


def storage(cfg: RunConfig) -> dict[str, Any]:
    """The fsspec options of the run's URL inputs and outputs."""
    return dict(cfg.io.storage_options)


def recorded(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` as written to run.json and config.yaml: credentials redacted."""
    data = to_dict(cfg)
    data["io"]["storage_options"] = redact(data["io"]["storage_options"])
    return data


def read_run(run_dir: Any) -> dict[str, Any] | None:
    """The run record of ``run_dir``, or None (absent or unreadable)."""
    f = run_dir / RUN_FILE
    if not f.exists():
        return None
    try:
        record: dict[str, Any] = json.loads(f.read_text())
    except json.JSONDecodeError:
        return None
    return record


def write_text(run_dir: Any, name: str, text: str) -> None:
    """Write ``run_dir/name`` whole: renamed into place, or one PUT on an object store."""
    if isinstance(run_dir, RemotePath):
        write_bytes((run_dir / name).url, text.encode(), run_dir.storage_options)
        return
    atomic_write_text(run_dir / name, text)


def write_run(run_dir: Any, record: dict[str, Any]) -> None:
    """Write the run record ``run.json``."""
    write_text(run_dir, RUN_FILE, json.dumps(record, indent=2, default=str))


def _children(run_dir: Any) -> list[Any]:
    """What RUN_DIR holds (paths, or URLs for a run in a bucket)."""
    if isinstance(run_dir, RemotePath):
        if not run_dir.exists():
            return []
        fs, root = filesystem(run_dir.url, run_dir.storage_options)
        return [join(run_dir.url, basename(p)) for p in fs.ls(root, detail=False)]
    return list(run_dir.iterdir()) if run_dir.exists() else []


def remove_output(path: Any, storage_options: Any) -> None:
    """Delete a stage output (a remote one is invalidated first, see io.urls.remove)."""
    if is_url(path):
        remove_url(os.fspath(path), storage_options)
    elif Path(path).is_dir():
        shutil.rmtree(path)
    elif Path(path).exists():
        Path(path).unlink()


def claim_run_dir(run_dir: Any, input_id: str, overwrite: bool) -> dict[str, Any]:
    """Check RUN_DIR belongs to this input (or is new); return its run record.

    Raises
    ------
    OutputExistsError
        RUN_DIR holds something else (not a run, another input's run) and not ``overwrite``.
    """
    record = read_run(run_dir)
    so = getattr(run_dir, "storage_options", None)
    if _children(run_dir):
        if record is None:
            if not overwrite:
                raise OutputExistsError(
                    f"run directory {run_dir} exists and is not a tomochunk run; choose another "
                    "--out or pass --overwrite to replace its contents"
                )
        elif record.get("input") != input_id:
            if not overwrite:
                raise OutputExistsError(
                    f"run directory {run_dir} belongs to another input ({record.get('input')}); "
                    "choose another --out or pass --overwrite to start it afresh"
                )
            record = None
        if record is None:  # overwrite: start afresh
            for child in _children(run_dir):
                remove_output(child, so)
    if isinstance(run_dir, Path):
        run_dir.mkdir(parents=True, exist_ok=True)
    if record is None:
        record = {"input": input_id, "version": __version__, "stages": {}}
    return record


@contextlib.contextmanager
def log_file(run_dir: Any) -> Iterator[tuple[Path, Callable[[], None]]]:
    """``(local log file, upload)`` of RUN_DIR's ``tomochunk.log``.

    A run in a bucket logs into a local staging copy (the log so far downloaded first);
    ``upload()`` writes it to the bucket (after every stage and at the end).
    """
    if not isinstance(run_dir, RemotePath):
        yield (run_dir / "tomochunk.log").resolve(), lambda: None
        return
    remote = run_dir / "tomochunk.log"
    with staging_dir(remote.url) as local:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(read_bytes(remote.url, remote.storage_options) or b"")

        def upload() -> None:
            for h in logging.getLogger("tomochunk").handlers:
                h.flush()
            write_bytes(remote.url, local.read_bytes(), remote.storage_options)

        try:
            yield local, upload
        finally:
            with contextlib.suppress(Exception):  # the bucket may be unreachable now
                upload()
