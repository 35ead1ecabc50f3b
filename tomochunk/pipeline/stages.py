"""The stages of a run, built from its configuration: ingest, recon, train, denoise, one stage
per baseline filter, report.

Each stage's hash covers the result fields of its own config section (plus the hashes of the
stages it reads): adding a filter method adds one stage and re-runs nothing else but the
report that shows it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..config import FilterConfig, ReconConfig, RunConfig, replace, result_fields
from ..io.identity import input_identity
from ..io.urls import RemotePath, is_url, join
from ..runtime.logs import get_logger
from ..runtime.threads import thread_count
from .record import input_id, storage
from .stage import Stage, volume_summary

__all__ = ["build_stages", "filter_stage_config", "recon_stage_config"]

log = get_logger("pipeline")


def filter_stage_config(filters: FilterConfig, method: str) -> dict[str, Any]:
    """What the result of baseline ``method`` depends on in the ``filters`` section.

    The noise level setting, the chunk size and the method's own parameters (those of
    :func:`tomochunk.filters.filter_params`); another method's parameters are left out.
    """
    from ..filters.apply import filter_params

    own = {k: v for k, v in filter_params(method, filters).items() if k != "sigma"}
    return {"method": method, "sigma": filters.sigma, "chunk_z": filters.chunk_z, **own}


def recon_stage_config(recon: ReconConfig) -> dict[str, Any]:
    """What the reconstruction depends on in the ``recon`` section.

    Its :func:`~tomochunk.config.result_fields` (backend parameters left out:
    :data:`~tomochunk.config.BY_COMPONENT`) and, as ``"native.eps"``, each parameter that
    differs from its default of the backends whose parameters the selected backend uses
    (its own; ``auto``: cufinufft and native). With default parameters this is the
    section's result fields alone, so existing run folders keep their recon hash; another
    backend's parameters are left out.
    """
    from ..recon.registry import RECONSTRUCTORS

    own: dict[str, Any] = {}
    for name in RECONSTRUCTORS.get_entry(recon.backend).obj.params_from:
        default = RECONSTRUCTORS.get_entry(name).obj.params()
        for key, value in dataclasses.asdict(recon.params_of(name)).items():
            if value != getattr(default, key):
                own[f"{name}.{key}"] = value
    return {**result_fields(recon), **own}


def _timed(fn: Callable[[], Any], summary: Callable[[float], str]) -> Callable[[], str]:
    """An action that runs ``fn`` and summarises it with the seconds it took."""
    def action() -> str:
        t0 = time.perf_counter()
        fn()
        return summary(time.perf_counter() - t0)

    return action


def _data_stages(source: Any, at: Callable[[str], Any], cfg: RunConfig) -> list[Stage]:
    """ingest and recon."""
    from ..io.ingest import ingest
    from ..recon.volume import reconstruct

    so = storage(cfg)
    scan, recon = at("scan.zarr"), at("recon.zarr")
    ident = input_identity(source, so)
    ingest_st = Stage.after(
        [], "ingest", scan, (input_id(source), cfg.ingest, *([ident] if ident else [])),
        _timed(lambda: ingest(source, scan, config=cfg.ingest, overwrite=True,
                              storage_options=so),
               lambda s: volume_summary(scan, "projections", s, so)),
        storage_options=so)
    recon_st = Stage.after(
        [ingest_st], "recon", recon, (cfg.preprocess, recon_stage_config(cfg.recon)),
        _timed(lambda: reconstruct(scan, recon, preprocess=cfg.preprocess, config=cfg.recon,
                                   overwrite=True, storage_options=so),
               lambda s: volume_summary(recon, "full", s, so)),
        storage_options=so)
    return [ingest_st, recon_st]


def _train_action(recon: Any, model: Any, cfg: RunConfig) -> Callable[[], str]:
    """Train (resuming an interrupted training of this configuration) and summarise."""
    from ..training.budget import with_default_budget
    from ..training.modelfile import CHECKPOINT_FILE
    from ..training.n2i import train

    so = storage(cfg)

    def do_train() -> str:
        # the runner keeps the model folder only when it holds an interrupted training of
        # this very configuration: continue it from its checkpoint, else train afresh
        t0 = time.perf_counter()
        resume = not is_url(model) and (model / CHECKPOINT_FILE).exists()
        if resume:
            log.info("train: resuming from the last checkpoint in %s", model)
        local = not (cfg.cluster.scheduler or cfg.cluster.scheduler_file)
        threads = thread_count("training_stage", requested=cfg.train.threads,
                               local_cluster=local)
        tcfg = with_default_budget(cfg.train, recon, threads, so)
        m = train(recon, model, config=replace(tcfg, resume=resume, threads=threads),
                  overwrite=True, storage_options=so)
        hist = getattr(m, "history", None) or {}
        epochs = hist.get("epochs", [])
        seconds = time.perf_counter() - t0
        last = f", final validation loss {epochs[-1]['val_loss']:.4g}" if epochs else ""
        return (f"{len(epochs)} epochs ({hist.get('stopped')}) in {seconds:.1f} s, best epoch "
                f"{hist.get('best_epoch')}{last}")

    return do_train


def _model_stages(recon_st: Stage, at: Callable[[str], Any], cfg: RunConfig) -> list[Stage]:
    """train and denoise."""
    from ..inference import denoise

    so = storage(cfg)
    recon, model, den = recon_st.output, at("model"), at("denoised.zarr")
    train_st = Stage.after([recon_st], "train", model, (cfg.train,),
                           _train_action(recon, model, cfg), marker="model.pt",
                           resumable=True, storage_options=so)
    denoise_st = Stage.after(
        [train_st], "denoise", den, (cfg.denoise,),
        _timed(lambda: denoise(recon, model, den, config=cfg.denoise, overwrite=True,
                               storage_options=so),
               lambda s: volume_summary(den, "denoised", s, so)),
        storage_options=so)
    return [train_st, denoise_st]


def _filter_stage(recon_st: Stage, method: str, out: Any, cfg: RunConfig) -> Stage:
    """The stage of one baseline filter: its hash covers only this method's settings."""
    from ..filters import apply_filter

    so = storage(cfg)
    return Stage.after(
        [recon_st], f"filter:{method}", out, (filter_stage_config(cfg.filters, method),),
        _timed(lambda: apply_filter(recon_st.output, out, method=method, config=cfg.filters,
                                    overwrite=True, storage_options=so),
               lambda s: volume_summary(out, method, s, so)),
        storage_options=so)


def build_stages(source: Any, run_dir: Any, cfg: RunConfig) -> list[Stage]:
    """Every stage of a run of ``source`` into ``run_dir``, in the order they run.

    Parameters
    ----------
    source : path, URL or xarray.Dataset
        The raw scan.
    run_dir : Path or RemotePath
        The run folder.
    cfg : RunConfig
        The checked configuration.
    """
    from ..report import make_report

    def at(name: str) -> Any:  # the stage output: a Path, or a URL in a bucket
        return join(run_dir.url, name) if isinstance(run_dir, RemotePath) else run_dir / name

    stages = _data_stages(source, at, cfg)
    stages += _model_stages(stages[1], at, cfg)
    stages += [_filter_stage(stages[1], m, at(f"{m}.zarr"), cfg) for m in cfg.filters.methods]
    so = storage(cfg)

    def do_report() -> str:
        t0 = time.perf_counter()
        path = make_report(run_dir, config=cfg.report, overwrite=True, storage_options=so)
        return f"{path} in {time.perf_counter() - t0:.1f} s"

    stages.append(Stage.after(list(stages), "report", at("report"), (cfg.report,), do_report,
                              marker="index.html", storage_options=so))
    return stages
