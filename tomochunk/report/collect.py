"""Read a run directory lazily: the volumes of every method, the halves, truth, history, timings.

Run directory layout (contract, ``docs/architecture.md``)::

    recon.zarr     full(z,y,x), split(split,z,y,x)      (required)
    denoised.zarr  denoised(z,y,x)                      -> method "ml"
    median.zarr    median(z,y,x)   nlm.zarr  nlm(z,y,x)   iternlm.zarr  iternlm(z,y,x)
    truth.zarr     truth(z,y,x)    (synthetic runs; or ReportConfig.truth: .npy or .zarr)
    model/         metadata.json, history.json
    run.json       {"stages": {name: {"seconds", "summary", ...}}, ...}   config.yaml

Every optional part may be absent or incomplete: it is skipped and a note says why. Nothing
is loaded here; the report reads only the slices and slabs it needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import yaml

from ..errors import IncompleteStoreError, InputError
from ..io.store import is_complete, open_store, read_attrs
from ..io.urls import location

__all__ = ["METHODS", "LABELS", "RunData", "collect_run", "load_truth"]

#: (method key, store name, variable) in display order; "unfiltered" is required.
METHODS: tuple[tuple[str, str, str], ...] = (
    ("unfiltered", "recon.zarr", "full"),
    ("median", "median.zarr", "median"),
    ("nlm", "nlm.zarr", "nlm"),
    ("iternlm", "iternlm.zarr", "iternlm"),
    ("ml", "denoised.zarr", "denoised"),
)

#: Human-readable names of the methods.
LABELS: dict[str, str] = {
    "unfiltered": "Unfiltered",
    "median": "Median 3D",
    "nlm": "NLM",
    "iternlm": "Iterative NLM",
    "ml": "ML (Noise2Inverse)",
    "truth": "Ground truth",
}


@dataclass
class RunData:
    """Lazy view of a run directory.

    Attributes
    ----------
    run_dir : Path
    volumes : dict of str to dask.array.Array
        ``(z, y, x)`` volume of every available method, in :data:`METHODS` order.
    splits : dask.array.Array or None
        ``(split, z, y, x)`` half reconstructions.
    truth : dask.array.Array or None
        Ground truth of the volume's shape.
    pixel_size_nm : float or None
    recon_attrs : dict
    history, model_meta, run_record, run_config : dict or None
    notes : list of str
        What was skipped and why.
    """

    run_dir: Path
    volumes: dict[str, da.Array]
    splits: da.Array | None = None
    truth: da.Array | None = None
    truth_source: str | None = None
    pixel_size_nm: float | None = None
    recon_attrs: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] | None = None
    model_meta: dict[str, Any] | None = None
    run_record: dict[str, Any] | None = None
    run_config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape ``(z, y, x)`` of the reconstruction."""
        return tuple(int(s) for s in self.volumes["unfiltered"].shape)  # type: ignore[return-value]


def _read_json(path: Path, notes: list[str], what: str) -> dict[str, Any] | None:
    if not path.exists():
        notes.append(f"{what} ({path.name}) is absent: not shown")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        notes.append(f"{what} ({path}) could not be read ({exc}): not shown")
        return None
    return data if isinstance(data, dict) else None


def _pixel_size_nm(ds: Any, run_dir: Path) -> float | None:
    for dim in ("x", "y"):
        units = str(ds.coords[dim].attrs.get("units", "")) if dim in ds.coords else ""
        if units in ("pixel", "pixels", "px"):
            continue  # pixel coordinates: the pixel size is unknown, not 1 µm
        if ds.sizes.get(dim, 0) > 1:
            c = np.asarray(ds.coords[dim].values, dtype=float)
            step = float(np.median(np.diff(c)))
            if np.isfinite(step) and step > 0:
                return step * 1000.0  # coords are in micrometres
    for source in (ds.attrs, _scan_attrs(run_dir)):
        v = source.get("pixel_size_um")
        if isinstance(v, int | float) and v > 0:
            return float(v) * 1000.0
    return None


def _asked_filters(run_dir: Path) -> set[str]:
    """The baseline filters the run asked for (``run.json``); every one when not a run."""
    try:
        cfg = json.loads((run_dir / "run.json").read_text())["config"]
        return set(cfg["filters"]["methods"])
    except (OSError, ValueError, KeyError, TypeError):
        return {key for key, _, _ in METHODS}


def _scan_attrs(run_dir: Path) -> dict[str, Any]:
    try:
        return read_attrs(run_dir / "scan.zarr")
    except Exception:  # noqa: BLE001 - the scan store is optional here
        return {}


def load_truth(path: str | Path, shape: tuple[int, ...]) -> da.Array:
    """Open a ground truth (``.npy`` memory-mapped, or a Zarr store) lazily; check its shape.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or not of the reconstruction's ``shape``.
    """
    p = location(path)
    if not p.exists():
        raise InputError(f"truth {p} does not exist; pass an existing .npy file or .zarr store")
    arr: da.Array
    if p.suffix == ".npy":
        try:
            mm = np.load(p, mmap_mode="r")
            arr = da.from_array(mm, chunks=(8,) + (-1,) * (mm.ndim - 1) if mm.ndim else -1)
        except (OSError, ValueError) as exc:
            raise InputError(f"truth {p} is not a readable .npy file ({exc})") from exc
    else:
        ds = open_store(p, require_complete=False, what="truth store")
        names = ["truth"] if "truth" in ds.data_vars else list(ds.data_vars)
        if len(names) != 1:
            raise InputError(
                f"truth store {p} holds {names}; it needs a variable named 'truth' or exactly one"
            )
        arr = ds[names[0]].data
    if tuple(arr.shape) != tuple(shape):
        raise InputError(
            f"truth {p} has shape {tuple(arr.shape)} but the reconstruction has shape "
            f"{tuple(shape)}; pass the ground truth of this scan (same z, y, x)"
        )
    return arr


def _method_volumes(run_dir: Any, shape: tuple[int, ...], notes: list[str]) -> dict[str, Any]:
    """The filtered and denoised volumes present in ``run_dir`` (absent ones noted)."""
    volumes: dict[str, Any] = {}
    for key, store_name, var in METHODS[1:]:
        path = run_dir / store_name
        if not path.exists():
            if key == "ml" or key in _asked_filters(run_dir):  # silent if never asked for
                notes.append(f"{LABELS[key]}: {store_name} is absent, method skipped")
            continue
        try:
            ds = open_store(path, required=(var,), what=f"{key} store")
        except (InputError, IncompleteStoreError) as exc:
            notes.append(f"{LABELS[key]}: skipped ({exc})")
            continue
        arr = ds[var].data
        if tuple(arr.shape) != shape:
            raise InputError(
                f"{path} holds {var} of shape {tuple(arr.shape)} but recon.zarr full has shape "
                f"{shape}; re-run that stage on this reconstruction with --overwrite"
            )
        volumes[key] = arr
    return volumes


def _run_config(run_dir: Any, run_record: Any, notes: list[str]) -> dict[str, Any] | None:
    """The run's configuration: from ``run.json``, else ``config.yaml``, else None."""
    run_config = None
    if isinstance(run_record, dict) and isinstance(run_record.get("config"), dict):
        run_config = run_record["config"]
    elif (run_dir / "config.yaml").exists():
        try:
            loaded = yaml.safe_load((run_dir / "config.yaml").read_text())
            run_config = loaded if isinstance(loaded, dict) else None
        except yaml.YAMLError:
            notes.append("config.yaml could not be parsed: parameters not shown")
    return run_config


def collect_run(run_dir: str | Path, truth: str | Path | None = None) -> RunData:
    """Open everything the report needs from ``run_dir`` lazily.

    Parameters
    ----------
    run_dir : path-like
    truth : path-like, optional
        Ground truth (.npy or .zarr); default ``run_dir/truth.zarr`` when it exists.

    Raises
    ------
    InputError
        If ``run_dir`` or its ``recon.zarr`` is missing, or a volume's shape differs from the
        reconstruction's.
    IncompleteStoreError
        If ``recon.zarr`` is incomplete.
    """
    root: Any = location(run_dir)  # a Path, or a RemotePath for a run in a bucket
    if not root.is_dir():
        raise InputError(f"run directory {root} does not exist; pass the --out of a run")
    recon_path = root / "recon.zarr"
    if not recon_path.exists():
        raise InputError(
            f"run directory {root} has no recon.zarr; run 'tomochunk recon' (or "
            "'tomochunk run') into it first"
        )
    recon = open_store(recon_path, required=("full",), what="recon store")
    notes: list[str] = []
    full = recon["full"]
    if full.dims != ("z", "y", "x"):
        raise InputError(f"recon store {recon_path} has full{full.dims}; expected (z, y, x)")
    shape = tuple(int(s) for s in full.shape)
    volumes = {"unfiltered": full.data, **_method_volumes(root, shape, notes)}
    splits = None
    # "split" is both a dimension and the variable's name, so xarray may list it as a coordinate
    if "split" in recon.variables and recon["split"].ndim == 4 and recon["split"].shape[0] >= 2:
        splits = recon["split"].data
        if tuple(splits.shape[1:]) != shape:
            notes.append("split volumes do not match full: FRC and noise maps skipped")
            splits = None
    else:
        notes.append("recon.zarr has fewer than two split volumes: FRC and noise maps skipped")
    truth_arr, truth_source = None, None
    if truth is not None:
        truth_arr, truth_source = load_truth(truth, shape), str(truth)
    elif (root / "truth.zarr").exists() and is_complete(root / "truth.zarr"):
        truth_arr, truth_source = load_truth(root / "truth.zarr", shape), "truth.zarr"
    else:
        notes.append("no ground truth (synthetic runs only, or --truth): PSNR/SSIM not computed")
    model_dir = root / "model"
    history = _read_json(model_dir / "history.json", notes, "training history")
    model_meta = _read_json(model_dir / "metadata.json", [], "model metadata")
    run_record = _read_json(root / "run.json", notes, "run record with stage timings")
    run_config = _run_config(root, run_record, notes)
    return RunData(
        run_dir=root,
        volumes=volumes,
        splits=splits,
        truth=truth_arr,
        truth_source=truth_source,
        pixel_size_nm=_pixel_size_nm(recon, root),
        recon_attrs={k: v for k, v in recon.attrs.items() if not k.startswith("tomochunk_")},
        history=history,
        model_meta=model_meta,
        run_record=run_record,
        run_config=run_config,
        notes=notes,
    )
