"""Report sections on segmentation accuracy (with a truth) and truth-free quality (opt-in).

- :func:`segmentation_section`: every method's central slab segmented by multi-Otsu into
  ``n_phases`` phases, scored against the same segmentation of the truth (the truth's own
  phases: a voxel-averaged truth is segmented into its attenuation levels): Dice and IoU per
  phase, their means, and the porosity error (phase 0, the darkest, as the pores). With
  ``thresholds`` (``ReportConfig.segmentation_thresholds``, in the truth's units) the truth
  is segmented at them, and each method after its least-squares affine fit to the truth:
  multi-Otsu favours phases of comparable size and can put a threshold inside a large phase
  when another holds a few % of the voxels.
- :func:`truth_free_section`: every method scored by
  :func:`tomochunk.metrics.truth_free_mse` against a held-out reference store (see
  ``ReportConfig.truth_free_reference``): its ``split`` holds two reconstructions of angles
  that NO method used (e.g. the odd angles, splits 1 and 3 of a K=4 reconstruction, with the
  run made from splits 0 and 2: :func:`tomochunk.metrics.truthfree.holdout_datasets`).
- :func:`sections_html`: both as HTML tables.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics.quality import affine_fit
from ..metrics.segmentation import otsu_labels, score_segmentation, threshold_labels
from ..metrics.truthfree import truth_free_mse

__all__ = ["segmentation_section", "truth_free_section", "sections_html", "quality_sections",
           "check_reference"]


def segmentation_section(slabs: dict[str, np.ndarray], truth: np.ndarray,
                         n_phases: int = 3, thresholds: list[float] | None = None
                         ) -> dict[str, Any]:
    """Dice/IoU/porosity error of every method's phases against the truth's.

    Multi-Otsu of the truth and of each method, or, with ``thresholds`` (grey values in the
    truth's units), the truth and each affinely fitted method segmented at them.
    """
    try:
        if thresholds is None:
            true_labels = otsu_labels(truth, n_phases)
        else:
            true_labels = threshold_labels(truth, thresholds)
            found = int(true_labels.max()) + 1
            if found != n_phases:
                raise InputError(f"the truth holds {found} of the {n_phases} phases at "
                                 f"thresholds {list(thresholds)}; set "
                                 "report.segmentation_thresholds between the truth's phases")
    except InputError as exc:
        return {"skipped": f"segmentation not scored: {exc}"}
    out: dict[str, Any] = {"n_phases": n_phases,
                           "rule": "multi-otsu" if thresholds is None else "thresholds",
                           "truth_porosity": float(np.mean(true_labels == 0)), "methods": {}}
    if thresholds is not None:
        out["thresholds"] = [float(t) for t in thresholds]
    for m, slab in slabs.items():
        try:
            if thresholds is None:
                out["methods"][m] = score_segmentation(slab, true_labels).to_dict()
            else:
                a, b = affine_fit(slab, truth)
                fitted = a * np.asarray(slab, np.float64) + b
                out["methods"][m] = score_segmentation(fitted, true_labels,
                                                       thresholds=thresholds).to_dict()
        except InputError as exc:
            out["methods"][m] = {"skipped": str(exc)}
    return out


def truth_free_section(slabs: dict[str, np.ndarray], ref_a: np.ndarray, ref_b: np.ndarray
                       ) -> dict[str, Any]:
    """Truth-free MSE of every method against the held-out reference halves (same slab)."""
    return {"methods": {m: truth_free_mse(s, ref_a, ref_b).to_dict() for m, s in slabs.items()}}


def quality_sections(run: Any, config: Any, slabs: dict[str, np.ndarray],
                     truth: np.ndarray | None, region: tuple[slice, slice, slice]
                     ) -> dict[str, Any]:
    """The ``segmentation`` (truth given) and ``truth_free`` (reference given) metrics."""
    out: dict[str, Any] = {}
    if truth is not None:
        out["segmentation"] = segmentation_section(
            slabs, truth, config.segmentation_phases, config.segmentation_thresholds)
    ref = getattr(config, "truth_free_reference", None)
    if ref:
        split = check_reference(ref, run.shape)
        zs, ys, xs = region
        a = np.asarray(split[0, zs, ys, xs].values, np.float64)
        b = np.asarray(split[1, zs, ys, xs].values, np.float64)
        out["truth_free"] = {"reference": str(ref), **truth_free_section(slabs, a, b)}
    return out


def check_reference(ref: Any, shape: tuple[int, ...]) -> Any:
    """Open the truth-free reference store's ``split``; raise unless 2 halves of ``shape``."""
    from ..io.store import open_store

    ds = open_store(ref, required=("split",), what="truth-free reference store")
    split = ds["split"]
    if split.shape[0] != 2 or tuple(split.shape[1:]) != tuple(shape):
        raise InputError(
            f"the truth-free reference holds split{tuple(split.shape)} but the run's volumes "
            f"are {tuple(shape)}; it must hold 2 held-out halves on the same grid (see "
            "tomochunk.metrics.truthfree.holdout_datasets)")
    return split


def _num(v: Any, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def sections_html(metrics: dict[str, Any], labels: dict[str, str]) -> str:
    """HTML of the segmentation and truth-free tables (empty when neither was computed)."""
    parts = []
    seg = metrics.get("segmentation")
    if seg and seg.get("methods"):
        rows = "".join(
            f"<tr><td>{escape(labels.get(m, m))}</td>"
            f"<td>{_num(s.get('mean_dice'), '.3f')}</td><td>{_num(s.get('mean_iou'), '.3f')}</td>"
            f"<td>{' / '.join(_num(d, '.3f') for d in s.get('dice', []))}</td>"
            f"<td>{_num(s.get('porosity_error'), '+.4f')}</td></tr>"
            for m, s in seg["methods"].items())
        if seg.get("rule") == "thresholds":
            how = (f"The truth, and each method after its least-squares affine fit to the "
                   f"truth, segmented into {seg['n_phases']} phases at "
                   f"{', '.join(_num(t, '.4g') for t in seg['thresholds'])} (central slab)")
        else:
            how = (f"Multi-Otsu into {seg['n_phases']} phases of each method and of the "
                   "truth (central slab)")
        parts.append(
            f"<h2>Segmentation against the truth</h2><p>{how}; phase 0 (darkest) is the "
            f"pore phase, true porosity {_num(seg['truth_porosity'], '.4f')}.</p><table>"
            "<tr><th>method</th><th>mean Dice</th><th>mean IoU</th><th>Dice per phase</th>"
            f"<th>porosity error</th></tr>{rows}</table>")
    tf = metrics.get("truth_free")
    if tf and tf.get("methods"):
        rows = "".join(
            f"<tr><td>{escape(labels.get(m, m))}</td><td>{_num(s['rmse'], '.4g')}</td>"
            f"<td>{_num(s['mse'], '.4g')}</td><td>{_num(s['mse_to_reference'], '.4g')}</td>"
            f"<td>{_num(s['noise_var'], '.4g')}</td></tr>"
            for m, s in tf["methods"].items())
        parts.append(
            "<h2>Truth-free quality (held-out reference)</h2><p>MSE against the signal "
            "estimated as MSE(method, (r_a + r_b)/2) − var(r_a − r_b)/4 with r_a, r_b "
            "reconstructed from projections no method used; lower is better.</p><table>"
            "<tr><th>method</th><th>est. RMSE</th><th>est. MSE</th><th>MSE to reference</th>"
            f"<th>reference noise var</th></tr>{rows}</table>")
    return "\n".join(parts)
