"""The one table of value checks of the config sections: ranges and cross-field rules.

Every section of :mod:`tomochunk.config` calls :func:`check_section` when it is constructed
(``__post_init__``), so a config object that exists is a valid one, whichever way it was
made (a YAML file, ``--set``, :func:`tomochunk.config.replace`, the constructor). Types are
checked by :func:`tomochunk.config.from_dict`; what needs the outside world (a scheduler that
answers, a backend that is installed, a GPU) is checked by :mod:`tomochunk.validate` and the
stages. The messages are one line that names the option and the valid range. The
parameters of components (a filter's radius, a network's depth) are checked by the
component's own ``Params`` when the section is built (:mod:`tomochunk.config.components`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

__all__ = ["check_section", "CHECKS"]


def _at_least(problems: list[str], cfg: Any, name: str, low: int, label: str) -> None:
    value = getattr(cfg, name, None)
    if value is not None and value < low:
        problems.append(f"{label} must be >= {low} (got {value})")


def _raise(problems: list[str], section: str) -> None:
    if problems:
        raise ConfigError(f"invalid {section} configuration: " + "; ".join(problems))


def _check_ingest(cfg: Any) -> None:
    problems: list[str] = []
    if cfg.rows_per_chunk < 1:  # both names: the option and the key of the Python API
        problems.append(f"--rows-per-chunk must be >= 1 (got {cfg.rows_per_chunk}; "
                        "ingest.rows_per_chunk must be >= 1 in a config)")
    if not cfg.read_block_mb > 0:
        problems.append(f"--read-block-mb must be > 0 (got {cfg.read_block_mb}; "
                        "ingest.read_block_mb must be > 0 in a config)")
    _raise(problems, "ingest")


def _check_recon(cfg: Any) -> None:
    if cfg.splits < 2:
        raise ConfigError(
            f"invalid recon configuration: --splits must be >= 2 (got {cfg.splits}); "
            "Noise2Inverse needs K >= 2 subsets"
        )
    if cfg.backend == "astra" and cfg.tomopy_convention:
        raise ConfigError("tomopy_convention needs backend='native' or 'tomopy'")
    if cfg.pad not in ("zero", "edge", "none"):
        raise ConfigError(f"pad={cfg.pad!r}; valid values are: zero, edge, none")
    if cfg.rows_per_block < 1:
        raise ConfigError(f"rows_per_block={cfg.rows_per_block} must be at least 1")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads={cfg.threads} must be at least 1 (or None for auto)")


def _check_train(cfg: Any) -> None:
    # (the network parameters are checked by their Params: tomochunk.nn.builtin)
    problems: list[str] = []
    _at_least(problems, cfg, "threads", 1, "train.threads")
    _raise(problems, "training")
    if cfg.context < 1 or cfg.context % 2 == 0:
        problems.append(f"context must be an odd number >= 1 (got {cfg.context})")
    for name in ("patch_size", "batch_size", "patches_per_epoch", "epochs"):
        if getattr(cfg, name) < 1:
            problems.append(f"{name} must be >= 1 (got {getattr(cfg, name)})")
    if cfg.max_train_slices is not None and cfg.max_train_slices < cfg.context:
        problems.append(
            f"max_train_slices must be >= context ({cfg.context}) or null "
            f"(got {cfg.max_train_slices})"
        )
    if not cfg.lr > 0:
        problems.append(f"lr must be > 0 (got {cfg.lr})")
    if cfg.patience is not None and cfg.patience < 1:
        problems.append(f"patience must be >= 1 or null (got {cfg.patience})")
    if cfg.lr_schedule not in ("constant", "cosine", "onecycle"):
        problems.append(f"lr_schedule must be constant, cosine or onecycle (got "
                        f"{cfg.lr_schedule!r})")
    if not 0.0 <= cfg.warmup < 1.0:
        problems.append(f"warmup must be in [0, 1) (got {cfg.warmup})")
    for name in ("budget_minutes", "max_minutes"):
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            problems.append(f"{name} must be > 0 or null (got {value})")
    if not 0.0 <= cfg.val_fraction < 1.0:
        problems.append(f"val_fraction must be in [0, 1) (got {cfg.val_fraction})")
    _raise(problems, "training")


def _check_denoise(cfg: Any) -> None:
    problems: list[str] = []
    if cfg.chunk_z < 1:
        problems.append(f"chunk_z must be >= 1 (got {cfg.chunk_z})")
    if cfg.batch_size < 1:
        problems.append(f"batch_size must be >= 1 (got {cfg.batch_size})")
    if cfg.tile is not None and cfg.tile < 16:
        problems.append(f"tile must be >= 16 pixels or None for whole slices (got {cfg.tile})")
    if cfg.tile_halo is not None and cfg.tile_halo < 0:
        problems.append(f"tile_halo must be >= 0 (got {cfg.tile_halo})")
    if not cfg.noise_tolerance > 0:
        problems.append(f"noise_tolerance must be > 0 (got {cfg.noise_tolerance})")
    if cfg.ensemble not in (1, 2, 4, 8):
        problems.append(f"ensemble must be 1, 2, 4 or 8 (got {cfg.ensemble})")
    _raise(problems, "denoise")


def _check_filters(cfg: Any) -> None:
    # (each filter's parameters are checked by its Params: tomochunk.filters.median, ...)
    problems: list[str] = []
    _at_least(problems, cfg, "chunk_z", 1, "--chunk-z")
    _raise(problems, "filter")


def _check_report(cfg: Any) -> None:
    problems: list[str] = []
    _at_least(problems, cfg, "segmentation_phases", 2, "report.segmentation_phases")
    th = cfg.segmentation_thresholds
    if th is not None:
        if len(th) != cfg.segmentation_phases - 1:
            problems.append(f"report.segmentation_thresholds needs segmentation_phases - 1 = "
                            f"{cfg.segmentation_phases - 1} values, one between each pair of "
                            f"adjacent phases (got {len(th)})")
        elif any(b <= a for a, b in zip(th, th[1:], strict=False)):
            problems.append(f"report.segmentation_thresholds must increase (got {list(th)})")
    _raise(problems, "report")


def _check_cluster(cfg: Any) -> None:
    problems: list[str] = []
    _at_least(problems, cfg, "n_workers", 1, "--workers")
    _at_least(problems, cfg, "threads_per_worker", 1, "cluster.threads_per_worker")
    _raise(problems, "cluster")
    if cfg.scheduler and cfg.scheduler_file:
        raise ConfigError("give either --scheduler or --scheduler-file, not both")


#: The checks of each section, by class name (sections without an entry have none).
CHECKS: dict[str, Callable[[Any], None]] = {
    "IngestConfig": _check_ingest,
    "ReconConfig": _check_recon,
    "TrainConfig": _check_train,
    "DenoiseConfig": _check_denoise,
    "FilterConfig": _check_filters,
    "ReportConfig": _check_report,
    "ClusterConfig": _check_cluster,
}


def check_section(cfg: Any) -> None:
    """Check the values of one config section.

    Parameters
    ----------
    cfg : dataclass
        A section of :mod:`tomochunk.config` (``IngestConfig``, ``TrainConfig``, ...).

    Raises
    ------
    ConfigError
        A value out of its range or two values that do not go together (one line).
    """
    for cls in type(cfg).__mro__:
        check = CHECKS.get(cls.__name__)
        if check is not None:
            check(cfg)
            return
