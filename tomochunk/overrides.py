"""Parse ``--set section.key=value`` command-line overrides of a run configuration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import ConfigError, shorten
from .safe_yaml import load_yaml

__all__ = ["parse_settings"]


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
