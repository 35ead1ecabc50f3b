"""What changes a stage's result: field metadata markers, result fields and stage hashes.

A field's metadata says whether it changes the stage's result (:data:`NOT_IN_RESULT`) or
only whether an interrupted training may be continued (:data:`NOT_IN_CHECKPOINT`); stage
hashes come from that alone (:func:`stage_hash`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import fields, is_dataclass
from typing import Any

from .components import ComponentSections
from .parse import to_dict

__all__ = [
    "NOT_IN_RESULT",
    "NOT_IN_CHECKPOINT",
    "BY_COMPONENT",
    "result_fields",
    "checkpoint_fields",
    "stage_hash",
    "config_hash",
]

#: ``field(metadata=NOT_IN_RESULT)``: the field does not change the stage's result (threads,
#: devices, credentials): it is left out of the stage hashes (and of checkpoint matching).
NOT_IN_RESULT: dict[str, Any] = {"result": False}
#: ``field(metadata=NOT_IN_CHECKPOINT)``: the field changes the stage's result, but an
#: interrupted training that differs only in it may be continued (epochs, time limits).
NOT_IN_CHECKPOINT: dict[str, Any] = {"checkpoint": False}
#: ``field(metadata=BY_COMPONENT)`` (``FilterConfig.components``): each component's
#: parameters change only the result of the stage that runs that component (one stage per
#: filter method), so they are left out of the section's :func:`result_fields`; the stage
#: of a method adds its own (:func:`tomochunk.pipeline.stages.filter_stage_config`).
BY_COMPONENT: dict[str, Any] = {"result": False, "by_component": True}


def result_fields(cfg: Any) -> dict[str, Any]:
    """The fields of a config section that change its stage's result, by name.

    A field is left out when its metadata says ``result: False`` (:data:`NOT_IN_RESULT`:
    threads, devices, credentials, resuming). Stage hashes are computed from this alone.
    """
    return _fields_where(cfg, lambda m: m.get("result", True))


def checkpoint_fields(cfg: Any) -> dict[str, Any]:
    """The fields that must match for an interrupted training to be continued.

    The :func:`result_fields` less those whose metadata says ``checkpoint: False``
    (:data:`NOT_IN_CHECKPOINT`: epochs, time limits, precision, ...).
    """
    return _fields_where(cfg, lambda m: m.get("result", True) and m.get("checkpoint", True))


def _fields_where(cfg: Any, keep: Any) -> dict[str, Any]:
    """The fields whose metadata ``keep`` accepts; component parameters by their flat names
    (:meth:`~tomochunk.config.components.ComponentSections.component_fields`)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        if not keep(f.metadata):
            continue
        if f.name == "components" and isinstance(cfg, ComponentSections):
            out.update(cfg.component_fields())
        else:
            out[f.name] = _plain(getattr(cfg, f.name))
    return out


def _plain(value: Any) -> Any:
    return to_dict(value) if is_dataclass(value) and not isinstance(value, type) else value


def stage_hash(*parts: Any) -> str:
    """The hash of a stage: its :func:`result_fields` and those of the stages before it.

    ``parts`` are config sections (reduced to their :func:`result_fields`), upstream hashes
    and any other JSON-able values.
    """
    return config_hash(*(result_fields(p) if is_dataclass(p) and not isinstance(p, type)
                         else p for p in parts))


def config_hash(*cfgs: Any) -> str:
    """A short stable hash of one or more configs (used to detect changed stages)."""
    payload = json.dumps(
        [to_dict(c) if dataclasses.is_dataclass(c) else c for c in cfgs],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
