"""Configs from and to plain mappings, strictly: from_dict, to_dict and replace.

:func:`from_dict` validates strictly: unknown keys raise an error that lists the valid ones,
and values of the wrong type are rejected with the expected type named. YAML files are read
and written by :mod:`tomochunk.config.files`.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from ..errors import ConfigError, shorten
from .components import ComponentSections, nest_flat_keys, registry_of

__all__ = ["from_dict", "to_dict", "replace", "NULL"]

C = TypeVar("C")

#: A YAML 1.2 float without a dot (``1e-5``), which PyYAML's YAML 1.1 reads as a string.
_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        return f"list[{_type_name(inner)}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it (ints accepted for floats)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where}: {shorten(value)} is not one of {_type_name(tp)}")
    if origin in (Union, types.UnionType):
        errors = []
        for arg in get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {shorten(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {shorten(value)}")
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{where}: expected a mapping of names to values, got "
                              f"{shorten(value)}")
        return dict(value)
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {shorten(value)}")
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(tp, type) and is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for section {tp.__name__}")
        return from_dict(tp, value, _where=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {shorten(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {shorten(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # 1e-5: a float in YAML 1.2, a string to PyYAML (1.1)
        raise ConfigError(f"{where}: expected a number, got {shorten(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {shorten(value)}")
    return value


def from_dict(cls: type[C], data: dict[str, Any] | None, *, _where: str = "") -> C:
    """Build config ``cls`` from a mapping, strictly.

    Parameters
    ----------
    cls : dataclass type
        One of the config classes.
    data : dict or None
        Keys are field names; nested sections are mappings.

    Raises
    ------
    ConfigError
        On unknown keys (the message lists the valid keys) or values of the wrong type.
    """
    data = nest_flat_keys(cls, dict(data or {}), where=_where)
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(valid))
    if hasattr(cls, "_flat_keys"):  # the sections (and the old flat keys) for ``components``
        i = valid.index("components")
        valid[i:i + 1] = [*cls._flat_keys, *registry_of(cls).names()]  # type: ignore[attr-defined]
    prefix = f"{_where}." if _where else ""
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)} in "
            f"{cls.__name__}; valid keys are: {', '.join(valid)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain (YAML/JSON-serialisable) dict of a config (component sections nested)."""
    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "components" and isinstance(cfg, ComponentSections):
            out.update(cfg.component_sections())
        else:
            out[f.name] = to_dict(value) if is_dataclass(value) else copy.deepcopy(value)
    return out


class _Null:
    """The type of :data:`NULL`."""

    def __repr__(self) -> str:
        return "NULL"


#: ``replace(cfg, patience=NULL)`` sets a field to None (a plain None means "not given").
NULL = _Null()


def replace(cfg: C, **changes: Any) -> C:
    """Return a copy of ``cfg`` with ``changes`` applied and validated.

    This is the one way to change a config (they are frozen): the result is type-checked
    like a config file (:func:`from_dict`) and value-checked by its ``__post_init__``.
    ``None`` values in ``changes`` are ignored, so CLI flags that were not given do not
    override the config; :data:`NULL` sets a field to None.
    """
    changes = {k: (None if v is NULL else v) for k, v in changes.items() if v is not None}
    merged = {**to_dict(cfg), **changes}
    return from_dict(type(cfg), merged)
