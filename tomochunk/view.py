"""``tomochunk view RUN_DIR``: a run's volumes in napari, as linked multiscale layers.

The full reconstruction, the denoised volume and every baseline (``median``, ``nlm``,
``iternlm``) are read through their NGFF pyramids (:mod:`tomochunk.io.ngff`), shown side by
side (napari's grid mode) with one shared contrast limit (the 0.5 and 99.5 percentiles of
the full reconstruction's coarsest level) and their contrast, gamma and colormap linked, so
changing one changes all. ``screenshot`` writes a PNG of the canvas and closes the viewer;
headless that needs an X server with OpenGL (``xvfb-run``; Qt's ``offscreen`` platform opens
the viewer but cannot render it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from .errors import BackendUnavailableError, InputError
from .io.store import check_output_path, is_complete

__all__ = ["BASELINES", "Volume", "run_volumes", "read_multiscale", "shared_contrast",
           "open_viewer", "view"]

log = logging.getLogger(__name__)

BASELINES = ("median", "nlm", "iternlm")


@dataclass(frozen=True)
class Volume:
    """One multiscale volume of a run: its name, levels (finest first) and voxel scale."""

    name: str
    levels: list[da.Array]
    scale: tuple[float, ...]
    unit: str | None


def read_multiscale(path: Any, storage_options: Mapping[str, Any] | None = None) -> Volume:
    """The first NGFF multiscale image of a store (a path or an fsspec URL) as Dask arrays."""
    from .io.urls import is_url, zarr_store

    url = str(path)
    group = zarr.open_group(zarr_store(url, storage_options) if is_url(url) else url, mode="r")
    ome = group.attrs.get("ome")
    if not isinstance(ome, dict) or not ome.get("multiscales"):
        raise InputError(f"{path} has no OME-Zarr multiscale metadata; re-write it with this "
                         "tomochunk version (e.g. re-run the stage with --overwrite)")
    ms = ome["multiscales"][0]
    levels = [da.from_zarr(group[d["path"]]) for d in ms["datasets"]]
    scale = tuple(float(s) for s in ms["datasets"][0]["coordinateTransformations"][0]["scale"])
    unit = ms["axes"][0].get("unit")
    return Volume(str(ms.get("name", Path(url.rstrip("/")).stem)), levels, scale, unit)


def run_volumes(run_dir: str | os.PathLike[str],
                storage_options: Mapping[str, Any] | None = None) -> list[Volume]:
    """The complete volumes of a run folder (a path or an fsspec URL): full, denoised, then
    the baselines present."""
    from .io.urls import location

    run = location(run_dir, storage_options)
    if not run.is_dir():
        raise InputError(f"run folder {run} does not exist")
    stores = [run / "recon.zarr", run / "denoised.zarr", *(run / f"{m}.zarr" for m in BASELINES)]
    found = [p for p in stores if is_complete(str(p), storage_options)]
    if not found:
        raise InputError(f"{run} holds no complete recon.zarr, denoised.zarr or baseline "
                         "store; run 'tomochunk run' first")
    return [read_multiscale(p, storage_options) for p in found]


def shared_contrast(volume: Volume, percentiles: tuple[float, float] = (0.5, 99.5)
                    ) -> tuple[float, float]:
    """Contrast limits from the coarsest level of ``volume`` (cheap on any volume size)."""
    values = np.asarray(volume.levels[-1])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def open_viewer(run_dir: str | os.PathLike[str], *, show: bool = True,
                storage_options: Mapping[str, Any] | None = None) -> Any:
    """A napari viewer with the run's volumes as linked multiscale layers in a grid."""
    try:
        import napari
        from napari.experimental import link_layers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError(
            "tomochunk view needs napari and a Qt binding: pip install 'napari[pyqt6]'") from exc
    volumes = run_volumes(run_dir, storage_options)
    limits = shared_contrast(volumes[0])
    viewer = napari.Viewer(title=f"tomochunk {Path(str(run_dir).rstrip('/')).name}", show=show)
    layers = []
    for vol in volumes:
        multiscale = len(vol.levels) > 1
        layers.append(viewer.add_image(
            vol.levels if multiscale else vol.levels[0], name=vol.name, scale=vol.scale,
            multiscale=multiscale, contrast_limits=limits, colormap="gray"))
    if len(layers) > 1:
        link_layers(layers, ("contrast_limits", "gamma", "colormap"))
    viewer.text_overlay.text = "   |   ".join(v.name for v in volumes)
    viewer.text_overlay.visible = True
    viewer.grid.enabled = True
    viewer.grid.shape = (1, len(layers))
    z = volumes[0].levels[0].shape[0]
    viewer.dims.set_point(0, (z // 2) * volumes[0].scale[0])
    viewer.reset_view()
    log.info("napari: %s with contrast limits [%g, %g]",
             ", ".join(v.name for v in volumes), *limits)
    return viewer


def view(run_dir: str | os.PathLike[str], *, screenshot: str | os.PathLike[str] | None = None,
         size: tuple[int, int] = (1200, 500), overwrite: bool = False,
         storage_options: Mapping[str, Any] | None = None) -> Path | None:
    """Open napari on a run; with ``screenshot``, write the canvas as PNG and close instead.

    ``run_dir`` may be an fsspec URL (``s3://bucket/run``) read with ``storage_options``;
    the screenshot is a local file.

    Raises
    ------
    OutputExistsError
        ``screenshot`` exists and ``overwrite`` is false (checked before napari starts).
    InputError
        No complete volume in ``run_dir``, or a store without NGFF metadata.
    """
    if screenshot is not None:
        check_output_path(screenshot, overwrite)
    run_volumes(run_dir, storage_options)  # bad input fails before napari starts
    if screenshot is None:
        import napari

        open_viewer(run_dir, show=True, storage_options=storage_options)
        napari.run()
        return None
    out = Path(screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer = open_viewer(run_dir, show=True, storage_options=storage_options)
    try:
        from qtpy.QtWidgets import QApplication

        viewer.window.resize(*size)
        QApplication.processEvents()  # let the canvas take its size before fitting the view
        viewer.reset_view()
        QApplication.processEvents()
        viewer.screenshot(str(out), canvas_only=True, flash=False)
    finally:
        viewer.close()
    log.info("screenshot written to %s", out)
    return out
