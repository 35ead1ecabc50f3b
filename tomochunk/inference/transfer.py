"""Does a model fit the scan it is applied to? K, context, angles, filter, pixel size, noise.

Applying a model to another scan (:func:`check_transfer`) compares its metadata with the
target: K and context (errors), angles per split, reconstruction filter, pixel size and the
noise level of one split (warnings, or :class:`~tomochunk.errors.ModelError` with
``strict``). A store with ``K_store = m * K_model`` splits is merged to ``K_model`` splits
(:func:`tomochunk.n2i.merge_splits`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..config import DenoiseConfig
from ..errors import InputError, ModelError
from ..n2i import estimate_split_noise, merge_splits
from ..runtime.logs import get_logger

__all__ = ["PIXEL_SIZE_RTOL", "TransferCheck", "check_transfer", "describe"]

log = get_logger("infer")

PIXEL_SIZE_RTOL = 1e-3


def describe(mismatch: tuple[Any, ...]) -> str:
    name, model_value, scan_value, *note = mismatch
    text = f"{name}: model {model_value!r}, scan {scan_value!r}"
    return text + (f" ({note[0]})" if note else "")


@dataclass
class TransferCheck:
    """Outcome of comparing a model's metadata with a target reconstruction.

    Attributes
    ----------
    k_store, k_model : int
        Splits in the store and in the model (``k_store`` is a multiple; merged if larger).
    mismatches : list of (field, model value, scan value[, note])
        Fields that differ beyond tolerance.
    noise_scan : float
        Noise of one (merged) split of the target.
    """

    k_store: int
    k_model: int
    noise_scan: float
    mismatches: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return self.k_store != self.k_model

    def message(self) -> str:
        parts = [describe(m) for m in self.mismatches]
        return (
            "the model was trained on data that differs from this scan ("
            + "; ".join(parts)
            + "); the denoised volume may contain invented or missing structure. Retrain on "
            "this scan, or reconstruct it like the training scan"
        )


def _scan_pixel_size(ds: xr.Dataset) -> float | None:
    ps = ds.attrs.get("pixel_size_um")
    return None if ps is None else float(ps)


def check_transfer(ds: xr.Dataset, meta: Mapping[str, Any], config: DenoiseConfig,
                   where: str = "reconstruction") -> TransferCheck:
    """Check that a model with metadata ``meta`` fits the reconstruction ``ds``.

    Raises
    ------
    InputError
        ``ds`` has no ``split`` volume or fewer slices than the model's context.
    ModelError
        K of the store is not a multiple of the model's; or (``config.strict``) any
        mismatch of angles per split, filter, pixel size or noise level.

    Warns
    -----
    UserWarning
        Each mismatching field with both values, unless strict.
    """
    if "split" not in ds.variables:
        raise InputError(
            f"{where} has no 'split' variable (the K split reconstructions that Noise2Inverse "
            "denoises); re-run 'tomochunk recon' with --splits 2 or more"
        )
    split = ds["split"]
    if split.ndim != 4:
        raise InputError(f"{where}: 'split' must be (split, z, y, x), got dims {split.dims}")
    k_store, n_z = int(split.shape[0]), int(split.shape[1])
    k_model, context = int(meta["n_splits"]), int(meta["context"])
    if k_store % k_model:
        raise ModelError(
            f"the model was trained on K={k_model} splits but {where} holds K={k_store}; "
            f"reconstruct the scan with --splits {k_model} (or a multiple of {k_model}, which "
            "is merged), or retrain the model on this store"
        )
    if n_z < context:
        raise InputError(
            f"{where} has {n_z} slices, fewer than the model's context of {context} slices; "
            "reconstruct more detector rows or use a model trained with a smaller --context"
        )
    factor = k_store // k_model
    attrs = ds.attrs
    mismatches: list[tuple[Any, ...]] = []
    aps = attrs.get("angles_per_split")
    if aps is not None and meta.get("angles_per_split") is not None:
        # recon stores one count per split; compare the mean count per (merged) split
        aps_eff = int(round(float(np.mean(aps)))) * factor
        if aps_eff != int(meta["angles_per_split"]):
            mismatches.append(("angles_per_split", int(meta["angles_per_split"]), aps_eff))
    if attrs.get("filter") is not None and meta.get("filter") is not None:
        if str(attrs["filter"]) != str(meta["filter"]):
            mismatches.append(("filter", meta["filter"], attrs["filter"]))
    ps_scan, ps_model = _scan_pixel_size(ds), meta.get("pixel_size_um")
    if ps_scan is not None and ps_model is not None:
        if not math.isclose(ps_scan, float(ps_model), rel_tol=PIXEL_SIZE_RTOL):
            mismatches.append(("pixel_size_um", float(ps_model), ps_scan))
    noise = estimate_split_noise(merge_splits(split.data, k_model))
    noise_model = float(meta.get("noise_sigma") or 0.0)
    if noise_model > 0:
        rel = abs(noise - noise_model) / noise_model
        if rel > config.noise_tolerance:
            mismatches.append(("noise_sigma", float(f"{noise_model:.4g}"), float(f"{noise:.4g}"),
                               f"relative difference {rel:.2f} > tolerance "
                               f"{config.noise_tolerance}"))
    check = TransferCheck(k_store, k_model, noise, mismatches)
    if mismatches:
        msg = check.message()
        if config.strict:
            raise ModelError(msg + " (strict mode: remove --strict to only warn)")
        log.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    if check.merged:
        log.info("merging %d splits into the model's %d (splits j, j+%d, ... averaged)",
                 k_store, k_model, k_model)
    return check
