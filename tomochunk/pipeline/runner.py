"""Run the stages of a pipeline: skip what is done, re-do what changed, log it all.

Resumability: every stage writes its output atomically (temporary name, renamed when
complete), and ``run.json`` records for each finished stage its hash (:class:`Stage`). A
re-run skips a stage whose output is complete and whose hash matches (and says so), re-does
an interrupted stage (a resumable one, training, continues from its checkpoint), and
re-does every downstream stage when an upstream configuration changed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr
import yaml

from .. import __version__
from ..config import ClusterConfig, RunConfig, replace
from ..errors import InputError
from ..io import store
from ..io.lock import exclusive
from ..io.paths import check_distinct, check_not_file
from ..io.urls import exists as url_exists
from ..io.urls import is_url, join, location
from ..overrides import resolve_config
from ..runtime.logs import get_logger, session_logging
from ..validate import check_config
from .record import (
    claim_run_dir,
    input_id,
    log_file,
    recorded,
    remove_output,
    storage,
    write_run,
    write_text,
)
from .stage import Stage
from .stages import build_stages

__all__ = ["run", "RunResult", "execute"]

log = get_logger("pipeline")


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` did: the run folder, stage records and the report path."""

    run_dir: Path
    stages: dict[str, dict[str, Any]]
    report: Path | None

    def __fspath__(self) -> str:
        return str(self.run_dir)


def execute(stages: list[Stage], run_dir: Any, record: dict[str, Any],
             after_stage: Callable[[], None] = lambda: None) -> None:
    """Run the stages in order, skipping those recorded as done with an unchanged hash.

    ``record["started"]`` holds the hash of each stage that was started but not finished: a
    resumable stage (training) whose interrupted output has that hash is continued; every
    other unfinished output is removed and its stage re-done.
    """
    done = record.setdefault("stages", {})
    started = record.setdefault("started", {})
    for st in stages:
        prev = done.get(st.name)
        if prev and prev.get("hash") == st.hash and st.is_complete():
            log.info("%s: complete and configuration unchanged, skipping", st.name)
            continue
        if prev and prev.get("hash") != st.hash:
            log.info("%s: configuration changed upstream or here, re-doing", st.name)
        elif prev:
            log.info("%s: output incomplete or missing, re-doing", st.name)
        done.pop(st.name, None)
        store.remove_stale_partials(st.output)
        keep = st.resumable and started.get(st.name) == st.hash
        if not keep:
            remove_output(st.output, st.storage_options)
        started[st.name] = st.hash
        write_run(run_dir, record)
        log.info("%s: starting", st.name)
        t0 = time.perf_counter()
        summary = st.run()
        seconds = time.perf_counter() - t0
        done[st.name] = {"hash": st.hash, "seconds": round(seconds, 3), "summary": summary}
        started.pop(st.name, None)
        write_run(run_dir, record)
        log.info("%s: %s", st.name, summary)
        after_stage()


def run(
    input: str | os.PathLike[str] | xr.Dataset,
    out: str | os.PathLike[str],
    *,
    config: RunConfig | str | os.PathLike[str] | Mapping[str, Any] | None = None,
    cluster: ClusterConfig | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    overrides: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run the whole pipeline from a raw scan to a denoised volume and a report.

    Parameters
    ----------
    input : path or xarray.Dataset
        Raw scan (DXchange/NeXus HDF5, TIFF folder, .npy) or an in-memory scan dataset.
    out : path
        The run directory (see the module docstring for its layout).
    config : RunConfig, YAML path or mapping, optional
        Every stage's options; ``tomochunk config --example`` prints one.
    cluster : ClusterConfig, optional
        Scheduler address / file; default a LocalCluster sized to the machine.
    overwrite : bool
        Start afresh when ``out`` holds another input's run (or is not a run folder).
    quiet, verbose : bool
        Console verbosity; the full log always goes to ``out/tomochunk.log``.
    overrides : mapping, optional
        ``{"train.epochs": 5}``-style overrides on top of ``config`` (None values ignored).
    storage_options : mapping, optional
        fsspec options of URL inputs and outputs (``input="s3://bucket/scan.h5"``,
        ``out="s3://bucket/run"``); replaces the config's ``io.storage_options``. A run in
        a bucket keeps every stage's output there (README, "Stores in a bucket").

    Returns
    -------
    RunResult
    """
    cfg = resolve_config(config, overrides)  # a new config: the caller's is not changed
    cfg = replace(cfg, cluster=cluster,
                  io=None if storage_options is None
                  else replace(cfg.io, storage_options=dict(storage_options)))
    check_config(cfg)  # every section, before any data is read or a cluster starts
    so = storage(cfg)
    if not isinstance(input, xr.Dataset):
        if is_url(input):
            if not url_exists(os.fspath(input), so):
                raise InputError(f"input {input} does not exist; check the URL and "
                                 "--storage-option (credentials, endpoint_url)")
        elif not Path(input).exists():
            raise InputError(f"input {input} does not exist; give a scan file or folder")
    check_not_file(out, "--out")
    check_distinct(out, [input], what="--out")
    with exclusive(out, "run folder", so):
        return _run(input, location(out, so), cfg, overwrite, quiet, verbose)


def _run(input: str | os.PathLike[str] | xr.Dataset, run_dir: Any, cfg: RunConfig,
         overwrite: bool, quiet: bool, verbose: bool) -> RunResult:
    """:func:`run` once its configuration is checked and the run folder is locked.

    ``run_dir`` is a Path, or a :class:`~tomochunk.io.urls.RemotePath` for a run in a bucket.
    """
    from ..io.ingest import check_values_without_flats, open_reader

    so = storage(cfg)
    if not is_url(input) or url_exists(join(os.fspath(input), "zarr.json"), so):
        with open_reader(input, cfg.ingest, so) as reader:  # format and layout, from headers
            check_values_without_flats(reader, cfg.ingest, warn=False)  # raw counts: fail early
    record = claim_run_dir(run_dir, input_id(input), overwrite)
    record["config"] = recorded(cfg)
    write_run(run_dir, record)
    write_text(run_dir, "config.yaml", yaml.safe_dump(recorded(cfg), sort_keys=False))
    stages = build_stages(input, run_dir, cfg)
    from ..runtime.cluster import connect
    from ..runtime.worker_logs import forward_worker_logs

    t0 = time.perf_counter()
    with log_file(run_dir) as (log_path, upload_log), \
            session_logging(quiet, verbose, log_path):
        what = (f"an in-memory scan ({input.attrs.get('source', 'dataset')})"
                if isinstance(input, xr.Dataset) else record["input"])
        log.info("tomochunk %s run of %s into %s", __version__, what, run_dir)
        local = not (cfg.cluster.scheduler or cfg.cluster.scheduler_file)
        try:
            with connect(cfg.cluster) as client, forward_worker_logs(client, quiet, verbose,
                                                                     local):
                execute(stages, run_dir, record, after_stage=upload_log)
        except BaseException as exc:
            _log_failure(exc, [st.output for st in stages])
            raise
        log.info("run complete in %.1f s; report: %s", time.perf_counter() - t0,
                 run_dir / "report" / "index.html")
    return RunResult(run_dir, record["stages"], run_dir / "report" / "index.html")


def _log_failure(exc: BaseException, outputs: list[Path]) -> None:
    """Remove partial stage outputs and write the one-line cause into ``tomochunk.log``."""
    from ..faults import explain

    for out in outputs:
        store.remove_stale_partials(out)
    if isinstance(exc, KeyboardInterrupt):
        log.error("interrupted: the cluster was stopped and partial outputs removed")
        return
    known = explain(exc) if isinstance(exc, Exception) else None
    with contextlib.suppress(Exception):  # a full disk may refuse the log line too
        log.error("run failed: %s", " ".join(str(known or exc).split())
                  if known else f"{type(exc).__name__}: {exc}")


