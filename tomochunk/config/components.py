"""Component sections of configs: ``filters: {median: {radius: 2}}``, ``train: {unet: {...}}``.

A config section with components (:class:`~tomochunk.config.FilterConfig`,
:class:`~tomochunk.config.TrainConfig`) keeps the validated ``Params`` of each component
that differs from its defaults in ``components``; the YAML form has one sub-section per
registered component (generated from the registry, so a new filter or network gets its
section with no edit). The old flat keys (``radius``, ``nlm_h``, ``unet_depth``, ...) still
work as keyword arguments, YAML keys and attributes, with a DeprecationWarning naming the new
key. Configs are frozen: a changed copy comes from :func:`tomochunk.config.replace` (or
:meth:`ComponentSections.with_values` for internal code that sets flat keys).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing
import warnings
from typing import Any

from ..errors import ConfigError, shorten

__all__ = ["ComponentSections", "nest_flat_keys", "registry_of", "with_components"]


_Flat = dict[str, tuple[tuple[str, str], ...]]


def registry_of(cls: type) -> Any:
    module, _, attr = cls._component_registry.partition(":")  # type: ignore[attr-defined]
    return getattr(importlib.import_module(module), attr)


def _component_params(cls: type, name: str, value: Any, where: str) -> Any:
    """The validated Params of component ``name`` from a mapping (or Params) ``value``."""
    comp = registry_of(cls).get_entry(name).obj
    if isinstance(value, comp.Params):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of {name} parameters, got "
                          f"{shorten(value)}")
    comp.params({k: None for k in value if k not in comp.param_names()})  # unknown keys
    from .parse import _coerce

    hints = typing.get_type_hints(comp.Params)
    return comp.params({k: _coerce(v, hints[k], f"{where}.{k}") for k, v in value.items()})


def nest_flat_keys(cls: type, data: dict[str, Any], *, warn: bool = True,
                   where: str = "") -> dict[str, Any]:
    """Move the component sections and the deprecated flat keys of ``data`` into
    ``components`` as validated Params (a flat key overrides its section's value, and a
    ``"component.param"`` key, as ``--set`` and the CLI options write, overrides both).

    Errors name the key as written: ``train.depth`` for a flat key, ``train.msd.depth``
    for a section's field.
    """
    flat: _Flat = getattr(cls, "_flat_keys", {})
    if not hasattr(cls, "_component_registry"):
        return data
    plain = {f.name for f in dataclasses.fields(cls)} - {"components"}
    if not flat and all(k in plain for k in data):
        return data  # only plain fields: nothing to nest (and no registry to import)
    from .parse import _coerce

    reg = registry_of(cls)
    names = set(reg.names())
    known = {f.name for f in dataclasses.fields(cls)} | set(flat) | names
    if any(k.partition(".")[0] not in known for k in data):
        reg.discover()  # a plugin installed (or put on sys.path) since the first lookup
        names = set(reg.names())
    prefix = f"{where}." if where else ""
    data = dict(data)
    comps = {k: (dict(v) if isinstance(v, dict) else v)
             for k, v in dict(data.pop("components", None) or {}).items()}
    for key in [k for k in data if k in names and k not in flat]:
        comps[key] = data.pop(key)
    from_flat: dict[tuple[str, str], str] = {}
    for key in [k for k in data if k in flat]:
        value, targets = data.pop(key), flat[key]
        if warn:
            new = " and ".join(f"{prefix}{c}.{p}" for c, p in targets)
            warnings.warn(f"config key {prefix}{key} is deprecated; use {new}",
                          DeprecationWarning, stacklevel=3)
        for comp, param in targets:
            hint = typing.get_type_hints(reg.get_entry(comp).obj.Params)[param]
            _section(comps, comp)[param] = _coerce(value, hint, prefix + key)
            from_flat[comp, param] = key
    for key in [k for k in data if k.partition(".")[0] in names]:  # "median.radius": 3
        comp, _, param = key.partition(".")  # (--set, CLI options: they win over flat keys)
        _section(comps, comp)[param] = data.pop(key)
        from_flat.pop((comp, param), None)
    if comps:
        data["components"] = {n: _flat_named(cls, n, v, prefix + n, from_flat)
                              for n, v in comps.items()}
    return data


def _flat_named(cls: type, name: str, value: Any, where: str,
                from_flat: dict[tuple[str, str], str]) -> Any:
    """:func:`_component_params`; a range error of a value given by a flat key names that key
    as the section's own check did (``invalid training configuration: --depth must be >= 1
    (got 0)``)."""
    from ..registry import ParamRangeError

    try:
        return _component_params(cls, name, value, where)
    except ParamRangeError as exc:
        key = from_flat.get((name, exc.param))
        if key is None:
            raise
        raise ConfigError(f"invalid {getattr(cls, '_component_what', 'component')} "
                          f"configuration: --{key.replace('_', '-')} {exc.rule} "
                          f"(got {exc.value})") from None


def _section(comps: dict[str, Any], name: str) -> dict[str, Any]:
    """The mutable mapping of section ``name`` in ``comps`` (Params turned into a dict)."""
    section = comps.setdefault(name, {})
    if not isinstance(section, dict):
        section = comps[name] = dataclasses.asdict(section)
    return section


def with_components(registry: str, flat: _Flat, what: str = "component") -> Any:
    """Class decorator: the config section has component sections from ``registry``.

    ``flat`` maps each deprecated flat key to the ``(component, parameter)`` pairs it sets;
    ``what`` names the section in errors ("invalid training configuration: ...").
    """

    def deco(cls: Any) -> Any:
        init = cls.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **nest_flat_keys(cls, kwargs))

        __init__.__doc__ = init.__doc__
        __init__.__signature__ = inspect.signature(init)  # type: ignore[attr-defined]
        cls.__init__ = __init__
        cls._component_registry, cls._flat_keys = registry, flat
        cls._component_what = what
        return cls

    return deco


class ComponentSections:
    """Mixin of configs with component sections: ``params_of``, flat-key reads.

    It comes first among the bases of a frozen config section; its ``__post_init__``
    validates the sections, then chains to the section's own checks.
    """

    components: dict[str, Any]

    def __post_init__(self) -> None:
        comps = {name: _component_params(type(self), name, value,
                                         f"{type(self).__name__}.{name}")
                 for name, value in (self.components or {}).items()}
        self._set_components(comps)
        after = getattr(super(), "__post_init__", None)  # a config base's checks, if any
        if after is not None:
            after()

    def _set_components(self, comps: dict[str, Any]) -> None:
        # only the sections that differ from their defaults: equal configs compare equal
        kept = {}
        for name, params in sorted(comps.items()):
            if params != registry_of(type(self)).get_entry(name).obj.params():
                kept[name] = params
        object.__setattr__(self, "components", kept)

    def params_of(self, name: str) -> Any:
        """The Params of component ``name`` (its defaults when the config sets none)."""
        if name in self.components:
            return self.components[name]
        return registry_of(type(self)).get_entry(name).obj.params()

    def components_names(self) -> list[str]:
        """The names of the registered components (the section keys)."""
        return list(registry_of(type(self)).names())

    def component_sections(self) -> dict[str, dict[str, Any]]:
        """``{name: {param: value}}`` of every registered component that has parameters
        (YAML sections)."""
        return {name: dataclasses.asdict(self.params_of(name))
                for name in registry_of(type(self)).names()
                if dataclasses.fields(self.params_of(name))}

    def value(self, key: str) -> Any:
        """A field, or a deprecated flat key resolved in its component section."""
        flat: _Flat = getattr(type(self), "_flat_keys", {})
        if key in flat:
            comp, param = flat[key][0]
            return getattr(self.params_of(comp), param)
        return getattr(self, key)

    def flat_values(self) -> dict[str, Any]:
        """The deprecated flat keys with their values (``{"depth": 100, ...}``), for readers
        of records written before the sections (model metadata)."""
        return {key: self.value(key) for key in getattr(type(self), "_flat_keys", {})}

    def with_values(self, **values: Any) -> Any:
        """A copy with fields and flat keys (``unet_depth=2``) set, without a warning."""
        from .parse import from_dict, to_dict

        data = nest_flat_keys(type(self), {**to_dict(self), **values}, warn=False)
        return from_dict(type(self), data)

    def component_fields(self) -> dict[str, Any]:
        """The component parameters as hashed fields (``result_fields``, ``checkpoint_fields``).

        Every deprecated flat key with its value (``{"depth": 100, "unet_depth": 3, ...}``:
        the names and hashes that stages and checkpoints had before the sections), then
        ``"name.param"`` for each parameter that no flat key reads of each section set to
        other than its defaults (a third-party component's).
        """
        flat: _Flat = getattr(type(self), "_flat_keys", {})
        out = self.flat_values()
        covered = {targets[0] for targets in flat.values()}
        for name, params in self.components.items():
            for key, value in dataclasses.asdict(params).items():
                if (name, key) not in covered:
                    out[f"{name}.{key}"] = value
        return out

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key == "components" or key not in getattr(
                type(self), "_flat_keys", {}):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

        comp, param = type(self)._flat_keys[key][0]  # type: ignore[attr-defined]
        warnings.warn(f"{type(self).__name__}.{key} is deprecated; use "
                      f".params_of({comp!r}).{param}", DeprecationWarning, stacklevel=2)
        return self.value(key)
