"""Training checkpoints: read one, decide whether a model folder may be written or resumed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..errors import ConfigError, InputError, ModelError, OutputExistsError
from ..runtime.logs import get_logger
from .inputs import ReconInfo, training_hash
from .modelfile import CHECKPOINT_FILE

__all__ = ["check_model_dir", "checkpoint_plan", "load_checkpoint"]

log = get_logger("train")


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: unusable checkpoint
        raise ModelError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); train again with "
            "--overwrite"
        ) from exc
    if not isinstance(ckpt, dict) or "config_hash" not in ckpt or "epoch" not in ckpt:
        raise ModelError(f"{path} is not a tomochunk training checkpoint; train again with "
                         "--overwrite")
    return ckpt


def check_model_dir(
    model_dir: Path, cfg: TrainConfig, info: ReconInfo, overwrite: bool
) -> dict[str, Any] | None:
    """Validate the output/resume situation; return the checkpoint to resume from, if any."""
    if cfg.resume:
        ck = model_dir / CHECKPOINT_FILE
        if not model_dir.exists():
            log.warning("resume: %s does not exist yet, starting a fresh training", model_dir)
            return None
        if not ck.exists():
            raise InputError(
                f"cannot resume: {model_dir} holds no {CHECKPOINT_FILE}; train without --resume "
                "(with --overwrite to replace the directory)"
            )
        ckpt = load_checkpoint(ck)
        h, fields_ = training_hash(cfg, info)
        if ckpt["config_hash"] != h:
            old = json.loads(ckpt.get("config_fields_json", "{}"))
            diff = [
                f"{k}: {old.get(k)!r} -> {v!r}" for k, v in fields_.items() if old.get(k) != v
            ]
            raise ConfigError(
                f"cannot resume from {ck}: it was written by a training with another "
                f"configuration or data ({'; '.join(diff) or 'unknown fields'}); resume with "
                "the same settings, or train afresh with --overwrite"
            )
        return ckpt
    if model_dir.exists() and not overwrite:
        raise OutputExistsError(
            f"output {model_dir} already exists; pass --overwrite (overwrite=True) to replace "
            "it, --resume to continue its training, or choose another path"
        )
    return None


def checkpoint_plan(model_dir: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The budget plan stored in ``model_dir``'s checkpoint when resuming a budgeted run."""
    ck = model_dir / CHECKPOINT_FILE
    if not (cfg.resume and cfg.budget_minutes is not None and ck.exists()):
        return None
    fields_ = json.loads(load_checkpoint(ck).get("config_fields_json", "{}"))
    plan = fields_.get("budget_plan")
    return dict(plan) if isinstance(plan, dict) else None
