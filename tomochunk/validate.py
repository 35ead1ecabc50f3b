"""Check a whole configuration before any cluster starts or any data is read.

Values (ranges, options that go together) are checked when a config is constructed
(:mod:`tomochunk.config.checks`). What is left needs the outside world: a scheduler
address that answers, a reconstruction backend and filter that are installed. A pipeline
run or a CLI command calls :func:`check_config` first so that a bad value fails in
milliseconds with one line, not after a cluster started or inside a worker's task.
"""

from __future__ import annotations

from typing import Any

from .config import ClusterConfig, ReconConfig, RunConfig
from .config.checks import check_section

__all__ = ["check_config", "check_cluster"]


def check_cluster(cfg: ClusterConfig, reach: bool = True) -> None:
    """Cluster options: their values, and (``reach``) a scheduler address that answers."""
    check_section(cfg)
    if reach and cfg.scheduler:
        from .faults import check_scheduler_address

        check_scheduler_address(cfg.scheduler)


def check_config(cfg: Any) -> None:
    """Validate a stage config or a :class:`~tomochunk.config.RunConfig` (every section).

    Parameters
    ----------
    cfg : config section or RunConfig
        What to check.

    Raises
    ------
    ConfigError
        A bad value, an unknown or missing backend, a scheduler address that is not one.
    """
    if isinstance(cfg, RunConfig):
        for f in ("ingest", "recon", "train", "denoise", "filters", "cluster"):
            check_config(getattr(cfg, f))
    elif isinstance(cfg, ClusterConfig):
        check_cluster(cfg)
    elif isinstance(cfg, ReconConfig):
        from .recon.volume import _check_config as check_recon

        check_section(cfg)
        check_recon(cfg)
    else:
        check_section(cfg)
