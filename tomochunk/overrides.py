"""Configuration from a file, ``--set section.key=value`` overrides and explicit CLI flags.

Every command that takes configuration builds it the same way (:func:`resolve_config`): the
defaults, then ``--config FILE``, then each ``--set``, then the flags given on the command
line (a flag that was not given is None and changes nothing). The result is checked whole
before any cluster starts.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from .config import RunConfig, from_dict, read_config_file, to_dict
from .errors import ConfigError, shorten
from .safe_yaml import load_yaml

__all__ = ["parse_settings", "apply_overrides", "resolve_config"]


def parse_settings(settings: Iterable[str]) -> dict[str, Any]:
    """``["train.depth=20", "filters.methods=[median]"]`` -> ``{"train.depth": 20, ...}``.

    Values are read as YAML (with the alias-size guard), so numbers, booleans, ``null``
    and lists work as in a config file. Section and key are checked when applied.
    """
    out: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or "." not in key or not key.split(".", 1)[1]:
            raise ConfigError(
                f"--set {shorten(item)} must be SECTION.KEY=VALUE, e.g. --set train.depth=20"
            )
        value = load_yaml(raw, f"--set {key}") if raw.strip() else None
        if value is None and raw.strip() not in ("null", "~"):
            raise ConfigError(f"--set {key}= needs a value (use null to unset)")
        out[key] = value
    return out


def apply_overrides(cfg: RunConfig | Mapping[str, Any],
                    overrides: Mapping[str, Any] | None) -> RunConfig:
    """Apply ``{"section.key": value}`` overrides (``None`` values are ignored).

    ``cfg`` is a config or the mapping of a config file; the overrides are merged into its
    values before the result is built and checked, once (so an option given on the command
    line replaces a bad value of the file). A mapping value over a mapping key
    (``io.storage_options``) is merged into it. ``cfg`` is unchanged.
    """
    data = to_dict(cfg) if isinstance(cfg, RunConfig) else copy.deepcopy(dict(cfg))
    sections = [f.name for f in fields(RunConfig)]
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in sections or not key:
            raise ConfigError(
                f"override {dotted!r} must be 'section.key' with section one of "
                f"{', '.join(sections)}"
            )
        part = data.setdefault(section, {})
        if not isinstance(part, dict):
            raise ConfigError(f"{section}: expected a mapping for section {section}")
        old = part.get(key)
        # a mapping (io.storage_options) is merged key by key: --storage-option key=... on
        # the command line adds credentials to a config file's endpoint_url
        part[key] = ({**old, **value} if isinstance(old, dict)
                     and isinstance(value, dict) else value)
    return from_dict(RunConfig, data)


def resolve_config(config: RunConfig | str | os.PathLike[str] | Mapping[str, Any] | None,
                   overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """The run configuration from a config (object, YAML path or mapping) and overrides.

    Parameters
    ----------
    config : RunConfig, path or mapping, optional
        The base (default :class:`~tomochunk.config.RunConfig`'s defaults).
    overrides : mapping, optional
        ``{"section.key": value}`` applied in order (CLI options, then ``--set``); None
        values are not given.

    Raises
    ------
    ConfigError
        An unknown key, a value of the wrong type or out of range, a missing file.
    """
    if config is None:
        base: RunConfig | Mapping[str, Any] = RunConfig()
    elif isinstance(config, RunConfig | Mapping):
        base = config
    else:
        base = read_config_file(config)
    return apply_overrides(base, overrides)
