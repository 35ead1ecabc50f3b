"""The metadata every model file carries, and its check."""

from __future__ import annotations

from typing import Any

from ..errors import ModelError

__all__ = ["FORMAT_VERSION", "REQUIRED_KEYS", "validate_metadata"]

#: Version of the model file layout.
FORMAT_VERSION = 1


#: Metadata keys every model file must carry, with the type each must have.
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "network": str,
    "network_params": dict,
    "in_channels": int,
    "context": int,
    "n_splits": int,
    "strategy": str,
    "angles_per_split": (int, type(None)),
    "filter": (str, type(None)),
    "pixel_size_um": (int, float, type(None)),
    "noise_sigma": (int, float),
    "norm": dict,
    "receptive_radius": int,
    "train_config": dict,
    "recon_attrs": dict,
    "tomochunk_version": str,
}


def validate_metadata(meta: Any, where: str = "model") -> dict[str, Any]:
    """Check a metadata mapping; raise :class:`ModelError` naming every missing/invalid key."""
    if not isinstance(meta, dict):
        raise ModelError(f"{where}: metadata is not a mapping")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelError(
            f"{where}: metadata lacks the key(s) {', '.join(missing)}; it was not written by "
            "this version of tomochunk train: retrain the model"
        )
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelError(
            f"{where}: model format_version {meta['format_version']!r} is unknown (this "
            f"tomochunk reads version {FORMAT_VERSION}); use a matching tomochunk or retrain"
        )
    wrong = [
        f"{k} ({type(meta[k]).__name__})"
        for k, tp in REQUIRED_KEYS.items()
        if not isinstance(meta[k], tp) or (tp is int and isinstance(meta[k], bool))
    ]
    norm = meta["norm"]
    for part in ("input", "output"):
        ok = isinstance(norm, dict) and isinstance(norm.get(part), dict)
        ok = ok and all(isinstance(norm[part].get(s), int | float) for s in ("mean", "std"))
        if not ok or not norm[part]["std"] > 0:
            wrong.append(f"norm.{part} (needs mean and std > 0)")
    if meta["in_channels"] != meta["context"] or meta["context"] % 2 == 0:
        wrong.append("in_channels/context (must be equal and odd)")
    if meta["n_splits"] < 2:
        wrong.append("n_splits (must be >= 2)")
    if wrong:
        raise ModelError(f"{where}: invalid metadata value(s): {', '.join(wrong)}; retrain")
    return meta
