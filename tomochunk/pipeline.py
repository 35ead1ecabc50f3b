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

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from . import __version__
from .config import (
    ClusterConfig,
    RunConfig,
    config_hash,
    from_dict,
    load_config,
    save_config,
    to_dict,
)
from .errors import ConfigError, InputError, OutputExistsError
from .io import store
from .progress import get_logger

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
    """Apply ``{"section.key": value}`` overrides (``None`` values are ignored)."""
    data = to_dict(cfg)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in data or not key:
            raise ConfigError(
                f"override {dotted!r} must be 'section.key' with section one of {', '.join(data)}"
            )
        data[section][key] = value
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
    return str(Path(source).resolve())


def _read_run(run_dir: Path) -> dict[str, Any] | None:
    f = run_dir / RUN_FILE
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError:
        return None


def _write_run(run_dir: Path, record: dict[str, Any]) -> None:
    tmp = run_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, run_dir / RUN_FILE)


def _claim_run_dir(run_dir: Path, input_id: str, overwrite: bool) -> dict[str, Any]:
    """Check RUN_DIR belongs to this input (or is new); return its run record."""
    record = _read_run(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
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
            for child in run_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    if record is None:
        record = {"input": input_id, "version": __version__, "stages": {}}
    return record


def _setup_logging(run_dir: Path, quiet: bool, verbose: bool) -> logging.Handler:
    root = logging.getLogger("tomochunk")
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(sh)
    for h in root.handlers:
        if not isinstance(h, logging.FileHandler):
            h.setLevel(level)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    fh = logging.FileHandler(run_dir / "tomochunk.log")
    fh.setLevel(logging.DEBUG)
    fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(fh)
    return fh


# --------------------------------------------------------------------------------------
# stages


@dataclass
class _Stage:
    name: str
    output: Path
    hash: str
    action: Callable[[], str]  # runs the stage, returns a one-line summary

    def complete(self) -> bool:
        if self.name == "train":
            return (self.output / "model.pt").exists()
        if self.name == "report":
            return (self.output / "index.html").exists()
        return store.is_complete(self.output)


def _volume_summary(path: Path, var: str, seconds: float) -> str:
    ds = store.open_store(path, require_complete=False)
    shape = ds[var].shape
    n_slices = shape[-3]
    return (f"{var} {'x'.join(map(str, shape))} in {seconds:.1f} s "
            f"({n_slices / max(seconds, 1e-9):.2f} slices/s)")


def _stages(source: Any, run_dir: Path, cfg: RunConfig) -> list[_Stage]:
    from .filters import apply_filter
    from .infer import denoise
    from .io.ingest import ingest
    from .recon.volume import reconstruct
    from .report import make_report
    from .train.n2i import train

    scan, recon = run_dir / "scan.zarr", run_dir / "recon.zarr"
    model, den = run_dir / "model", run_dir / "denoised.zarr"
    h_ingest = config_hash(_input_id(source), cfg.ingest)
    h_recon = config_hash(h_ingest, cfg.preprocess, cfg.recon)
    h_train = config_hash(h_recon, {k: v for k, v in to_dict(cfg.train).items()
                                    if k not in ("resume", "threads", "device")})
    h_denoise = config_hash(h_train, cfg.denoise)

    def do_ingest() -> str:
        t0 = time.perf_counter()
        ingest(source, scan, config=cfg.ingest, overwrite=True)
        return _volume_summary(scan, "projections", time.perf_counter() - t0)

    def do_recon() -> str:
        t0 = time.perf_counter()
        reconstruct(scan, recon, preprocess=cfg.preprocess, config=cfg.recon, overwrite=True)
        return _volume_summary(recon, "full", time.perf_counter() - t0)

    def do_train() -> str:
        t0 = time.perf_counter()
        resume = (model / "checkpoint.pt").exists()
        if resume:
            log.info("train: resuming from the last checkpoint in %s", model)
        tcfg = from_dict(type(cfg.train), {**to_dict(cfg.train), "resume": resume})
        m = train(recon, model, config=tcfg, overwrite=not resume)
        hist = getattr(m, "history", None) or {}
        n_ep = len(hist.get("epochs", []))
        best = hist.get("best_epoch")
        return f"{n_ep} epochs in {time.perf_counter() - t0:.1f} s (best epoch {best})"

    def do_denoise() -> str:
        t0 = time.perf_counter()
        denoise(recon, model, den, config=cfg.denoise, overwrite=True)
        return _volume_summary(den, "denoised", time.perf_counter() - t0)

    stages = [
        _Stage("ingest", scan, h_ingest, do_ingest),
        _Stage("recon", recon, h_recon, do_recon),
        _Stage("train", model, h_train, do_train),
        _Stage("denoise", den, h_denoise, do_denoise),
    ]
    for method in cfg.filters.methods:
        out = run_dir / f"{method}.zarr"

        def do_filter(method: str = method, out: Path = out) -> str:
            t0 = time.perf_counter()
            apply_filter(recon, out, method=method, config=cfg.filters, overwrite=True)
            return _volume_summary(out, method, time.perf_counter() - t0)

        stages.append(_Stage(f"filter:{method}", out,
                             config_hash(h_recon, cfg.filters, method), do_filter))

    h_report = config_hash(*(s.hash for s in stages), cfg.report)

    def do_report() -> str:
        t0 = time.perf_counter()
        path = make_report(run_dir, config=cfg.report, overwrite=True)
        return f"{path} in {time.perf_counter() - t0:.1f} s"

    stages.append(_Stage("report", run_dir / "report", h_report, do_report))
    return stages


def _execute(stages: list[_Stage], run_dir: Path, record: dict[str, Any]) -> None:
    done = record.setdefault("stages", {})
    for st in stages:
        prev = done.get(st.name)
        if prev and prev.get("hash") == st.hash and st.complete():
            log.info("%s: complete and configuration unchanged, skipping", st.name)
            continue
        if prev and prev.get("hash") != st.hash:
            log.info("%s: configuration changed upstream or here, re-doing", st.name)
        done.pop(st.name, None)
        _write_run(run_dir, record)
        store.remove_stale_partials(st.output)
        if st.output.exists() and st.name != "train":
            # an output that is not recorded as done is stale (interrupted or outdated)
            shutil.rmtree(st.output) if st.output.is_dir() else st.output.unlink()
        elif st.name == "train" and st.output.exists() and not (
            prev is None and (st.output / "checkpoint.pt").exists()
            and record.get("train_hash_started") == st.hash
        ):
            shutil.rmtree(st.output)
        if st.name == "train":
            record["train_hash_started"] = st.hash
            _write_run(run_dir, record)
        log.info("%s: starting", st.name)
        t0 = time.perf_counter()
        summary = st.action()
        seconds = time.perf_counter() - t0
        done[st.name] = {"hash": st.hash, "seconds": round(seconds, 3), "summary": summary}
        _write_run(run_dir, record)
        log.info("%s: %s", st.name, summary)


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

    Returns
    -------
    RunResult
    """
    cfg = _resolve_config(config, overrides)
    if cluster is not None:
        cfg.cluster = cluster
    if not isinstance(input, xr.Dataset) and not Path(input).exists():
        raise InputError(f"input {input} does not exist; give a scan file or folder")
    run_dir = Path(out)
    record = _claim_run_dir(run_dir, _input_id(input), overwrite)
    record["config"] = to_dict(cfg)
    _write_run(run_dir, record)
    save_config(cfg, run_dir / "config.yaml")
    fh = _setup_logging(run_dir, quiet, verbose)
    t0 = time.perf_counter()
    try:
        log.info("tomochunk %s run of %s into %s", __version__, record["input"], run_dir)
        stages = _stages(input, run_dir, cfg)
        from .cluster import connect

        with connect(cfg.cluster):
            _execute(stages, run_dir, record)
        log.info("run complete in %.1f s; report: %s", time.perf_counter() - t0,
                 run_dir / "report" / "index.html")
    finally:
        logging.getLogger("tomochunk").removeHandler(fh)
        fh.close()
    return RunResult(run_dir, record["stages"], run_dir / "report" / "index.html")


def demo_config() -> RunConfig:
    """The configuration of ``tomochunk demo``: small network, minutes on a 2-core laptop."""
    cfg = RunConfig()
    cfg.preprocess.center = "auto"
    cfg.train.depth = 30
    cfg.train.patch_size = 96
    cfg.train.batch_size = 4
    cfg.train.patches_per_epoch = 48
    cfg.train.epochs = 40
    cfg.train.patience = 8
    cfg.train.max_minutes = 4.0
    cfg.denoise.chunk_z = 16
    cfg.filters.methods = ["median", "nlm"]
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
) -> RunResult:
    """Run the whole pipeline on the built-in synthetic scan (truth known, so PSNR/SSIM too)."""
    from .phantom import demo_spec, simulate_scan

    spec = demo_spec(size)
    scan, truth = simulate_scan(spec)
    run_dir = Path(out)
    cfg = config or demo_config()
    truth_path = run_dir / "truth.zarr"
    record = _claim_run_dir(run_dir, _input_id(scan), overwrite)
    _write_run(run_dir, record)
    if not store.is_complete(truth_path):
        store.remove_stale_partials(truth_path)
        if truth_path.exists():
            shutil.rmtree(truth_path)
        coords = {}
        ds = xr.Dataset({"truth": (("z", "y", "x"), truth)}, coords=coords).chunk({"z": 16})
        store.write_dataset(ds, truth_path, attrs={"phantom_spec": scan.attrs.get("phantom_spec")},
                            label="writing truth.zarr")
    if cfg.report.truth is None:
        cfg.report.truth = str(truth_path)
    return run(scan, run_dir, config=cfg, cluster=cluster, overwrite=False, quiet=quiet,
               verbose=verbose)
