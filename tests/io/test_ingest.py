"""Ingest: readers (DXchange, NXtomo, TIFF, numpy/xarray), the scan.zarr layout, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import xarray as xr
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tomochunk.cli import main
from tomochunk.errors import ConfigError, InputError, OutputExistsError
from tomochunk.io import store
from tomochunk.io.ingest import detect_format, from_arrays, ingest, validate_scan
from tomochunk.io.readers import check_theta, read_angles_file, select_projection_angles

from ..conftest import shared_file

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------
# helpers


def _dxchange(path: Path, n=12, rows=5, cols=7, *, theta=None, units="degrees", flat=True,
              dark=True, flat_shape=None, drop=()):
    """Write a small DXchange file and return its arrays."""
    proj = RNG.integers(100, 1000, (n, rows, cols), dtype=np.uint16)
    fl = np.full(flat_shape or (3, rows, cols), 1200, np.uint16)
    dk = np.full((2, rows, cols), 20, np.uint16)
    th = np.linspace(0, 180, n, endpoint=False) if theta is None else np.asarray(theta)
    with h5py.File(path, "w") as f:
        if "data" not in drop:
            f["exchange/data"] = proj
        if flat:
            f["exchange/data_white"] = fl
        if dark:
            f["exchange/data_dark"] = dk
        if "theta" not in drop:
            f["exchange/theta"] = th
            if units:
                f["exchange/theta"].attrs["units"] = units
        f["exchange/title"] = "test"
    return proj, fl, dk, th


def _nxtomo(path: Path, keys, angles_deg, rows=4, cols=6, *, units="degree", definition=True):
    frames = RNG.integers(0, 5000, (len(keys), rows, cols), dtype=np.uint16)
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        if definition:
            entry["definition"] = "NXtomo"
        det = entry.create_group("instrument/detector")
        entry["instrument"].attrs["NX_class"] = "NXinstrument"
        det.attrs["NX_class"] = "NXdetector"
        det["data"] = frames
        det["image_key"] = np.asarray(keys, dtype=np.int32)
        det["x_pixel_size"] = 6.5e-6
        det["x_pixel_size"].attrs["units"] = "m"
        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        sample["rotation_angle"] = np.asarray(angles_deg, dtype=np.float64)
        if units:
            sample["rotation_angle"].attrs["units"] = units
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data["data"] = det["data"]  # hard link, as NXtomo writers do
    return frames


def _tiff_scan(folder: Path, n=6, rows=5, cols=4, *, angles=None, extra_lines=None):
    """A TIFF scan: proj_00000.tif..., flat_0.tif, dark_0.tif, angles.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    proj = RNG.integers(0, 60000, (n, rows, cols), dtype=np.uint16)
    for i in range(n):
        tifffile.imwrite(folder / f"proj_{i}.tif", proj[i])  # natural order: 2 before 10
    flat = np.full((rows, cols), 50000, np.float32)
    dark = np.full((rows, cols), 100, np.float32)
    tifffile.imwrite(folder / "flat_0.tif", flat)
    tifffile.imwrite(folder / "dark_0.tif", dark)
    ang = np.linspace(0, 180, n) if angles is None else angles
    lines = [f"{a}" for a in ang] if extra_lines is None else extra_lines
    (folder / "angles.txt").write_text("\n".join(lines) + "\n")
    return proj, flat, dark


def _no_partials(out: Path) -> None:
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert leftovers == []


# ---------------------------------------------------------------------------------------
# real files


def test_tooth_dxchange(tmp_path):
    src = shared_file("tomopy-tooth", "tooth.h5")
    out = tmp_path / "scan.zarr"
    ds = ingest(src, out)
    assert ds.projections.shape == (181, 2, 640) and ds.projections.dtype == np.float32
    assert ds.flat.shape == (10, 2, 640) and ds.dark.shape == (10, 2, 640)
    assert ds.theta.dtype == np.float64 and ds.theta.attrs["units"] == "rad"
    deg = np.rad2deg(ds.theta.values)
    assert deg[0] == 0.0
    np.testing.assert_allclose(deg[-1], 179.0055, atol=1e-4)
    np.testing.assert_allclose(np.diff(deg), 180 / 181, rtol=1e-9)
    with h5py.File(src) as f:
        np.testing.assert_array_equal(ds.projections.values, f["exchange/data"][()])
        np.testing.assert_array_equal(ds.flat.values, f["exchange/data_white"][()])
        np.testing.assert_array_equal(ds.dark.values, f["exchange/data_dark"][()])
    assert ds.attrs["source_format"] == "dxchange" and ds.attrs["n_angles"] == 181
    assert ds.attrs["normalized"] is False and "pixel_size_um" not in ds.attrs
    assert store.is_complete(out)
    # plain xarray opens the contract: theta is a coordinate of the projections
    raw = xr.open_zarr(out, consolidated=False)
    assert raw.projections.dims == ("angle", "row", "col")
    assert "theta" in raw.projections.coords and raw.theta.dims == ("angle",)
    assert raw.projections.encoding["chunks"] == (181, 2, 640)


@pytest.mark.parametrize("sub", ["", "tiffs"])
def test_diamond_tiff_stack(tmp_path, sub):
    folder = shared_file("savu-i13-24737")
    out = tmp_path / "scan.zarr"
    with pytest.warns(UserWarning, match=r"1 isolated pixel.*\(0, 0\)"):
        ds = ingest(folder / sub if sub else folder, out, rows_per_chunk=16)
        check = validate_scan(ds)
    assert ds.projections.shape == (91, 135, 160) and ds.projections.dtype == np.uint16
    assert ds.flat.shape == (1, 135, 160) and ds.dark.shape == (1, 135, 160)
    deg = np.rad2deg(ds.theta.values)
    np.testing.assert_allclose(deg[0], -88.2, atol=1e-9)
    # the file records angles to 1e-4 deg (e.g. 91.7999)
    np.testing.assert_allclose(deg, -88.2 + 2.0 * np.arange(91), atol=5e-4)
    assert "entries 10..100" in ds.attrs["angle_layout"]
    np.testing.assert_array_equal(ds.projections[37].values,
                                  tifffile.imread(folder / "tiffs" / "raw_00037.tiff"))
    np.testing.assert_array_equal(ds.flat[0].values, tifffile.imread(folder / "flat_00001.tiff"))
    assert ds.projections.encoding["chunks"] == (91, 16, 160)
    assert check.n_bad_pixels == 1 and check.bad_pixels == [(0, 0)]


def test_cli_ingest_and_overwrite(tmp_path):
    src = shared_file("tomopy-tooth", "tooth.h5")
    out = tmp_path / "scan.zarr"
    runner = CliRunner()
    res = runner.invoke(main, ["ingest", str(src), str(out), "--rows-per-chunk", "1", "-q"])
    assert res.exit_code == 0, res.output
    assert store.open_scan(out).projections.encoding["chunks"] == (181, 1, 640)
    res = runner.invoke(main, ["ingest", str(src), str(out), "-q"])
    assert res.exit_code == 2
    assert "already exists" in res.output and "--overwrite" in res.output
    assert store.open_scan(out).projections.encoding["chunks"] == (181, 1, 640)  # untouched
    res = runner.invoke(main, ["ingest", str(src), str(out), "--overwrite", "-q",
                               "--pixel-size-um", "3.25"])
    assert res.exit_code == 0, res.output
    ds = store.open_scan(out)
    assert ds.projections.encoding["chunks"] == (181, 2, 640)
    assert ds.attrs["pixel_size_um"] == 3.25
    # an existing store re-chunks
    res = runner.invoke(main, ["ingest", str(out), str(tmp_path / "r.zarr"), "-q",
                               "--rows-per-chunk", "1"])
    assert res.exit_code == 0, res.output
    again = store.open_scan(tmp_path / "r.zarr")
    assert again.projections.encoding["chunks"] == (181, 1, 640)
    np.testing.assert_array_equal(again.projections.values, ds.projections.values)
    np.testing.assert_array_equal(again.theta.values, ds.theta.values)
    assert again.attrs["pixel_size_um"] == 3.25 and again.attrs["source"] == str(src.resolve())
    res = runner.invoke(main, ["ingest", str(tmp_path / "nope.h5"), str(tmp_path / "x.zarr")])
    assert res.exit_code == 2 and "does not exist" in res.output


# ---------------------------------------------------------------------------------------
# formats


def test_nexus_image_key_split(tmp_path):
    keys = [2, 2, 1, 1, 1] + [0] * 12 + [1, 1, 3]
    angles = [0.0] * 5 + list(np.linspace(0, 165, 12)) + [165.0] * 3
    path = tmp_path / "scan.nxs"
    frames = _nxtomo(path, keys, angles)
    assert detect_format(path) == "nexus"
    ds = ingest(path, tmp_path / "scan.zarr")
    keys = np.asarray(keys)
    np.testing.assert_array_equal(ds.projections.values, frames[keys == 0])
    np.testing.assert_array_equal(ds.flat.values, frames[keys == 1])
    np.testing.assert_array_equal(ds.dark.values, frames[keys == 2])
    np.testing.assert_allclose(ds.theta.values, np.deg2rad(np.linspace(0, 165, 12)))
    assert ds.attrs["source_format"] == "nexus" and ds.attrs["nexus_entry"] == "/entry1"
    assert ds.attrs["pixel_size_um"] == pytest.approx(6.5)


def test_nexus_defaults_to_degrees_and_finds_entry_without_definition(tmp_path):
    path = tmp_path / "scan.h5"
    _nxtomo(path, [0] * 4, [0, 1, 2, 3], units=None, definition=False)
    with pytest.warns(UserWarning, match="as --assume-transmission asks"):  # raw counts
        ds = ingest(path, tmp_path / "s.zarr", assume_transmission=True)
    np.testing.assert_allclose(ds.theta.values, np.deg2rad([0, 1, 2, 3]))
    assert "flat" not in ds.variables and ds.attrs["normalized"] is True


def test_from_arrays_chunked_equals_whole(tmp_path):
    proj = RNG.random((9, 23, 11), dtype=np.float32)
    flat = RNG.random((23, 11), dtype=np.float32) + 2
    theta = np.linspace(0, 160, 9)
    scan = from_arrays(proj, theta, flat=flat, theta_unit="deg", pixel_size_um=0.65)
    scan.attrs.update(phantom_center=np.float64(5.5), phantom_rings=np.array([3, 4]))
    assert scan.flat.shape == (1, 23, 11) and "dark" not in scan.variables
    np.testing.assert_allclose(scan.theta.values, np.deg2rad(theta))
    # a tiny memory budget forces one block per 3-row chunk, with a short last chunk
    ds = ingest(scan, tmp_path / "s.zarr", rows_per_chunk=3, read_block_mb=1e-4)
    assert ds.projections.encoding["chunks"] == (9, 3, 11)
    np.testing.assert_array_equal(ds.projections.values, proj)
    np.testing.assert_array_equal(ds.flat.values, flat[None])
    assert ds.attrs["pixel_size_um"] == 0.65 and ds.attrs["normalized"] is False
    assert ds.attrs["phantom_center"] == 5.5 and ds.attrs["phantom_rings"] == [3, 4]
    assert ds.attrs["source"] == "numpy" and ds.attrs["source_format"] == "xarray"


def test_lazy_dask_dataset_streams(tmp_path):
    import dask.array as da

    # transmission in (0, 1] without flats or darks: one warning that says how it is used
    proj = da.from_array((np.arange(1, 4 * 10 * 3 + 1, dtype=np.float32) / 120).reshape(4, 10, 3),
                         chunks=2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ds = ingest(from_arrays(proj, [0.0, 0.5, 1.0, 1.5]), tmp_path / "s.zarr",
                    rows_per_chunk=4)
    said = [str(w.message) for w in seen if "flats or darks" in str(w.message)]
    assert len(said) == 1 and "taken as transmission" in said[0], said
    np.testing.assert_array_equal(ds.projections.values, proj.compute())
    assert ds.attrs["normalized"] is True


def test_raw_counts_without_flats_are_refused_unless_declared_transmission(tmp_path):
    import dask.array as da

    counts = da.from_array(np.arange(4 * 10 * 3, dtype=np.uint16).reshape(4, 10, 3), chunks=2)
    scan = from_arrays(counts, [0.0, 0.5, 1.0, 1.5])
    # middle row 5: counts 15..17, 45..47, 75..77, 105..107; 99th percentile 106.9
    with pytest.raises(InputError, match=r"raw counts, not transmission \(99th percentile "
                                         r"106.9 > 2\).*--assume-transmission"):
        ingest(scan, tmp_path / "s.zarr", rows_per_chunk=4)
    assert list(tmp_path.iterdir()) == []
    with pytest.warns(UserWarning, match="reach 106.9 .*as --assume-transmission asks"):
        ds = ingest(scan, tmp_path / "s.zarr", rows_per_chunk=4, assume_transmission=True)
    np.testing.assert_array_equal(ds.projections.values, counts.compute())
    # the limit is on the 99th percentile: noisy transmission just under 2 passes
    noisy = np.full((50, 4, 20), 1.0, np.float32)
    noisy[:, 2, :] = np.linspace(0.05, 1.95, 1000).reshape(50, 20)
    noisy[0, 2, 0] = 500.0  # a hot pixel does not make raw counts
    with pytest.warns(UserWarning, match="taken as transmission"):
        ingest(from_arrays(noisy, np.linspace(0, np.pi, 50, endpoint=False)),
               tmp_path / "t.zarr")
    # and just over it is refused
    noisy[:, 2, :] = np.linspace(0.05, 2.5, 1000).reshape(50, 20)
    with pytest.raises(InputError, match="99th percentile 2.4"):
        ingest(from_arrays(noisy, np.linspace(0, np.pi, 50, endpoint=False)),
               tmp_path / "u.zarr")
    assert not (tmp_path / "u.zarr").exists()


def test_npy_projections_with_angles_file(tmp_path):
    proj = RNG.integers(0, 100, (5, 4, 3)).astype(np.float32)
    np.save(tmp_path / "p.npy", proj)
    np.save(tmp_path / "flat.npy", np.ones((4, 3), np.float32))
    (tmp_path / "a.txt").write_text("# angle in radians\n0\n0.1\n0.2\n0.3\n0.4\n")
    with pytest.raises(InputError, match="give their angles with --angles FILE"):
        ingest(tmp_path / "p.npy", tmp_path / "s.zarr")
    ds = ingest(tmp_path / "p.npy", tmp_path / "s.zarr", angles=str(tmp_path / "a.txt"),
                flats=str(tmp_path / "flat.npy"))
    np.testing.assert_array_equal(ds.projections.values, proj)
    np.testing.assert_allclose(ds.theta.values, [0, 0.1, 0.2, 0.3, 0.4])
    assert ds.flat.shape == (1, 4, 3) and ds.attrs["source_format"] == "numpy"


def test_dxchange_units_by_range_and_override(tmp_path):
    _dxchange(tmp_path / "deg.h5", n=4, theta=[0, 60, 120, 180], units=None)
    ds = ingest(tmp_path / "deg.h5", tmp_path / "a.zarr")
    np.testing.assert_allclose(ds.theta.values, np.deg2rad([0, 60, 120, 180]))
    _dxchange(tmp_path / "rad.h5", n=4, theta=[0, 1, 2, 3], units=None)
    ds = ingest(tmp_path / "rad.h5", tmp_path / "b.zarr")
    np.testing.assert_allclose(ds.theta.values, [0, 1, 2, 3])
    ds = ingest(tmp_path / "rad.h5", tmp_path / "c.zarr", angles_unit="deg")
    np.testing.assert_allclose(ds.theta.values, np.deg2rad([0, 1, 2, 3]))


def test_tiff_stack_natural_order_and_image_key_column(tmp_path):
    n = 12
    lines = ["0 2", "0 1"] + [f"{15 * i}, 0" for i in range(n)] + ["165 1"]
    proj, flat, dark = _tiff_scan(tmp_path / "scan", n=n, extra_lines=lines)
    ds = ingest(tmp_path / "scan", tmp_path / "s.zarr", rows_per_chunk=2)
    np.testing.assert_array_equal(ds.projections.values, proj)  # proj_2 before proj_10
    np.testing.assert_array_equal(ds.flat.values, flat[None])
    np.testing.assert_array_equal(ds.dark.values, dark[None])
    np.testing.assert_allclose(np.rad2deg(ds.theta.values), 15 * np.arange(n))
    assert "image_key gives 12 projections, 2 flats, 1 darks" in ds.attrs["angle_layout"]


def test_multipage_tiff_and_explicit_flats(tmp_path):
    stack = RNG.integers(0, 1000, (5, 3, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    (tmp_path / "w").mkdir()
    tifffile.imwrite(tmp_path / "w" / "a.tif", np.full((2, 3, 4), 7, np.uint16))
    (tmp_path / "angles.txt").write_text("\n".join(map(str, range(0, 50, 10))))
    ds = ingest(tmp_path / "stack.tif", tmp_path / "s.zarr", flats=str(tmp_path / "w"),
                angles_unit="deg")
    np.testing.assert_array_equal(ds.projections.values, stack)
    assert ds.flat.shape == (2, 3, 4) and "dark" not in ds.variables


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), pad=st.integers(1, 6), start=st.floats(-180, 180),
       step=st.floats(0.1, 5), direction=st.sampled_from([1, -1]))
def test_central_block_heuristic_recovers_projection_angles(n, pad, start, step, direction):
    proj = start + direction * step * np.arange(n)
    listing = np.concatenate([np.full(pad, proj[0]), proj, np.full(pad, proj[-1])])
    picked, note = select_projection_angles(listing, n)
    np.testing.assert_array_equal(picked, proj)
    assert f"entries {pad}..{pad + n - 1}" in note


# ---------------------------------------------------------------------------------------
# bad input: clear errors, nothing written, existing stores untouched


def test_missing_datasets_are_named(tmp_path):
    _dxchange(tmp_path / "a.h5", drop=("data",))
    with pytest.raises(InputError, match=r"/exchange/data \(projections\) is missing; the file "
                       r"holds: .*/exchange/data_white \(3, 5, 7\)"):
        ingest(tmp_path / "a.h5", tmp_path / "s.zarr", format="dxchange")
    _dxchange(tmp_path / "b.h5", drop=("theta",))
    with pytest.raises(InputError, match=r"/exchange/theta \(rotation angles\) is missing.*"
                       r"--angles FILE"):
        ingest(tmp_path / "b.h5", tmp_path / "s.zarr")
    # an HDF5 file of neither format: auto detection lists what it holds
    with pytest.raises(InputError, match=r"neither a NeXus NXtomo entry nor.*/exchange/data.*"
                       r"holds: /exchange/data_dark \(2, 5, 7\), /exchange/data_white"):
        ingest(tmp_path / "a.h5", tmp_path / "s.zarr")
    _no_partials(tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_nexus_missing_angles_and_bad_key(tmp_path):
    path = tmp_path / "a.nxs"
    _nxtomo(path, [0, 0, 0], [0, 1, 2])
    with h5py.File(path, "a") as f:
        del f["entry1/sample/rotation_angle"]
    with pytest.raises(InputError, match=r"rotation angles are missing.*--angles FILE"):
        ingest(path, tmp_path / "s.zarr")
    _nxtomo(path, [0, 5, 0], [0, 1, 2])
    with pytest.raises(InputError, match=r"image_key values \[5\] are not 0"):
        ingest(path, tmp_path / "s.zarr")


@pytest.mark.parametrize(
    ("theta", "match"),
    [
        (np.linspace(0, 180, 11), r"11 angles for 12 projections; give exactly one angle"),
        (np.r_[0, 15, np.nan, np.arange(45, 180, 15)],
         r"1 angle\(s\) are not finite \(the first is angle 2 = nan\)"),
        (np.r_[0, 15, 15, np.arange(45, 180, 15)],
         r"angles 1 and 2 are equal \(15 deg; 1 duplicate\(s\)"),
        (np.r_[0, 30, 15, 45, 30, np.arange(75, 180, 15)],
         r"angles 1 and 4 are equal \(30 deg; 1 duplicate\(s\)"),
    ],
)
def test_bad_angles(tmp_path, theta, match):
    _dxchange(tmp_path / "a.h5", n=12, theta=theta)
    with pytest.raises(InputError, match=match):
        ingest(tmp_path / "a.h5", tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_decreasing_angles_are_accepted():
    theta = check_theta(np.linspace(3, 0, 7), 7)
    assert theta[0] == 3


def test_flat_with_wrong_shape(tmp_path):
    _dxchange(tmp_path / "a.h5", flat_shape=(3, 5, 6))
    with pytest.raises(InputError, match=r"flat frames have shape \(5, 6\) \(rows, cols\) but "
                       r"the projections have \(5, 7\)"):
        ingest(tmp_path / "a.h5", tmp_path / "s.zarr")
    with pytest.raises(InputError, match=r"dark frames have shape \(4, 4\)"):
        from_arrays(np.zeros((3, 4, 5)), [0, 1, 2], dark=np.zeros((4, 4)))


def test_existing_output_is_checked_first_and_never_damaged(tmp_path):
    _dxchange(tmp_path / "a.h5")
    out = tmp_path / "s.zarr"
    first = ingest(tmp_path / "a.h5", out).projections.values
    # the clash is reported before the (missing) input is even looked at
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        ingest(tmp_path / "missing.h5", out)
    # a failing overwrite leaves the old store complete and unchanged
    _dxchange(tmp_path / "bad.h5", flat_shape=(3, 2, 2))
    with pytest.raises(InputError):
        ingest(tmp_path / "bad.h5", out, overwrite=True)
    _tiff_scan(tmp_path / "tif", n=4)
    (tmp_path / "tif" / "proj_2.tif").write_bytes(
        (tmp_path / "tif" / "proj_2.tif").read_bytes()[:-20])  # data cut short
    with pytest.raises(InputError, match=r"proj_2\.tif"):
        ingest(tmp_path / "tif", out, overwrite=True)
    assert store.is_complete(out)
    np.testing.assert_array_equal(store.open_scan(out).projections.values, first)
    _no_partials(out)


def test_unreadable_tiff_is_named(tmp_path):
    _tiff_scan(tmp_path / "tif", n=4)
    (tmp_path / "tif" / "proj_3.tif").write_bytes(b"this is not a tiff at all")
    with pytest.raises(InputError, match=r"proj_3\.tif is not a readable TIFF.*replace the file"):
        ingest(tmp_path / "tif", tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_tiff_of_other_shape_is_named(tmp_path):
    _tiff_scan(tmp_path / "tif", n=4)
    tifffile.imwrite(tmp_path / "tif" / "proj_9.tif", np.zeros((3, 3), np.uint16))
    with pytest.raises(InputError, match=r"proj_9\.tif: image \(3, 3\) uint16 differs from "
                       r"proj_0\.tif \(5, 4\) uint16"):
        ingest(tmp_path / "tif", tmp_path / "s.zarr", angles_unit="deg")


def test_unresolvable_angle_layout_names_counts(tmp_path):
    # 8 distinct angles for 6 projections: not a flat/dark layout
    _tiff_scan(tmp_path / "tif", n=6, angles=np.linspace(0, 180, 8))
    with pytest.raises(InputError, match=r"lists 8 angles but there are 6 projections \(and 1 "
                       r"flat, 1 dark images\); cannot tell.*image_key"):
        ingest(tmp_path / "tif", tmp_path / "s.zarr")
    _tiff_scan(tmp_path / "tif2", n=6, angles=np.linspace(0, 180, 5))
    with pytest.raises(InputError, match=r"lists 5 angles but there are 6 projections"):
        ingest(tmp_path / "tif2", tmp_path / "s.zarr")
    (tmp_path / "tif" / "angles.txt").write_text("0\n10\nabc def 3\n")
    with pytest.raises(InputError, match=r"angles.txt, line 3: 'abc def 3' is not a number"):
        read_angles_file(tmp_path / "tif" / "angles.txt")


def test_missing_and_unknown_inputs(tmp_path):
    with pytest.raises(InputError, match=r"input .*nope\.h5 does not exist"):
        ingest(tmp_path / "nope.h5", tmp_path / "s.zarr")
    (tmp_path / "scan.txt").write_text("hello")
    with pytest.raises(InputError, match=r"cannot tell the format of .*scan\.txt.*--format"):
        ingest(tmp_path / "scan.txt", tmp_path / "s.zarr")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match=r"junk\.h5 cannot be opened as an HDF5 file"):
        ingest(tmp_path / "junk.h5", tmp_path / "s.zarr", format="dxchange")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty holds no projection TIFFs"):
        ingest(tmp_path / "empty", tmp_path / "s.zarr")
    with pytest.raises(ConfigError, match="rows_per_chunk must be >= 1"):
        ingest(tmp_path / "empty", tmp_path / "s.zarr", rows_per_chunk=0)
    with pytest.raises(ConfigError, match="unknown config key"):
        ingest(tmp_path / "empty", tmp_path / "s.zarr", rows_per_chunks=4)
    assert not (tmp_path / "s.zarr").exists()


def test_validate_scan_splits_and_flat_dark(tmp_path):
    proj = np.ones((7, 10, 10), np.uint16)
    flat = np.full((2, 10, 10), 100.0)
    dark = np.full((2, 10, 10), 5.0)
    check = validate_scan(from_arrays(proj, np.arange(7.0), flat=flat, dark=dark), n_splits=7)
    assert check.n_bad_pixels == 0 and check.has_flat
    with pytest.raises(InputError, match=r"7 projections, which is not divisible by 2 splits.*"
                       r"drop 1 projection"):
        validate_scan(from_arrays(proj, np.arange(7.0), flat=flat, dark=dark), n_splits=2)
    swapped = from_arrays(proj, np.arange(7.0), flat=dark, dark=flat)
    with pytest.raises(InputError, match=r"flat minus dark is zero, negative or not finite in "
                       r"100 of 100 pixels \(100\.00%"):
        validate_scan(swapped)
    assert validate_scan(from_arrays(proj, np.arange(7.0))).has_flat is False


# ---------------------------------------------------------------------------------------
# bounded memory


@pytest.mark.slow
def test_ingest_memory_is_bounded(tmp_path):
    """A ~400 MB HDF5 scan ingests with a peak RSS increase far below the file size."""
    src = tmp_path / "big.h5"
    n, rows, cols = 200, 1000, 1000
    with h5py.File(src, "w") as f:
        d = f.create_dataset("exchange/data", (n, rows, cols), dtype="uint16")
        base = (np.arange(rows)[:, None] * 7 + np.arange(cols)[None, :] * 3).astype(np.uint16)
        for i in range(0, n, 20):
            d[i:i + 20] = base[None] + np.arange(i, i + 20, dtype=np.uint16)[:, None, None]
        f["exchange/data_white"] = np.full((4, rows, cols), 1000, np.uint16)
        f["exchange/data_dark"] = np.full((2, rows, cols), 10, np.uint16)
        f["exchange/theta"] = np.linspace(0, 180, n, endpoint=False)
    size = src.stat().st_size
    assert size > 400e6
    script = textwrap.dedent(f"""
        import json, psutil
        from tomochunk.io.ingest import ingest

        def hwm():
            # VmHWM is the high-water mark of this process image; ru_maxrss is not usable
            # here: Linux carries the forked parent's (pytest's) peak over the exec
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024

        rss0 = psutil.Process().memory_info().rss
        ds = ingest({str(src)!r}, {str(tmp_path / 'big.zarr')!r})
        peak = hwm()
        print(json.dumps({{"increase": peak - rss0, "shape": list(ds.projections.shape)}}))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["shape"] == [n, rows, cols]
    # default read_block_mb=64: the increase is about one block plus chunk buffers
    assert info["increase"] < 0.4 * size, f"peak RSS grew by {info['increase'] / 1e6:.0f} MB"
    ds = store.open_scan(tmp_path / "big.zarr")
    with h5py.File(src) as f:
        np.testing.assert_array_equal(ds.projections[:, 500:520].values,
                                      f["exchange/data"][:, 500:520])
