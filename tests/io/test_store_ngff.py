"""Stores: data variables with units, NGFF 0.5 pyramids, consolidated metadata (issue 15)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

import tomochunk as tc
from tomochunk.io import store
from tomochunk.io.pyramid import level_count, level_shapes


def _recon_like(n_z: int = 20, n: int = 60, k: int = 2, px: float | None = 0.65) -> xr.Dataset:
    rng = np.random.default_rng(0)
    full = rng.normal(size=(n_z, n, n)).astype(np.float32)
    split = rng.normal(size=(k, n_z, n, n)).astype(np.float32)
    attrs = {"pixel_size_um": px} if px else {}
    ds = xr.Dataset({"full": (("z", "y", "x"), full), "split": (("split", "z", "y", "x"), split)},
                    coords={"z": np.arange(n_z), "y": np.arange(n), "x": np.arange(n)},
                    attrs=attrs)
    return ds.chunk({"z": 6})


def _open_quietly(path) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (consolidated metadata, ...) fails
        return xr.open_zarr(str(path))


def test_level_count_from_volume_size():
    assert level_count((32, 32, 32)) == 1
    assert level_count((64, 64, 64)) == 2
    assert level_count((2048, 2048, 2048)) == 7
    assert level_count((4, 500, 500)) == 3  # stops when the thinnest side cannot be halved
    assert level_shapes((20, 70, 70), 2) == [(20, 70, 70), (10, 35, 35)]


def test_xarray_opens_without_warning_and_sees_data_variables_with_units(tmp_path):
    out = tmp_path / "recon.zarr"
    store.write_dataset(_recon_like(), out, attrs={"pixel_size_um": 0.65})
    ds = _open_quietly(out)
    assert set(ds.data_vars) == {"full", "split"}
    assert ds["split"].dims == ("split_index", "z", "y", "x")
    for name in ("full", "split"):
        assert ds[name].attrs["units"] == "linear attenuation per pixel"
        assert ds[name].attrs["pixel_size_um"] == 0.65
    assert "consolidated_metadata" in json.loads((out / "zarr.json").read_text())
    # tomochunk's own reader keeps the in-memory layout the stages rely on
    rec = tc.open_recon(out)
    assert rec["split"].dims == ("split", "z", "y", "x")
    np.testing.assert_array_equal(rec["split"].values, _recon_like()["split"].values)
    assert store.is_complete(out)


def test_scan_flat_and_dark_are_data_variables(tmp_path):
    from tomochunk.phantom import ScanSpec, simulate_scan

    scan, _ = simulate_scan(ScanSpec(n_z=4, n_xy=24, n_angles=12, seed=1))
    out = tmp_path / "scan.zarr"
    store.write_dataset(scan.chunk(), out)
    ds = _open_quietly(out)
    assert {"projections", "flat", "dark"} <= set(ds.data_vars)
    assert ds["projections"].attrs["units"] == "counts"
    assert "ome" not in store.read_attrs(out)  # projections are not a volume
    back = tc.open_scan(out)
    assert back["flat"].dims == ("flat", "row", "col")
    np.testing.assert_array_equal(back["dark"].values, scan["dark"].values)


def test_ngff_metadata_validates_and_pyramid_is_block_mean(tmp_path):
    from ome_zarr_models.v05.image import Image

    out = tmp_path / "recon.zarr"
    src = _recon_like()
    store.write_dataset(src, out, attrs={"pixel_size_um": 0.65})
    group = zarr.open_group(str(out), mode="r")
    image = Image.from_zarr(group)  # raises on invalid NGFF 0.5 metadata
    ms = image.ome_attributes.multiscales[0]
    assert [d.path for d in ms.datasets] == ["full", "pyramid/full/1"]
    assert [a.unit for a in ms.axes] == ["micrometer"] * 3
    assert ms.datasets[1].coordinateTransformations[0].scale == [1.3, 1.3, 1.3]
    assert ms.datasets[1].coordinateTransformations[1].translation == pytest.approx([0.325] * 3)
    level1 = np.asarray(group["pyramid/full/1"][:])
    full = src["full"].values
    expect = full.reshape(10, 2, 30, 2, 30, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(level1, expect, rtol=1e-6, atol=1e-6)
    assert group["pyramid/full/1"].metadata.dimension_names == ("z", "y", "x")
    # the pyramid is invisible to xarray: the dataset holds exactly the written variables
    assert set(_open_quietly(out).data_vars) == {"full", "split"}


def test_unknown_pixel_size_gives_unitless_axes(tmp_path):
    from ome_zarr_models.v05.image import Image

    out = tmp_path / "d.zarr"
    store.write_dataset(_recon_like(px=None)[["full"]].rename(full="denoised"), out)
    ms = Image.from_zarr(zarr.open_group(str(out), mode="r")).ome_attributes.multiscales[0]
    assert [a.unit for a in ms.axes] == [None] * 3
    assert ms.datasets[1].coordinateTransformations[0].scale == [2.0, 2.0, 2.0]
    assert "pixel_size_um" not in _open_quietly(out)["denoised"].attrs


def test_ngff_reader_napari_ome_zarr_sees_the_levels(tmp_path):
    napari_ome_zarr = pytest.importorskip("napari_ome_zarr")
    out = tmp_path / "denoised.zarr"
    store.write_dataset(_recon_like()[["full"]].rename(full="denoised"), out,
                        attrs={"pixel_size_um": 0.65})
    reader = napari_ome_zarr.napari_get_reader(str(out))
    assert reader is not None
    layers = reader(str(out))
    data, meta, kind = layers[0]
    assert kind == "image"
    assert [tuple(d.shape) for d in data] == [(20, 60, 60), (10, 30, 30)]
    assert list(meta["scale"]) == pytest.approx([0.65] * 3)
