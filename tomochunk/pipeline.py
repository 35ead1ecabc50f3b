"""The whole pipeline as resumable stages: ingest -> recon -> train -> denoise -> filters -> report.

Layout of RUN_DIR (contract)::

    scan.zarr  recon.zarr  model/  denoised.zarr  median.zarr  nlm.zarr  [iternlm.zarr]
    report/    run.json    config.yaml    tomochunk.log    [truth.zarr for synthetic runs]

Resumability: every stage writes its output atomically (temporary name, renamed when
complete), and ``run.json`` records for each finished stage a hash of its configuration chained
with the hashes of the stages it depends on. Re-running skips a stage whose output is complete
and whose hash matches (and says so), re-does an interrupted stage (training resumes from its
last checkpoint), and re-does every downstream stage when an upstream configuration changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import xarray as xr
import yaml
from distributed import WorkerPlugin

from . import __version__
from .config import (
    ClusterConfig,
    RunConfig,
    config_hash,
    from_dict,
    load_config,
    to_dict,
)
from .errors import ConfigError, InputError, OutputExistsError
from .io import store
from .io.identity import input_identity
from .io.lock import exclusive
from .io.paths import check_distinct, check_not_file
from .io.urls import (
    RemotePath,
    basename,
    filesystem,
    is_url,
    join,
    location,
    read_bytes,
    redact,
    staging_dir,
    write_bytes,
)
from .io.urls import exists as url_exists
from .io.urls import remove as remove_url
from .progress import get_logger
from .validate import check_config

__all__ = ["run", "demo", "demo_config", "RunResult", "STAGES", "apply_overrides"]

log = get_logger("pipeline")

STAGES = ("ingest", "recon", "train", "denoise", "filters", "report")
RUN_FILE = "run.json"


@dataclass
class RunResult:
    """What :func:`run` did: the run folder, stage records and the report path."""

    run_dir: Path
    stages: dict[str, dict[str, Any]]
    report: Path | None

    def __fspath__(self) -> str:
        return str(self.run_dir)


# --------------------------------------------------------------------------------------
# configuration


def apply_overrides(cfg: RunConfig, overrides: Mapping[str, Any] | None) -> RunConfig:
    """Apply ``{"section.key": value}`` overrides (``None`` values are ignored).

    A mapping value over a mapping key (``io.storage_options``) is merged into it.
    """
    data = to_dict(cfg)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in data or not key:
            raise ConfigError(
                f"override {dotted!r} must be 'section.key' with section one of {', '.join(data)}"
            )
        old = data[section].get(key)
        # a mapping (io.storage_options) is merged key by key: --storage-option key=... on
        # the command line adds credentials to a config file's endpoint_url
        data[section][key] = ({**old, **value} if isinstance(old, dict)
                              and isinstance(value, dict) else value)
    return from_dict(RunConfig, data)


def _resolve_config(config: RunConfig | str | os.PathLike[str] | Mapping[str, Any] | None,
                    overrides: Mapping[str, Any] | None) -> RunConfig:
    if config is None:
        cfg = RunConfig()
    elif isinstance(config, RunConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = from_dict(RunConfig, dict(config))
    else:
        cfg = load_config(config)
    return apply_overrides(cfg, overrides)


# --------------------------------------------------------------------------------------
# run folder bookkeeping


def _input_id(source: Any) -> str:
    if isinstance(source, xr.Dataset):
        spec = source.attrs.get("phantom_spec")
        return f"in-memory:{source.attrs.get('source', 'dataset')}:{spec or ''}"
    if is_url(source):
        return os.fspath(source)
    return str(Path(source).resolve())


def _storage(cfg: RunConfig) -> dict[str, Any]:
    return dict(cfg.io.storage_options)


def _recorded(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` as written to run.json and config.yaml: credentials redacted."""
    data = to_dict(cfg)
    data["io"]["storage_options"] = redact(data["io"]["storage_options"])
    return data


def _read_run(run_dir: Any) -> dict[str, Any] | None:
    f = run_dir / RUN_FILE
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError:
        return None


def _write_text(run_dir: Any, name: str, text: str) -> None:
    """Write ``run_dir/name`` whole: renamed into place, or one PUT on an object store."""
    if isinstance(run_dir, RemotePath):
        write_bytes((run_dir / name).url, text.encode(), run_dir.storage_options)
        return
    tmp = run_dir / f".{name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, run_dir / name)


def _write_run(run_dir: Any, record: dict[str, Any]) -> None:
    _write_text(run_dir, RUN_FILE, json.dumps(record, indent=2, default=str))


def _children(run_dir: Any) -> list[Any]:
    """What RUN_DIR holds (paths, or URLs for a run in a bucket)."""
    if isinstance(run_dir, RemotePath):
        if not run_dir.exists():
            return []
        fs, root = filesystem(run_dir.url, run_dir.storage_options)
        return [join(run_dir.url, basename(p)) for p in fs.ls(root, detail=False)]
    return list(run_dir.iterdir()) if run_dir.exists() else []


def _remove_output(path: Any, storage_options: Any) -> None:
    """Delete a stage output (a remote one is invalidated first, see io.urls.remove)."""
    if is_url(path):
        remove_url(os.fspath(path), storage_options)
    elif Path(path).is_dir():
        shutil.rmtree(path)
    elif Path(path).exists():
        Path(path).unlink()


def _claim_run_dir(run_dir: Any, input_id: str, overwrite: bool) -> dict[str, Any]:
    """Check RUN_DIR belongs to this input (or is new); return its run record."""
    record = _read_run(run_dir)
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
                _remove_output(child, so)
    if isinstance(run_dir, Path):
        run_dir.mkdir(parents=True, exist_ok=True)
    if record is None:
        record = {"input": input_id, "version": __version__, "stages": {}}
    return record


def _levels(quiet: bool, verbose: bool) -> tuple[int, int]:
    """(console level, log-file level) for the command-line flags."""
    console = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    return console, logging.DEBUG if verbose else logging.INFO


def _set_levels(console: int, file: int, children: list[str]) -> None:
    """Level the ``tomochunk`` loggers so the log file gets ``file`` and up, the bars follow
    the console.

    Progress bars are drawn while the ``tomochunk`` logger shows INFO
    (:func:`tomochunk.progress.progress_enabled`); with ``--quiet`` it is set to WARNING and
    its ``children`` (the stage modules' loggers) to ``file`` so the log stays complete.
    """
    root = logging.getLogger("tomochunk")
    root.setLevel(max(console, file))
    for name in children:
        logging.getLogger(name).setLevel(file if console > file else logging.NOTSET)


def _child_loggers() -> list[str]:
    """The ``tomochunk.*`` loggers, after importing every stage module (which creates them)."""
    import importlib

    for name in ("cluster", "filters", "infer", "io.ingest", "phantom", "recon.volume",
                 "report", "training.n2i"):
        importlib.import_module(f"tomochunk.{name}")
    return sorted(n for n in logging.Logger.manager.loggerDict if n.startswith("tomochunk."))


@contextlib.contextmanager
def _log_file(run_dir: Any) -> Iterator[tuple[Path, Callable[[], None]]]:
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


@contextlib.contextmanager
def _run_logging(log_file: Path, quiet: bool, verbose: bool) -> Iterator[None]:
    """Console at the chosen level, the whole log into ``log_file`` (RUN_DIR/tomochunk.log).

    A nested use (``demo`` calling ``run``) keeps the outer set-up.
    """
    root = logging.getLogger("tomochunk")
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == log_file
           for h in root.handlers):
        yield
        return
    console, file = _levels(quiet, verbose)
    saved_level, saved_propagate = root.level, root.propagate
    saved = {h: h.level for h in root.handlers}
    streams = [h for h in root.handlers if not isinstance(h, logging.FileHandler)]
    if not streams:
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(sh)
        streams = [sh]
    for h in streams:
        h.setLevel(console)
    fh = logging.FileHandler(log_file)
    fh.setLevel(file)
    fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(fh)
    root.propagate = False
    _set_levels(console, file, _child_loggers())
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in saved:
                root.removeHandler(h)
                if h is fh:
                    fh.close()
        for h, lvl in saved.items():
            h.setLevel(lvl)
        _set_levels(logging.NOTSET, logging.NOTSET, _child_loggers())
        root.setLevel(saved_level)
        root.propagate = saved_propagate


class _WorkerLogLevel(WorkerPlugin):
    """Worker plugin: level the ``tomochunk`` loggers of every worker like this process's.

    Together with :meth:`distributed.Client.forward_logging`, what tasks log (training epochs
    with their losses, per-block reports) reaches the console and the run's log file, and
    the workers' progress bars (training epochs) follow ``--quiet``.
    """

    name = "tomochunk-log-level"

    def __init__(self, console: int, file: int, children: list[str]) -> None:
        self.console, self.file, self.children = console, file, children

    def setup(self, worker: Any) -> None:
        _set_levels(self.console, self.file, self.children)


class _OwnProcessFilter(logging.Filter):
    """Pass warnings, and other records only when logged by this process."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.process == os.getpid()


@contextlib.contextmanager
def _forward_worker_logs(client: Any, quiet: bool, verbose: bool, local: bool) -> Iterator[None]:
    """Forward the workers' ``tomochunk`` log records to this process while in the block.

    They all go to the log file. On the console, a local cluster's workers draw their own
    progress bars (training epochs with losses) on this terminal, so their INFO records are
    left out there unless ``verbose``; a remote cluster's are shown.
    """
    console, file = _levels(quiet, verbose)
    try:
        client.register_plugin(_WorkerLogLevel(console, file, _child_loggers()),
                               name=_WorkerLogLevel.name)
        client.forward_logging("tomochunk", level=file)
    except Exception as exc:  # noqa: BLE001 - logging from workers is a convenience
        log.debug("worker log forwarding unavailable: %s", exc)
        yield
        return
    streams = [h for h in logging.getLogger("tomochunk").handlers
               if not isinstance(h, logging.FileHandler)] if local and not verbose else []
    only_own = _OwnProcessFilter()
    for h in streams:
        h.addFilter(only_own)
    try:
        yield
    finally:
        for h in streams:
            h.removeFilter(only_own)
        try:
            client.unforward_logging("tomochunk")
            client.unregister_worker_plugin(_WorkerLogLevel.name)
        except Exception as exc:  # noqa: BLE001 - the cluster may be gone already
            log.debug("could not stop worker log forwarding: %s", exc)


# --------------------------------------------------------------------------------------
# stages


@dataclass
class _Stage:
    name: str
    output: Any  # a Path, or a URL for a run in a bucket
    hash: str
    action: Callable[[], str]  # runs the stage, returns a one-line summary
    resumable: bool = False  # an interrupted output is kept and continued (training)
    storage_options: dict[str, Any] | None = None

    def complete(self) -> bool:
        out = location(self.output, self.storage_options)
        if self.name == "train":
            return bool((out / "model.pt").exists())
        if self.name == "report":
            return bool((out / "index.html").exists())
        return store.is_complete(self.output, self.storage_options)


def _volume_summary(path: Any, var: str, seconds: float, storage_options: Any = None) -> str:
    ds = store.open_store(path, require_complete=False, storage_options=storage_options)
    shape = ds[var].shape
    n_slices = shape[-3]
    return (f"{var} {'x'.join(map(str, shape))} in {seconds:.1f} s "
            f"({n_slices / max(seconds, 1e-9):.2f} slices/s)")


def _stages(source: Any, run_dir: Any, cfg: RunConfig) -> list[_Stage]:
    from .filters import apply_filter
    from .inference import denoise
    from .io.ingest import ingest
    from .recon.volume import reconstruct
    from .report import make_report
    from .training.budget import with_default_budget
    from .training.modelfile import CHECKPOINT_FILE
    from .training.n2i import train

    so = _storage(cfg)

    def at(name: str) -> Any:  # the stage output: a Path, or a URL in a bucket
        return join(run_dir.url, name) if isinstance(run_dir, RemotePath) else run_dir / name

    scan, recon = at("scan.zarr"), at("recon.zarr")
    model, den = at("model"), at("denoised.zarr")
    h_ingest = config_hash(_input_id(source), cfg.ingest,
                           *([ident] if (ident := input_identity(source, so)) else []))
    h_recon = config_hash(h_ingest, cfg.preprocess, cfg.recon)
    h_train = config_hash(h_recon, {k: v for k, v in to_dict(cfg.train).items()
                                    if k not in ("resume", "threads", "device")})
    h_denoise = config_hash(h_train, cfg.denoise)

    def do_ingest() -> str:
        t0 = time.perf_counter()
        ingest(source, scan, config=cfg.ingest, overwrite=True, storage_options=so)
        return _volume_summary(scan, "projections", time.perf_counter() - t0, so)

    def do_recon() -> str:
        t0 = time.perf_counter()
        reconstruct(scan, recon, preprocess=cfg.preprocess, config=cfg.recon, overwrite=True,
                    storage_options=so)
        return _volume_summary(recon, "full", time.perf_counter() - t0, so)

    def do_train() -> str:
        # _execute keeps the model folder only when it holds an interrupted training of this
        # very configuration: continue it from its checkpoint, else train afresh
        t0 = time.perf_counter()
        resume = not is_url(model) and (model / CHECKPOINT_FILE).exists()
        if resume:
            log.info("train: resuming from the last checkpoint in %s", model)
        threads = cfg.train.threads
        if threads is None and not (cfg.cluster.scheduler or cfg.cluster.scheduler_file):
            # a LocalCluster runs the stages one after another, so the training task (one
            # task on a one-thread worker) may use every core of this machine
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        tcfg = with_default_budget(cfg.train, recon, threads, so)
        m = train(recon, model, config=replace(tcfg, resume=resume, threads=threads),
                  overwrite=True, storage_options=so)
        hist = getattr(m, "history", None) or {}
        epochs = hist.get("epochs", [])
        seconds = time.perf_counter() - t0
        last = f", final validation loss {epochs[-1]['val_loss']:.4g}" if epochs else ""
        return (f"{len(epochs)} epochs ({hist.get('stopped')}) in {seconds:.1f} s, best epoch "
                f"{hist.get('best_epoch')}{last}")

    def do_denoise() -> str:
        t0 = time.perf_counter()
        denoise(recon, model, den, config=cfg.denoise, overwrite=True, storage_options=so)
        return _volume_summary(den, "denoised", time.perf_counter() - t0, so)

    stages = [
        _Stage("ingest", scan, h_ingest, do_ingest, storage_options=so),
        _Stage("recon", recon, h_recon, do_recon, storage_options=so),
        _Stage("train", model, h_train, do_train, resumable=True, storage_options=so),
        _Stage("denoise", den, h_denoise, do_denoise, storage_options=so),
    ]
    for method in cfg.filters.methods:
        out = at(f"{method}.zarr")

        def do_filter(method: str = method, out: Any = out) -> str:
            t0 = time.perf_counter()
            apply_filter(recon, out, method=method, config=cfg.filters, overwrite=True,
                         storage_options=so)
            return _volume_summary(out, method, time.perf_counter() - t0, so)

        stages.append(_Stage(f"filter:{method}", out,
                             config_hash(h_recon, cfg.filters, method), do_filter,
                             storage_options=so))

    h_report = config_hash(*(s.hash for s in stages), cfg.report)

    def do_report() -> str:
        t0 = time.perf_counter()
        path = make_report(run_dir, config=cfg.report, overwrite=True, storage_options=so)
        return f"{path} in {time.perf_counter() - t0:.1f} s"

    stages.append(_Stage("report", at("report"), h_report, do_report, storage_options=so))
    return stages


def _execute(stages: list[_Stage], run_dir: Any, record: dict[str, Any],
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
        if prev and prev.get("hash") == st.hash and st.complete():
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
            _remove_output(st.output, st.storage_options)
        started[st.name] = st.hash
        _write_run(run_dir, record)
        log.info("%s: starting", st.name)
        t0 = time.perf_counter()
        summary = st.action()
        seconds = time.perf_counter() - t0
        done[st.name] = {"hash": st.hash, "seconds": round(seconds, 3), "summary": summary}
        started.pop(st.name, None)
        _write_run(run_dir, record)
        log.info("%s: %s", st.name, summary)
        after_stage()


# --------------------------------------------------------------------------------------
# public API


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
    cfg = _resolve_config(config, overrides)
    if cluster is not None:
        cfg.cluster = cluster
    if storage_options is not None:
        cfg.io.storage_options = dict(storage_options)
    check_config(cfg)  # every section, before any data is read or a cluster starts
    so = _storage(cfg)
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
    from .io.ingest import check_values_without_flats, open_reader

    so = _storage(cfg)
    if not is_url(input) or url_exists(join(os.fspath(input), "zarr.json"), so):
        with open_reader(input, cfg.ingest, so) as reader:  # format and layout, from headers
            check_values_without_flats(reader, cfg.ingest, warn=False)  # raw counts: fail early
    record = _claim_run_dir(run_dir, _input_id(input), overwrite)
    record["config"] = _recorded(cfg)
    _write_run(run_dir, record)
    _write_text(run_dir, "config.yaml", yaml.safe_dump(_recorded(cfg), sort_keys=False))
    stages = _stages(input, run_dir, cfg)
    from .cluster import connect

    t0 = time.perf_counter()
    with _log_file(run_dir) as (log_file, upload_log), \
            _run_logging(log_file, quiet, verbose):
        what = (f"an in-memory scan ({input.attrs.get('source', 'dataset')})"
                if isinstance(input, xr.Dataset) else record["input"])
        log.info("tomochunk %s run of %s into %s", __version__, what, run_dir)
        local = not (cfg.cluster.scheduler or cfg.cluster.scheduler_file)
        try:
            with connect(cfg.cluster) as client, _forward_worker_logs(client, quiet, verbose,
                                                                      local):
                _execute(stages, run_dir, record, after_stage=upload_log)
        except BaseException as exc:
            _log_failure(exc, [st.output for st in stages])
            raise
        log.info("run complete in %.1f s; report: %s", time.perf_counter() - t0,
                 run_dir / "report" / "index.html")
    return RunResult(run_dir, record["stages"], run_dir / "report" / "index.html")


def _log_failure(exc: BaseException, outputs: list[Path]) -> None:
    """Remove partial stage outputs and write the one-line cause into ``tomochunk.log``."""
    from .faults import explain

    for out in outputs:
        store.remove_stale_partials(out)
    if isinstance(exc, KeyboardInterrupt):
        log.error("interrupted: the cluster was stopped and partial outputs removed")
        return
    known = explain(exc) if isinstance(exc, Exception) else None
    with contextlib.suppress(Exception):  # a full disk may refuse the log line too
        log.error("run failed: %s", " ".join(str(known or exc).split())
                  if known else f"{type(exc).__name__}: {exc}")


def demo_config() -> RunConfig:
    """The configuration of ``tomochunk demo``: about 3 minutes on 2 CPU cores.

    On the ``demo`` scan (64 x 128 x 128, 256 angles, 800 photons) the network that
    ``train --budget`` picks on CPU (a UNet of 2 levels x 32 features on the 2x2
    space-to-depth slice, see ``benchmarks/n2i_networks.py``) with 2.5D context 5 and K=2
    trains for 20 epochs of 48 patches of 96 x 96 (about 100 s on 2 idle cores). The budget
    counts epochs, so the result is the same on a slow or busy machine; ``max_minutes`` is
    only a safety stop, far above the normal time. The paper's baselines (median radius 2,
    NLM) take under a minute, and the report shows the Noise2Inverse result ahead of both
    (measured: PSNR 27.3 dB against NLM 24.3 and the median 23.4; CNR 6.1 against 5.6 and
    4.2). The MSD-30 of earlier versions needed 40 epochs (135 s) for 27.2 dB.
    """
    cfg = RunConfig()
    cfg.preprocess.center = "auto"
    cfg.train.network = "unet"
    cfg.train.unet_depth = 2
    cfg.train.unet_features = 32
    cfg.train.unet_space_to_depth = 2
    cfg.train.context = 5
    cfg.recon.splits = 2
    cfg.train.patch_size = 96
    cfg.train.batch_size = 4
    cfg.train.patches_per_epoch = 48
    cfg.train.epochs = 20
    cfg.train.patience = 8
    cfg.train.max_minutes = 20.0  # safety stop only: the budget is the epochs above
    cfg.denoise.chunk_z = 16
    cfg.filters.methods = ["median", "nlm"]
    cfg.filters.radius = 2
    # the filters' halo is exact, so the chunk size changes only the time: two 32-slice
    # chunks (one per core) compute 76 slices with NLM's 6-slice halo, four 16-slice chunks 100
    cfg.filters.chunk_z = 32
    return cfg


def demo(
    out: str | os.PathLike[str] = "tomochunk-demo",
    *,
    cluster: ClusterConfig | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    config: RunConfig | None = None,
    size: str = "demo",
    spec: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run the whole pipeline on the built-in synthetic scan (truth known, so PSNR/SSIM too).

    Parameters
    ----------
    out : path
        The run directory (``truth.zarr`` is written next to the stage outputs).
    cluster, overwrite, quiet, verbose
        As for :func:`run`.
    config : RunConfig, optional
        Default :func:`demo_config`.
    size : {"demo", "test", "bench"}
        The :func:`tomochunk.phantom.demo_spec` preset.
    spec : mapping, optional
        :class:`tomochunk.phantom.ScanSpec` fields overriding the preset (``seed``, ...).
    storage_options : mapping, optional
        fsspec options when ``out`` is a URL (``s3://bucket/demo``); default the config's
        ``io.storage_options``.
    """
    from .phantom import demo_spec

    scan_spec = demo_spec(size, **dict(spec or {}))
    cfg = config or demo_config()
    if storage_options:
        cfg = replace(cfg, io=replace(cfg.io, storage_options=dict(storage_options)))
    check_config(replace_cluster(cfg, cluster))
    check_not_file(out, "--out")
    with exclusive(out, "run folder", _storage(cfg)):
        return _demo(location(out, _storage(cfg)), scan_spec, cfg, cluster, overwrite, quiet,
                     verbose)


def replace_cluster(cfg: RunConfig, cluster: ClusterConfig | None) -> RunConfig:
    """``cfg`` with its cluster section replaced by ``cluster`` (when given)."""
    return cfg if cluster is None else replace(cfg, cluster=cluster)


def _demo(run_dir: Any, scan_spec: Any, cfg: RunConfig, cluster: ClusterConfig | None,
          overwrite: bool, quiet: bool, verbose: bool) -> RunResult:
    """:func:`demo` once its configuration is checked and the run folder is locked."""
    from .phantom import simulate_scan

    input_id = f"in-memory:tomochunk.phantom:{scan_spec.to_json()}"  # as _input_id(scan)
    record = _claim_run_dir(run_dir, input_id, overwrite)
    _write_run(run_dir, record)
    so = _storage(cfg)
    remote = isinstance(run_dir, RemotePath)
    truth_path = join(run_dir.url, "truth.zarr") if remote else run_dir / "truth.zarr"
    with _log_file(run_dir) as (log_file, _), _run_logging(log_file, quiet, verbose):
        scan, truth = simulate_scan(scan_spec)
        if not store.is_complete(truth_path, so):
            store.remove_stale_partials(truth_path)
            _remove_output(truth_path, so)
            ds = xr.Dataset({"truth": (("z", "y", "x"), truth)}).chunk({"z": 16})
            store.write_dataset(ds, truth_path,
                                attrs={"phantom_spec": scan.attrs.get("phantom_spec")},
                                label="writing truth.zarr", storage_options=so)
        if cfg.report.truth is None:
            cfg.report.truth = str(truth_path)
        return run(scan, run_dir.url if remote else run_dir, config=cfg, cluster=cluster,
                   overwrite=False, quiet=quiet, verbose=verbose)
