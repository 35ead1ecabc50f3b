"""Registers the built-in filters in :data:`~tomochunk.filters.registry.FILTERS`."""

from __future__ import annotations

from .iternlm import ITERNLM
from .median import MEDIAN
from .nlm import NLM
from .registry import FILTERS

for _component in (MEDIAN, NLM, ITERNLM):
    if _component.name not in FILTERS:
        FILTERS.register(_component)
