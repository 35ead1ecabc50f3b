"""Components and their registries: filters, networks, reconstructors and scan readers.

A *component* is an object registered under a name, modelled on xarray's
``BackendEntrypoint``. It carries its name, a one-line description, its availability (and
what it requires when it is not available) and a frozen ``Params`` dataclass of its
parameters (defaults, numpydoc ``Attributes``, range checks in ``__post_init__``). The
kind-specific subclasses add the rest: a filter its z-halo and kernel
(:class:`tomochunk.filters.component.Filter`), a network its builder and receptive radius
(:class:`tomochunk.nn.component.Network`). A scan reader is opened once per scan, so its
class is the component: a :class:`~tomochunk.io.readers.ScanReader` subclass has the same
interface (``name``, ``Params``, ``params()``, ...) at class level and is registered as the
class.

A :class:`Registry` maps names to components. Code registers with
``FILTERS.register(component)``; installed packages register through the entry-point groups
``tomochunk.filters``, ``tomochunk.networks``, ``tomochunk.reconstructors`` and
``tomochunk.readers`` (an entry point names a :class:`Component` subclass or instance),
loaded lazily on the first lookup. Lookups of unknown names fail with an error that lists
the valid names.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import BackendUnavailableError, ConfigError

T = TypeVar("T")

__all__ = ["Component", "NoParams", "ParamRangeError", "Registry", "build_params",
           "param_defaults", "params_error"]


@dataclass(frozen=True)
class NoParams:
    """A component without parameters."""


def params_error(unknown: list[str], valid: list[str], what: str) -> ConfigError:
    """The one-line error for unknown parameters of ``what`` (names the valid ones)."""
    return ConfigError(
        f"unknown parameter(s) {', '.join(unknown)} for {what}; valid parameters are: "
        f"{', '.join(valid) or '(none)'}"
    )


def build_params(comp: Any, values: Any = None, /, **kwargs: Any) -> Any:
    """Build (and so validate) the ``Params`` of ``comp`` from ``values`` and ``kwargs``.

    ``comp`` is a :class:`Component` or a class with the same interface at class level
    (a :class:`~tomochunk.io.readers.ScanReader` subclass); see :meth:`Component.params`.
    """
    if isinstance(values, comp.Params) and not kwargs:
        return values
    data = dataclasses.asdict(values) if dataclasses.is_dataclass(values) and not isinstance(
        values, type) else dict(values or {})
    data.update(kwargs)
    valid = comp.param_names()
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise params_error(unknown, valid, f"{comp.kind} {comp.name!r}")
    return comp.Params(**data)


def param_defaults(component: Any) -> str:
    """``"eps=2e-05, upsampfac=1.25"``: a component's parameters with their defaults.

    ``component`` is a :class:`Component` or a class with its interface (a scan reader).
    """
    defaults = dataclasses.asdict(component.params())
    return ", ".join(f"{k}={'null' if v is None else v}" for k, v in defaults.items())


class ParamRangeError(ConfigError):
    """A component parameter out of its range (raised by a ``Params.__post_init__``).

    The message names the parameter as a section key; ``param``, ``rule`` and ``value`` let
    a caller that received the value under another name (a deprecated flat config key)
    name it that way instead.
    """

    def __init__(self, message: str, *, param: str = "", rule: str = "",
                 value: Any = None) -> None:
        super().__init__(message)
        self.param, self.rule, self.value = param, rule, value


class Component:
    """A registered, parameterised piece: a filter, network, reconstructor or reader.

    Subclasses set the class attributes and, where the component has parameters, ``Params``
    (a frozen dataclass whose ``__post_init__`` checks the ranges of its fields).

    Attributes
    ----------
    name : str
        Registry name (``tomochunk filter --method NAME``, ``filters.methods``, ...).
    description : str
        One line for ``--help`` and ``tomochunk backends``.
    requires : str
        What to install when :meth:`is_available` is false.
    kind : str
        What the component is, for error messages ("filter", "network", ...).
    """

    name: str = ""
    description: str = ""
    requires: str = ""
    kind: str = "component"
    Params: type[Any] = NoParams

    def is_available(self) -> bool:
        """Whether the component works on this machine (its optional dependency imports)."""
        return True

    def param_names(self) -> list[str]:
        """The names of the fields of :attr:`Params`, in order."""
        return [f.name for f in dataclasses.fields(self.Params)]

    def params(self, values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Build (and so validate) this component's :attr:`Params`.

        Parameters
        ----------
        values : mapping or Params, optional
            Field values (a ``Params`` instance is returned as is).
        **kwargs
            More field values (they override ``values``).

        Raises
        ------
        ConfigError
            Unknown parameter (the one-line message names the valid ones) or a value out of
            range.
        """
        return build_params(self, values, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}: {self.description}>"


@dataclass
class _Entry(Generic[T]):
    obj: T
    is_available: Callable[[], bool]
    requires: str
    description: str


class Registry(Generic[T]):
    """Map names to components (or plain objects), with lazy entry-point discovery.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages ("reconstruction backend", ...).
    group : str, optional
        Entry-point group of third-party components (``tomochunk.filters``, ...).
    builtins : tuple of str
        Modules that register the built-in components when imported; imported on the first
        lookup, so that no other import has to happen first.
    """

    def __init__(self, kind: str, group: str | None = None,
                 builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.group = group
        self.builtins = builtins
        self._entries: dict[str, _Entry[T]] = {}
        self._loaded = False

    # -- registration ---------------------------------------------------------------------

    def register(self, name: Any, *, is_available: Callable[[], bool] | None = None,
                 requires: str = "", description: str = "") -> Any:
        """Register a :class:`Component` (returned), or return a decorator for ``name``.

        ``REG.register(component)`` registers a component under ``component.name``, as
        does ``REG.register(cls)`` for a class that carries the component interface itself
        (``name``, ``Params``, ``params()``, ... as class attributes and class methods: a
        :class:`~tomochunk.io.readers.ScanReader` subclass, registered as the class);
        ``REG.register("name", ...)(obj)`` registers any object.
        """
        if isinstance(name, Component):
            comp = name
            self._add(comp.name, _Entry(comp, comp.is_available, comp.requires,  # type: ignore[arg-type]
                                        comp.description))
            return comp
        if isinstance(name, type) and issubclass(name, Component):
            self.register(name())
            return name
        if isinstance(name, type) and isinstance(getattr(name, "name", None), str) and hasattr(
                name, "Params"):  # a class that is its own component (a ScanReader subclass)
            cls: Any = name
            self._add(cls.name, _Entry(cls, cls.is_available, cls.requires, cls.description))
            return cls

        def deco(obj: T) -> T:
            self._add(str(name), _Entry(obj, is_available or (lambda: True), requires,
                                        description or (obj.__doc__ or "")))
            return obj

        return deco

    def _add(self, name: str, entry: _Entry[T]) -> None:
        if not name:
            raise ConfigError(f"a {self.kind} needs a name to be registered")
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests, plugins that replace a component)."""
        self._entries.pop(name, None)

    # -- discovery ------------------------------------------------------------------------

    def discover(self) -> None:
        """Import the built-in modules and load the entry points not registered yet."""
        self._loaded = True
        for module in self.builtins:
            importlib.import_module(module)
        if not self.group:
            return
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue
            try:
                obj = ep.load()
                if isinstance(obj, type) and issubclass(obj, Component):
                    obj = obj()
                if isinstance(obj, Component):
                    self.register(obj)
                else:
                    self.register(ep.name)(obj)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the rest
                warnings.warn(f"{self.kind} entry point {ep.name!r} ({ep.value}) could not be "
                              f"loaded: {exc}", RuntimeWarning, stacklevel=2)

    def _ensure(self) -> None:
        if not self._loaded:
            self.discover()

    # -- lookup ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """All registered names, available or not."""
        self._ensure()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, component)`` pairs, sorted by name."""
        self._ensure()
        return [(n, self._entries[n].obj) for n in sorted(self._entries)]

    def available(self) -> dict[str, bool]:
        """Name -> whether the component can be used on this machine."""
        self._ensure()
        out = {}
        for name, entry in sorted(self._entries.items()):
            try:
                out[name] = bool(entry.is_available())
            except Exception:  # noqa: BLE001 - an availability probe must never raise
                out[name] = False
        return out

    def requires(self, name: str) -> str:
        """What ``name`` needs installed ('' when nothing)."""
        self.get_entry(name)
        return self._entries[name].requires

    def description(self, name: str) -> str:
        """The one-line description of ``name``."""
        text = self.get_entry(name).description.strip()
        return text.splitlines()[0] if text else ""

    def describe(self) -> str:
        """A one-line-per-component summary for ``--help`` texts and error messages."""
        lines = []
        for name, ok in self.available().items():
            entry = self._entries[name]
            state = "available" if ok else f"not available (needs {entry.requires or 'extra'})"
            lines.append(f"{name}: {state}")
        return "; ".join(lines)

    def get_entry(self, name: str) -> _Entry[T]:
        """The registry entry of ``name`` (no availability check); unknown names raise."""
        self._ensure()
        if name not in self._entries:
            self.discover()  # a plugin installed since the first lookup
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid names are: {', '.join(self.names())}"
            )
        return self._entries[name]

    def get(self, name: str) -> T:
        """Return the component registered as ``name``.

        Raises
        ------
        ConfigError
            If ``name`` is unknown; the message lists the valid names.
        BackendUnavailableError
            If the component is registered but its dependency is missing.
        """
        entry = self.get_entry(name)
        try:
            ok = entry.is_available()
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            raise BackendUnavailableError(
                f"{self.kind} {name!r} is not available on this machine: install "
                f"{entry.requires or 'its optional dependency'}. Available: "
                + ", ".join(n for n, a in self.available().items() if a)
            )
        return entry.obj

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
