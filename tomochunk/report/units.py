"""Readable lengths for the report: nanometres below 1 µm, micrometres up to 1 mm."""

from __future__ import annotations

__all__ = ["format_length_nm"]


def format_length_nm(nm: float | None) -> str:
    """``6090.0`` -> ``"6.09 µm"``, ``350.0`` -> ``"350 nm"``; None -> ``"unknown"``."""
    if nm is None:
        return "unknown"
    if abs(nm) >= 1e6:
        return f"{nm / 1e6:.3g} mm"
    if abs(nm) >= 1e3:
        return f"{nm / 1e3:.3g} µm"
    return f"{nm:.3g} nm"
