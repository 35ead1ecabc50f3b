"""The filter registry: baseline filters register by name (``tomochunk filter --method``)."""

from __future__ import annotations

from .._registry import Registry
from .iternlm import iternlm
from .median import median
from .nlm import nlm

__all__ = ["FILTERS"]

FILTERS: Registry = Registry("filter")
FILTERS.register("median", description="3D median, ball/cube footprint (scipy)")(median)
FILTERS.register("nlm", description="3D non-local means, per-chunk sigma (scikit-image)")(nlm)
FILTERS.register("iternlm", description="iterative z-adaptive NLM (Bruns et al. 2017)")(iternlm)
