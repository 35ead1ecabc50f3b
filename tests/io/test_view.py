"""A demo run's stores in napari, NGFF validators and xarray; `tomochunk view` (issue 15)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

from tomochunk.cli import main

BIN = Path(sys.executable).parent
STORES = ("recon", "denoised", "median")


@pytest.fixture(scope="module")
def run_dir(fast_run) -> Path:
    """The session's small run (``conftest.fast_run``); these tests only read it."""
    return fast_run.run


@pytest.mark.slow
def test_run_stores_open_in_validator_xarray_and_napari(run_dir, monkeypatch):
    from ome_zarr_models.v05.image import Image

    for name in STORES:
        path = run_dir / f"{name}.zarr"
        image = Image.from_zarr(zarr.open_group(str(path), mode="r"))  # NGFF 0.5 validator
        assert len(image.ome_attributes.multiscales[0].datasets) == 2  # 64 px -> 2 levels
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = xr.open_zarr(str(path))
        for var in ds.data_vars.values():
            assert var.attrs["units"] == "linear attenuation per pixel"
    ds = xr.open_zarr(str(run_dir / "recon.zarr"))
    assert {"full", "split"} <= set(ds.data_vars)
    scan = xr.open_zarr(str(run_dir / "scan.zarr"))
    assert {"projections", "flat", "dark"} <= set(scan.data_vars)
    den = xr.open_zarr(str(run_dir / "denoised.zarr"))["denoised"]
    model_path = den.attrs["model_path"]
    assert den.attrs["model_path_kind"] == "absolute" and Path(model_path).is_absolute()
    assert Path(model_path).exists()

    # napari's headless viewer (its Qt window needs OpenGL: see the screenshot test)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("napari")
    pytest.importorskip("napari_ome_zarr")
    import npe2
    from napari.components import ViewerModel

    npe2.PluginManager.instance().discover()  # registers napari-ome-zarr's reader

    viewer = ViewerModel()
    layers = viewer.open(str(run_dir / "denoised.zarr"), plugin="napari-ome-zarr")
    layer = layers[0]
    assert layer.multiscale and layer.name == "denoised"
    assert [tuple(level.shape) for level in layer.data] == [(12, 48, 48), (6, 24, 24)]
    assert list(layer.scale) == pytest.approx([1.0, 1.0, 1.0])
    np.testing.assert_allclose(np.asarray(layer.data[0][5]), den.isel(z=5).values)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run for OpenGL")
def test_view_screenshot_shows_three_linked_layers(run_dir, tmp_path):
    pytest.importorskip("napari")
    from PIL import Image as PILImage

    shot = tmp_path / "view.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1200x24", str(BIN / "tomochunk"), "view",
           str(run_dir), "--screenshot", str(shot)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    img = np.asarray(PILImage.open(shot).convert("L"), dtype=float)
    thirds = np.array_split(img[: int(img.shape[0] * 0.85)], 3, axis=1)
    for panel in thirds:  # each layer is drawn: a bright, textured object in every panel
        assert panel.max() > 100 and panel.std() > 10
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "--overwrite" in res.stderr


def test_view_refuses_a_folder_without_volumes(tmp_path):
    res = CliRunner().invoke(main, ["view", str(tmp_path), "--screenshot",
                                    str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "no complete recon.zarr" in res.output
    assert not (tmp_path / "x.png").exists()
