"""Compute the report's metrics from a run directory and write the static report.

What is measured where (all documented on the page as well):

- **Central slab**: slices ``slice_z - 4 .. slice_z + 4`` (default the middle slice), in-plane
  the central ``<= 1024 x 1024`` pixels. CNR, PSNR/SSIM, the noise map and the slice
  figures use it; nothing else of the volumes is read, except a ``yz`` slice (at most 256
  slices around ``slice_z``) and the line-profile segments.
- **Reference image** for automatic choices: the truth if known, else the ML result, else
  the unfiltered slab smoothed (Gaussian sigma 2 px).
- **CNR masks**: :func:`tomochunk.metrics.auto_masks` on the reference slab (Otsu, eroded by
  2 voxels), the same masks for every method (Flenner et al. 2022, Table 1).
- **Line profile**: ``ReportConfig.profile`` or automatic: in the reference's central ``xy``
  slice, a 64 px segment across the most periodic fine structure (the 32 px segment, over a
  grid of centres and 12 directions, whose band-pass has the strongest secondary
  autocorrelation peak, among those with at least 1 % of the largest band-pass variance;
  see ``_auto_profile``). Peaks are found on the reference profile and every method is fitted at
  the same positions (Fig. 5).
- **PSD**: 17 segments parallel to the profile (1 px apart), mean windowed periodogram
  (Fig. 6), so the spectrum is taken across the same structure.
- **FRC**: split 0 vs split 1 on the central slice, Hann-apodised, half-bit threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ReportConfig, to_dict
from ..io.jsonsafe import json_safe
from ..io.store import atomic_store, check_output_path
from ..runtime.logs import get_logger
from . import figures, measure
from .collect import LABELS, RunData, collect_run
from .html import render_html
from .quality import check_reference, quality_sections

__all__ = ["make_report", "analyse"]

log = get_logger("report")

def analyse(run: RunData, config: ReportConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure everything the report shows (:mod:`tomochunk.report.measure`).

    Parameters
    ----------
    run : RunData
        The run's volumes, splits, truth and history (:func:`collect_run`).
    config : ReportConfig
        The slice, the profile and the quality options.

    Returns
    -------
    metrics : dict
        JSON-serialisable (``metrics.json``).
    data : dict
        Arrays and curves for the figures.
    """
    sl = measure.read_slab(run, config)
    px_nm = run.pixel_size_nm
    methods = list(run.volumes)
    notes: list[str] = []
    per: dict[str, dict[str, Any]] = {m: {"label": LABELS[m]} for m in methods}
    masks = measure.cnr_section(sl, per, notes)
    quality = quality_sections(run, config, sl.slabs, sl.truth, (sl.zs, sl.ys, sl.xs))
    p0, p1, prof_src = measure.profile_ends(sl, config)
    unit = "nm" if px_nm is not None else "px"
    prof = measure.profile_section(run, p0, p1, px_nm if px_nm is not None else 1.0, per, notes)
    psds = measure.psd_section(run, p0, p1, px_nm)
    diffs = measure.difference_section(sl, per)
    fn = measure.frc_noise_section(sl, px_nm, per, masks is not None)
    noise_out = fn["noise_out"]
    data = {
        "methods": methods,
        **measure.views(run, sl, p0, p1),
        "profiles": prof["profiles"],
        "reference_profile": ("truth", prof["dist"], prof["ref_vals"], prof["ref_fits"])
        if run.truth is not None else None,
        "fits": prof["fits"],
        "psds": psds,
        "frc": fn["frc_curves"],
        "noise_map": fn["noise_map"],
        "noise_per_slice": (noise_out.get("z"), noise_out.get("per_slice_std")),
        "diffs": diffs,
        "masks": None if masks is None else (masks[0][sl.zi], masks[1][sl.zi]),
        "pixel_size_nm": px_nm,
        "unit": unit,
        "history": run.history,
    }
    metrics = {
        "run_dir": str(run.run_dir),
        "pixel_size_nm": px_nm,
        "slice_z": sl.z0,
        "slab": {"z": [sl.zs.start, sl.zs.stop], "y": [sl.ys.start, sl.ys.stop],
                 "x": [sl.xs.start, sl.xs.stop]},
        "reference": sl.ref_name,
        "truth": run.truth_source,
        "methods": per,
        "profile": {
            "start_zyx": p0.tolist(), "end_zyx": p1.tolist(), "source": prof_src,
            "polarity": prof["polarity"], "distance_unit": unit,
            "peaks": {m: [f.to_dict() for f in fs] for m, fs in prof["fits"].items()},
        },
        "psd": {"unit": "1/nm" if px_nm else "cycles/px",
                "peak_frequency": {m: float(f[1:][np.argmax(p[1:])]) for m, (f, p) in
                                   psds.items()}},
        "frc": fn["frc_out"],
        "noise": noise_out,
        "training": _training_summary(run.history),
        **quality,
        "skipped": list(run.notes) + notes,
    }
    return json_safe(metrics), data


def _training_summary(history: dict[str, Any] | None) -> dict[str, Any]:
    if not history or not history.get("epochs"):
        return {}
    ep = history["epochs"]
    return {
        "epochs": len(ep),
        "best_epoch": history.get("best_epoch"),
        "stopped": history.get("stopped"),
        "final_train_loss": ep[-1].get("train_loss"),
        "min_val_loss": min((e["val_loss"] for e in ep if e.get("val_loss") is not None),
                            default=None),
        "seconds": sum(float(e.get("seconds") or 0) for e in ep),
    }


def make_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    config: ReportConfig | None = None,
    overwrite: bool = False,
    storage_options: Any = None,
) -> Any:
    """Write the static comparison report of a run directory.

    The folder holds ``index.html`` (relative links only, no JavaScript, readable from disk),
    PNG figures and ``metrics.json``; it is written under a temporary name and renamed when
    complete. See the module docstring for what is measured where. ``run_dir`` and ``out``
    may be fsspec URLs (read and written with ``storage_options``; ``index.html`` is
    uploaded last).

    Parameters
    ----------
    run_dir : path-like
        A run directory (``recon.zarr`` required; other stores optional).
    out : path-like, optional
        Report folder (default ``run_dir/report``).
    config : ReportConfig, optional
        ``truth`` (.npy or .zarr), ``slice_z``, ``profile``.
    overwrite : bool
        Replace an existing report folder.

    Returns
    -------
    pathlib.Path
        The report folder.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is false (checked first).
    InputError
        On a missing run directory or reconstruction, or a truth of another shape.
    """
    config = config or ReportConfig()
    from ..io.urls import is_url, location

    root: Any = location(run_dir, storage_options)
    out = location(out, storage_options) if out is not None else root / "report"
    out = check_output_path(str(out) if is_url(str(out)) else out, overwrite, storage_options)
    run = collect_run(root, truth=location(config.truth, storage_options)
                      if config.truth else None)
    if config.truth_free_reference:
        check_reference(config.truth_free_reference, run.shape)
    metrics, data = analyse(run, config)
    metrics["report_config"] = to_dict(config)
    with atomic_store(out, overwrite=overwrite, storage_options=storage_options) as tmp:
        tmp.mkdir(parents=True)
        figs = figures.write_all(data, tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (tmp / "index.html").write_text(render_html(metrics, figs, run), encoding="utf-8")
    log.info("report written to %s", location(out) / "index.html")
    return out
