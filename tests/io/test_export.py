"""`tomochunk export`: TIFF, HDF5, NeXus and raw round trips, pixel size, bounded memory."""

from __future__ import annotations

import tracemalloc

import dask
import h5py
import numpy as np
import pytest
import tifffile
import xarray as xr
from click.testing import CliRunner

from tomochunk.cli import main
from tomochunk.errors import ConfigError, OutputExistsError
from tomochunk.export import export, parse_range
from tomochunk.io import store

PX = 0.65


def _denoised(tmp_path, shape=(10, 24, 32), px=PX, chunk_z=3, name="denoised"):
    rng = np.random.default_rng(1)
    vol = rng.normal(0.02, 0.01, size=shape).astype(np.float32)
    ds = xr.Dataset({name: (("z", "y", "x"), vol)}).chunk({"z": chunk_z})
    path = tmp_path / f"{name}.zarr"
    store.write_dataset(ds, path, attrs={"recon_pixel_size_um": px} if px else {})
    return path, vol


def test_tiff_round_trip_float32_with_pixel_size(tmp_path):
    path, vol = _denoised(tmp_path)
    out = export(path, tmp_path / "stack", format="tiff")
    files = sorted(out.glob("*.tif"))
    assert len(files) == vol.shape[0]
    back = tifffile.imread(files)
    np.testing.assert_array_equal(back, vol)
    with tifffile.TiffFile(files[3]) as tif:
        assert tif.imagej_metadata["spacing"] == pytest.approx(PX)
        assert tif.imagej_metadata["unit"] == "um"
        x_res = tif.pages[0].tags["XResolution"].value
        assert x_res[1] / x_res[0] == pytest.approx(PX, rel=1e-6)


def test_hdf5_round_trip_and_uint16_mapping(tmp_path):
    path, vol = _denoised(tmp_path)
    out = export(path, tmp_path / "d.h5", format="hdf5")
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["volume"][...], vol)
        assert list(f["volume"].attrs["element_size_um"]) == pytest.approx([PX] * 3)
    out16 = export(path, tmp_path / "d16.h5", format="hdf5", dtype="uint16", range="0,0.04")
    with h5py.File(out16) as f:
        d = f["volume"]
        assert d.dtype == np.uint16
        restored = d.attrs["value_offset"] + d.attrs["value_scale"] * d[...].astype(np.float64)
    inside = (vol > 0) & (vol < 0.04)
    assert np.abs(restored - vol)[inside].max() <= 0.04 / 65535 * 0.55  # half a step (+f32)
    assert restored[vol >= 0.04].min() == pytest.approx(0.04)  # clipped at hi


def test_nexus_and_raw(tmp_path):
    path, vol = _denoised(tmp_path)
    nxs = export(path, tmp_path / "d.nxs", format="nxtomo")
    with h5py.File(nxs) as f:
        assert f["entry/definition"][()].decode() == "NXtomoproc"
        np.testing.assert_array_equal(f["entry/data/data"][...], vol)
        assert f["entry/data/x"][1] == pytest.approx(PX)
        assert f["entry/data/x"].attrs["units"] == "um"
    raw = export(path, tmp_path / "raw", format="raw")
    back = np.fromfile(raw / "volume.raw", dtype="<f4").reshape(vol.shape)
    np.testing.assert_array_equal(back, vol)
    header = (raw / "volume.nhdr").read_text()
    assert f"sizes: {vol.shape[2]} {vol.shape[1]} {vol.shape[0]}" in header
    assert f"spacings: {PX} {PX} {PX}" in header


def test_cli_refuses_existing_output_and_bad_range(tmp_path):
    path, _ = _denoised(tmp_path)
    r = CliRunner().invoke(main, ["export", str(path), "--format", "hdf5", "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "denoised.h5").exists()
    r = CliRunner().invoke(main, ["export", str(path), "--format", "hdf5", "-q"])
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = CliRunner().invoke(main, ["export", str(path), "--format", "hdf5", "--overwrite", "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["export", str(path), "--dtype", "uint16", "--range", "5,1",
                                  "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "lo < hi" in r.output
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError):
        parse_range("1;2")
    with pytest.raises(OutputExistsError):
        export(path, tmp_path / "denoised.h5", format="hdf5")
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("fmt", ["hdf5", "raw", "tiff"])
def test_memory_stays_bounded_by_slabs(tmp_path, fmt):
    """A 48 MiB volume in 2 MiB slabs exported holding at most 10 slabs' worth at a time.

    numpy and Zarr buffers are traced by tracemalloc, so the peak counts every slab, its
    compressed bytes and the converted copies. Each of the 2 threads holds up to ~4.5 slabs
    at its own peak (compressed bytes, the decoded slab, zarr's buffer, the float copy being
    scaled, the uint16 result): measured 7.7-15.7 MiB over repeated runs, depending on how
    the two threads' peaks overlap (machine load), so the bound is 2 x 4.5 + 1 slabs.
    """
    shape = (96, 256, 512)
    path, _ = _denoised(tmp_path, shape=shape, chunk_z=4)
    size, slab = int(np.prod(shape)) * 4, 4 * 256 * 512 * 4
    tracemalloc.start()
    try:
        with dask.config.set(scheduler="threads", num_workers=2):  # CI's 2 cores on any host
            export(path, tmp_path / f"out.{fmt}", format=fmt, dtype="uint16", range="0,0.04")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{fmt}: peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB volume")
    assert peak < 10 * slab <= size / 2.4
