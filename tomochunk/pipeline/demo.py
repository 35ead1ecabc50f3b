"""``tomochunk demo``: the whole pipeline on the built-in synthetic scan, truth known."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import xarray as xr

from ..config import ClusterConfig, RunConfig, from_dict, replace
from ..io import store
from ..io.lock import exclusive
from ..io.paths import check_not_file
from ..io.urls import RemotePath, join, location
from ..runtime.logs import session_logging
from ..validate import check_config
from .record import claim_run_dir, log_file, remove_output, storage, write_run
from .runner import RunResult, run

__all__ = ["demo", "demo_config", "replace_cluster"]


def demo_config() -> RunConfig:
    """The configuration of ``tomochunk demo``: about 3 minutes on 2 CPU cores.

    On the ``demo`` scan (64 x 128 x 128, 256 angles, 800 photons) the network that
    ``train --budget`` picks on CPU (a UNet of 2 levels x 32 features on the 2x2
    space-to-depth slice, see ``benchmarks/n2i_networks.py``) with 2.5D context 5 and K=2
    trains for 20 epochs of 48 patches of 96 x 96 (about 100 s on 2 idle cores). The budget
    counts epochs, so the result is the same on a slow or busy machine; ``max_minutes`` is
    only a safety stop, far above the normal time. The baselines tomochunk ships (median
    radius 2, NLM, iterative NLM) take about a minute together, and the report shows the
    Noise2Inverse result ahead of all three (measured: PSNR 27.3 dB against iterative NLM
    25.4, NLM 24.3 and the median 23.4). The MSD-30 of earlier versions needed 40 epochs
    (135 s) for 27.2 dB.
    """
    return from_dict(RunConfig, {
        "preprocess": {"center": "auto"},
        "train": {"network": "unet", "unet": {"depth": 2, "features": 32, "space_to_depth": 2},
                  "context": 5, "patch_size": 96, "batch_size": 4,
                  "patches_per_epoch": 48, "epochs": 20, "patience": 8,
                  "max_minutes": 20.0},  # a safety stop only: the budget is the epochs
        "recon": {"splits": 2},
        "denoise": {"chunk_z": 16},
        # the filters' halo is exact, so the chunk size changes only the time: one chunk of
        # all 64 slices computes no halo. Two 32-slice chunks (one per core) compute 76 slices
        # with NLM's 6-slice halo and 96 with iterative NLM's 16: measured on 2 idle cores,
        # NLM 35.0 CPU-s (18.7 s) against 27.0 (27.0 s) and iterative NLM 61.5 CPU-s
        # (31.7 s) against 35.8 (35.8 s). One chunk costs 12 s on an idle machine and saves
        # 34 CPU-s, which a busy machine gets back as time.
        "filters": {"methods": ["median", "nlm", "iternlm"], "median": {"radius": 2},
                    "chunk_z": 64},
    })


def demo(
    out: str | os.PathLike[str] = "tomochunk-demo",
    *,
    cluster: ClusterConfig | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    config: RunConfig | None = None,
    size: Literal["test", "demo", "bench"] = "demo",
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
    from ..phantom import demo_spec

    scan_spec = demo_spec(size, **dict(spec or {}))
    cfg = config or demo_config()
    if storage_options:
        cfg = replace(cfg, io=replace(cfg.io, storage_options=dict(storage_options)))
    check_config(replace_cluster(cfg, cluster))
    check_not_file(out, "--out")
    with exclusive(out, "run folder", storage(cfg)):
        return _demo(location(out, storage(cfg)), scan_spec, cfg, cluster, overwrite, quiet,
                     verbose)


def replace_cluster(cfg: RunConfig, cluster: ClusterConfig | None) -> RunConfig:
    """``cfg`` with its cluster section replaced by ``cluster`` (when given)."""
    return cfg if cluster is None else replace(cfg, cluster=cluster)


def _demo(run_dir: Any, scan_spec: Any, cfg: RunConfig, cluster: ClusterConfig | None,
          overwrite: bool, quiet: bool, verbose: bool) -> RunResult:
    """:func:`demo` once its configuration is checked and the run folder is locked."""
    from ..phantom import simulate_scan

    scan_id = f"in-memory:tomochunk.phantom:{scan_spec.to_json()}"  # as input_id(scan)
    record = claim_run_dir(run_dir, scan_id, overwrite)
    write_run(run_dir, record)
    so = storage(cfg)
    remote = isinstance(run_dir, RemotePath)
    truth_path = join(run_dir.url, "truth.zarr") if remote else run_dir / "truth.zarr"
    with log_file(run_dir) as (log_path, _), session_logging(quiet, verbose, log_path):
        scan, truth = simulate_scan(scan_spec)
        if not store.is_complete(truth_path, so):
            store.remove_stale_partials(truth_path)
            remove_output(truth_path, so)
            ds = xr.Dataset({"truth": (("z", "y", "x"), truth)}).chunk({"z": 16})
            store.write_dataset(ds, truth_path,
                                attrs={"phantom_spec": scan.attrs.get("phantom_spec")},
                                label="writing truth.zarr", storage_options=so)
        if cfg.report.truth is None:  # a new config: the caller's is not changed
            cfg = replace(cfg, report=replace(cfg.report, truth=str(truth_path)))
        return run(scan, run_dir.url if remote else run_dir, config=cfg, cluster=cluster,
                   overwrite=False, quiet=quiet, verbose=verbose)
