"""Plain JSON values from numpy-laden records (metadata, reports, provenance)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["json_safe"]


def json_safe(v: Any, *, finite: bool = True) -> Any:
    """``v`` with numpy scalars and arrays, tuples and dict keys made plain JSON.

    Parameters
    ----------
    v : any
        A value, dict, list, tuple or array (nested).
    finite : bool
        Replace non-finite floats: NaN by None, infinities by ``"inf"`` / ``"-inf"`` (strict
        JSON has no NaN). False keeps them (Python's :mod:`json` writes ``NaN``).

    Returns
    -------
    any
        dicts (string keys), lists, str, int, float, bool or None; any other object becomes
        its ``str``.
    """
    if isinstance(v, dict):
        return {str(k): json_safe(x, finite=finite) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x, finite=finite) for x in v]
    if isinstance(v, np.ndarray):
        return json_safe(v.tolist(), finite=finite)
    if isinstance(v, np.generic):
        v = v.item()
    if finite and isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v is None or isinstance(v, str | int | float | bool):
        return v
    return str(v)
