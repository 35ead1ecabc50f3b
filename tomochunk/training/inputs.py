"""What training reads: the reconstruction checked (metadata only), its slab, the run's hash."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..config import TrainConfig, checkpoint_fields, config_hash
from ..errors import InputError
from ..io.jsonsafe import json_safe
from ..io.store import open_dataset
from .dataset import SlabLayout
from .validation import plan_layout, train_width

__all__ = ["RECON_ATTRS", "ReconInfo", "inspect_recon", "open_recon",
           "read_slab", "training_hash"]

#: Reconstruction attributes copied into the model metadata.
RECON_ATTRS = ("center", "filter", "algorithm", "backend", "n_splits", "angles_per_split",
               "stripe", "pixel_size_um", "tomochunk_config_hash")

_DEFAULT_PATCH = TrainConfig().patch_size


@dataclass(frozen=True)
class ReconInfo:
    """What training needs to know about the reconstruction before reading any voxel."""

    n_splits: int
    n_z: int
    height: int
    width: int
    layout: SlabLayout
    patch: int
    attrs: dict[str, Any]
    pixel_size_um: float | None


def _pixel_size(ds: xr.Dataset) -> float | None:
    ps = ds.attrs.get("pixel_size_um")
    if ps is not None:
        return float(ps)
    x = ds.coords.get("x")
    if x is not None and x.size > 1 and str(x.attrs.get("units", "")) in ("um", "µm", "micrometre",
                                                                         "micrometer"):
        return float(abs(x.values[1] - x.values[0]))
    return None


def inspect_recon(ds: xr.Dataset, cfg: TrainConfig, where: str = "reconstruction") -> ReconInfo:
    """Check that ``ds`` can be trained on with ``cfg``; reads metadata only.

    Raises
    ------
    InputError
        No ``split`` variable, K < 2, too few slices for the context and validation slab,
        or a patch larger than the slice (unless the patch size is the default, which is
        then clamped to the slice).
    """
    if "split" not in ds.variables:
        raise InputError(
            f"{where} has no 'split' variable (the K split reconstructions); re-run "
            "'tomochunk recon' with --splits 2 or more"
        )
    split = ds["split"]
    if split.dims != ("split", "z", "y", "x"):
        raise InputError(f"{where}: 'split' must have dims (split, z, y, x), got {split.dims}")
    k, n_z, h, w = (int(s) for s in split.shape)
    if k < 2:
        raise InputError(
            f"{where} holds {k} split reconstruction(s); Noise2Inverse needs K >= 2: re-run "
            "'tomochunk recon' with --splits 2 or more"
        )
    layout = plan_layout(n_z, h, w, cfg)  # z slab, or held-out columns of few-slice scans
    side = min(h, train_width(layout, w))
    patch = cfg.patch_size
    if patch > side:
        if patch != _DEFAULT_PATCH:
            raise InputError(
                f"patch size {patch} is larger than the {h}x{w} slices; use --patch-size "
                f"{side} or less"
            )
        patch = side
    attrs = {a: json_safe(ds.attrs[a], finite=False) for a in RECON_ATTRS if a in ds.attrs}
    return ReconInfo(k, n_z, h, w, layout, patch, attrs, _pixel_size(ds))


def training_hash(cfg: TrainConfig, info: ReconInfo) -> tuple[str, dict[str, Any]]:
    """Hash (and the fields behind it) of what makes two training runs the same."""
    fields_ = checkpoint_fields(cfg)
    fields_["data_shape"] = [info.n_splits, info.n_z, info.height, info.width]
    return config_hash(fields_), fields_


def open_recon(recon: Any, storage_options: Any = None) -> tuple[xr.Dataset, Path | str | None]:
    """The recon dataset and its location: a Path, an fsspec URL (str) or None (in memory)."""
    if isinstance(recon, xr.Dataset):
        return recon, None
    if isinstance(recon, str | os.PathLike):
        from ..io.store import open_store
        from ..io.urls import is_url

        path: Path | str = os.fspath(recon) if is_url(recon) else Path(recon)
        return open_store(path, what="recon store", storage_options=storage_options), path
    raise InputError(
        f"recon must be the path of a recon.zarr store or an xarray.Dataset, got "
        f"{type(recon).__name__}"
    )


def read_slab(recon: xr.Dataset | Path | str, layout: SlabLayout,
               storage_options: Any = None) -> np.ndarray:
    """Read the split volumes of ``layout.read`` as float32 (K, R, H, W)."""
    lo, hi = layout.read
    if isinstance(recon, Path | str):
        # no Dask inside the task: read the Zarr arrays directly
        ds = open_dataset(recon, storage_options=storage_options)
        return np.asarray(ds["split"][:, lo:hi].values, dtype=np.float32)
    return np.asarray(recon["split"].isel(z=slice(lo, hi)).values, dtype=np.float32)
