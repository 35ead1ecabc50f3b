"""Config files: :func:`load_config`, :func:`read_config_file`, :func:`save_config` (YAML)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import ConfigError
from .parse import from_dict, to_dict
from .run import RunConfig

__all__ = ["load_config", "read_config_file", "save_config"]

C = TypeVar("C")


def load_config(path: str | Path, cls: type[C] = RunConfig) -> C:  # type: ignore[assignment]
    """Load a YAML config file into ``cls`` (default :class:`RunConfig`)."""
    return from_dict(cls, read_config_file(path))


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML config file, not yet checked (see :func:`load_config`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file; give the path of a YAML file")
    from ..safe_yaml import load_yaml

    data = load_yaml(path.read_text(), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return data


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
