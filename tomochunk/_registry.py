"""A small named registry for pluggable backends (reconstructors, networks, filters).

Modelled on xarray's engine registry: backends register by name with a decorator, and
lookups of unknown names fail with an error that lists the valid names. A backend may
declare an availability check so that optional dependencies (astra, tomopy, ...) are only
imported when used, and :meth:`Registry.available` says which ones work on this machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import BackendUnavailableError, ConfigError

T = TypeVar("T")

__all__ = ["Registry"]


@dataclass
class _Entry(Generic[T]):
    obj: T
    is_available: Callable[[], bool]
    requires: str
    description: str


@dataclass
class Registry(Generic[T]):
    """Map names to backend objects.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages ("reconstruction backend", ...).
    """

    kind: str
    _entries: dict[str, _Entry[T]] = field(default_factory=dict)

    def register(
        self,
        name: str,
        *,
        is_available: Callable[[], bool] | None = None,
        requires: str = "",
        description: str = "",
    ) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = _Entry(
                obj, is_available or (lambda: True), requires, description or (obj.__doc__ or "")
            )
            return obj

        return deco

    def names(self) -> list[str]:
        """All registered names, available or not."""
        return sorted(self._entries)

    def available(self) -> dict[str, bool]:
        """Name -> whether the backend can be used on this machine."""
        out = {}
        for name, entry in sorted(self._entries.items()):
            try:
                out[name] = bool(entry.is_available())
            except Exception:  # noqa: BLE001 - an availability probe must never raise
                out[name] = False
        return out

    def describe(self) -> str:
        """A one-line-per-backend summary for ``--help`` texts and error messages."""
        lines = []
        for name, ok in self.available().items():
            entry = self._entries[name]
            state = "available" if ok else f"not available (needs {entry.requires or 'extra'})"
            lines.append(f"{name}: {state}")
        return "; ".join(lines)

    def get(self, name: str) -> T:
        """Return the backend registered as ``name``.

        Raises
        ------
        ConfigError
            If ``name`` is unknown; the message lists the valid names.
        BackendUnavailableError
            If the backend is registered but its dependency is missing.
        """
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid names are: {', '.join(self.names())}"
            )
        entry = self._entries[name]
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
        return name in self._entries
