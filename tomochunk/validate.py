"""Check a whole configuration before any cluster starts or any data is read.

Each stage checks its own options when it runs; a pipeline run or a CLI command calls
:func:`check_config` first so that a bad value (``--depth 0``, ``--workers 0``, an address
that is not one) fails in milliseconds with one line, not after a cluster started or inside
a worker's task.
"""

from __future__ import annotations

from typing import Any

from .config import (
    ClusterConfig,
    DenoiseConfig,
    FilterConfig,
    IngestConfig,
    ReconConfig,
    TrainConfig,
)
from .errors import ConfigError

__all__ = ["check_config", "check_cluster"]


def _at_least(problems: list[str], cfg: Any, name: str, low: int, flag: str) -> None:
    value = getattr(cfg, name, None)
    if value is not None and value < low:
        problems.append(f"{flag} must be >= {low} (got {value})")


def check_cluster(cfg: ClusterConfig, reach: bool = True) -> None:
    """Cluster options: worker counts >= 1, a scheduler address that answers."""
    problems: list[str] = []
    _at_least(problems, cfg, "n_workers", 1, "--workers")
    _at_least(problems, cfg, "threads_per_worker", 1, "cluster.threads_per_worker")
    if problems:
        raise ConfigError("invalid cluster configuration: " + "; ".join(problems))
    if cfg.scheduler and cfg.scheduler_file:
        raise ConfigError("give either --scheduler or --scheduler-file, not both")
    if reach and cfg.scheduler:
        from .faults import check_scheduler_address

        check_scheduler_address(cfg.scheduler)


def _check_train(cfg: TrainConfig) -> None:
    from .training.n2i import _check_config

    problems: list[str] = []
    for name in ("depth", "width", "unet_depth", "unet_features", "unet_space_to_depth"):
        _at_least(problems, cfg, name, 1, f"--{name.replace('_', '-')}")
    _at_least(problems, cfg, "threads", 1, "train.threads")
    if problems:
        raise ConfigError("invalid training configuration: " + "; ".join(problems))
    _check_config(cfg)


def check_config(cfg: Any) -> None:
    """Validate a stage config or a :class:`~tomochunk.config.RunConfig` (every section)."""
    if isinstance(cfg, ClusterConfig):
        check_cluster(cfg)
    elif isinstance(cfg, TrainConfig):
        _check_train(cfg)
    elif isinstance(cfg, DenoiseConfig):
        from .inference.denoise import _check_config

        _check_config(cfg)
    elif isinstance(cfg, FilterConfig):
        problems: list[str] = []
        _at_least(problems, cfg, "radius", 1, "--radius")
        _at_least(problems, cfg, "chunk_z", 1, "--chunk-z")
        if problems:
            raise ConfigError("invalid filter configuration: " + "; ".join(problems))
    elif isinstance(cfg, IngestConfig):
        problems = []
        _at_least(problems, cfg, "rows_per_chunk", 1, "--rows-per-chunk")
        if not cfg.read_block_mb > 0:
            problems.append(f"--read-block-mb must be > 0 (got {cfg.read_block_mb})")
        if problems:
            raise ConfigError("invalid ingest configuration: " + "; ".join(problems))
    elif isinstance(cfg, ReconConfig):
        from .recon.volume import _check_config as check_recon

        if cfg.splits < 2:
            raise ConfigError(
                f"invalid recon configuration: --splits must be >= 2 (got {cfg.splits}); "
                "Noise2Inverse needs K >= 2 subsets"
            )
        check_recon(cfg)
    elif hasattr(cfg, "train") and hasattr(cfg, "cluster"):  # RunConfig
        for section in (cfg.ingest, cfg.recon, cfg.train, cfg.denoise, cfg.filters,
                        cfg.cluster):
            check_config(section)
