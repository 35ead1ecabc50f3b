"""The filter registry: ``tomochunk filter --method``, ``filters.methods``, ``da.tomo.NAME``.

Built-in filters (median, nlm, iternlm) register when this registry is first looked up;
other packages register :class:`~tomochunk.filters.component.Filter` components through the
``tomochunk.filters`` entry-point group or with ``FILTERS.register(component)``.
"""

from __future__ import annotations

from ..registry import Registry
from .component import Filter

__all__ = ["FILTERS"]

FILTERS: Registry[Filter] = Registry("filter", group="tomochunk.filters",
                                     builtins=("tomochunk.filters.builtin",))
