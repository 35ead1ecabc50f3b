"""Preprocessing: TomoPy reference arrays, centre finding on real data, bad-value policy."""

from __future__ import annotations

import logging
import math

import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr

from tomochunk.config import PreprocessConfig
from tomochunk.errors import InputError
from tomochunk.preprocess import (
    check_flat_dark,
    count_nonfinite,
    fill_invalid,
    find_center,
    find_center_registration,
    find_center_vo,
    median_filter_projections,
    median_filter_slices,
    minus_log,
    normalize,
    opposite_pair,
    preprocess_block,
    preprocess_scan,
    remove_stripe_fw,
    remove_stripe_sorting,
)

from ..conftest import shared_file


def expected(name: str) -> np.ndarray:
    return np.load(shared_file("tomopy-expected", f"{name}.npy"))


def disk_sinogram(center: float, n_ang: int = 180, n_cols: int = 128, *,
                  endpoint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Analytic parallel-beam sinogram of a few discs rotating about ``center``."""
    theta = np.linspace(0, np.pi, n_ang, endpoint=endpoint)
    discs = [(5, 3, 20, 0.02), (-25, 8, 8, 0.05), (20, -28, 6, 0.04), (0, 0, 45, 0.01)]
    x = np.arange(n_cols) - center
    sino = np.zeros((n_ang, n_cols))
    for x0, y0, radius, mu in discs:
        p = x0 * np.cos(theta) + y0 * np.sin(theta)
        sino += mu * 2 * np.sqrt(np.clip(radius**2 - (x[None, :] - p[:, None]) ** 2, 0, None))
    return sino.astype(np.float32), theta


def raw_block(seed: int = 0, n_ang: int = 24, n_rows: int = 6, n_cols: int = 40):
    """Raw counts, flats and darks of a smooth synthetic object with Poisson noise."""
    rng = np.random.default_rng(seed)
    sino, _ = disk_sinogram(n_cols / 2 - 0.5, n_ang, n_cols)
    att = np.repeat(sino[:, None, :], n_rows, axis=1) * np.linspace(1, 1.5, n_rows)[None, :, None]
    flat = rng.poisson(1000, (4, n_rows, n_cols)).astype(np.float32) + 100
    dark = rng.poisson(100, (3, n_rows, n_cols)).astype(np.float32)
    proj = rng.poisson(1000 * np.exp(-att)).astype(np.float32) + 100
    return proj, flat, dark


# ---------------------------------------------------------------------------------------
# TomoPy reference arrays


def test_normalize_matches_tomopy_exactly():
    out = normalize(expected("tomo"), expected("flat"), expected("dark"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected("normalize"))  # TomoPy: default rtol 1e-7


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_median_filter_slices_matches_tomopy(axis):
    out = median_filter_slices(expected("cube"), size=3, axis=axis)
    assert out.dtype == np.float32
    np.testing.assert_array_almost_equal(out, expected(f"median_filter_{axis}"), decimal=6)


def test_remove_stripe_fw_matches_tomopy():
    proj = expected("proj")
    out = remove_stripe_fw(proj)
    ref = expected("remove_stripe_fw")
    np.testing.assert_allclose(out, ref, rtol=1e-2)
    assert np.max(np.abs(out - ref) / np.abs(ref)) < 1e-5  # measured 1.0e-6
    # rows are independent: a block of rows and a single sinogram give the same values
    np.testing.assert_array_equal(remove_stripe_fw(proj[:, 2:5]), out[:, 2:5])
    np.testing.assert_allclose(remove_stripe_fw(proj[:, 3]), out[:, 3], rtol=1e-6, atol=1e-6)


def test_remove_stripe_sorting_removes_offset_stripe():
    clean, _ = disk_sinogram(63.5)
    striped = clean.copy()
    striped[:, 70] += 0.2
    out = remove_stripe_sorting(striped, size=21)
    assert out.shape == clean.shape and out.dtype == np.float32
    residual = np.mean(out[:, 70] - clean[:, 70])
    assert abs(residual) < 0.2 / 10  # measured 0.013
    others = np.ones(clean.shape[1], bool)
    others[70] = False
    change = np.abs(out - clean)[:, others]
    assert change.mean() < 0.01 * clean.max()  # measured 0.3 % of the maximum
    # rows are independent
    block = np.stack([striped, striped[:, ::-1]], axis=1)
    np.testing.assert_array_equal(remove_stripe_sorting(block)[:, 0], out)


@pytest.mark.parametrize("size", [1, 4, 21])
def test_sorting_median_equals_scipy(size):
    from scipy import ndimage

    from tomochunk.preprocess.stripe import _median_along_cols

    block = np.random.default_rng(size).random((30, 2, 25)).astype(np.float32)
    ref = ndimage.median_filter(block, size=(1, 1, size), mode="reflect")
    np.testing.assert_array_equal(_median_along_cols(block, size), ref)


# ---------------------------------------------------------------------------------------
# centre of rotation


def test_find_center_vo_tomopy_sinogram():
    sino = expected("sinogram")[:, 0, :]
    # its first and last rows are mirror images about 44.5: the 45 angles include 0 and 180
    com = (sino * np.arange(91)).sum(1) / sino.sum(1)
    assert com[0] + com[-1] == pytest.approx(89.0, abs=1e-4)
    c_plain = find_center_vo(sino, smin=-10, smax=10)  # rows taken as [0, pi)
    c_theta = find_center_vo(sino, theta=np.linspace(0, np.pi, 45), smin=-10, smax=10)
    assert abs(c_plain - 44.75) <= 0.25  # 44.5
    assert abs(c_theta - 44.75) <= 0.25  # 44.75


@pytest.mark.parametrize("center", [64.0, 66.5, 58.75])
def test_find_center_vo_synthetic_exact(center):
    sino, theta = disk_sinogram(center, 180, 128)
    assert find_center_vo(sino, theta=theta) == pytest.approx(center, abs=0.25)


def test_find_center_vo_uses_first_half_turn_of_360_scan():
    half, _ = disk_sinogram(60.25, 90, 128)
    # a second half turn mirrored about the detector middle (63.5), not about the axis:
    # only the first half turn is consistent with 60.25, and only it must be used
    full = np.concatenate([half, half[:, ::-1]])
    theta = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    assert find_center_vo(full, theta=theta) == pytest.approx(60.25, abs=0.25)
    with pytest.raises(InputError, match="cover only 90.00 degrees"):
        find_center_vo(half[:45], theta=np.linspace(0, np.pi / 2, 45, endpoint=False))


def test_find_center_registration_synthetic():
    sino, theta = disk_sinogram(61.3, 181, 128, endpoint=True)
    assert find_center_registration(sino[0], sino[-1]) == pytest.approx(61.3, abs=0.05)
    two_rows = np.stack([sino[0], sino[0] * 2])
    assert find_center_registration(two_rows, np.stack([sino[-1], sino[-1] * 2])) == (
        pytest.approx(61.3, abs=0.05)
    )


def tooth_scan() -> xr.Dataset:
    with h5py.File(shared_file("tomopy-tooth", "tooth.h5"), "r") as f:
        proj = f["/exchange/data"][:]
        flat = f["/exchange/data_white"][:]
        dark = f["/exchange/data_dark"][:]
        theta = np.deg2rad(f["/exchange/theta"][:])
    return xr.Dataset(
        {
            "projections": (("angle", "row", "col"), da.from_array(proj, chunks=(181, 1, 640))),
            "flat": (("flat", "row", "col"), da.from_array(flat)),
            "dark": (("dark", "row", "col"), da.from_array(dark)),
        },
        coords={"theta": ("angle", theta)},
    )


@pytest.mark.parametrize("method", ["vo", "registration"])
def test_find_center_tooth(method):
    scan = tooth_scan()
    center = find_center(scan, PreprocessConfig(center_method=method))
    assert isinstance(center, float)
    assert abs(center - 296) <= 1  # vo: 296.0, registration: 295.7
    per_row = find_center(scan, PreprocessConfig(center_method=method, center_per_slice=True))
    assert per_row.shape == (2,)
    assert np.all(np.abs(per_row - 296) <= 1)


@pytest.mark.parametrize("method", ["vo", "registration"])
def test_find_center_diamond_tiffs(method):
    """Diamond I13 scan: angles -88.2..91.8 degrees, dead pixel [0, 0], COR ~ 85.9."""
    import tifffile

    folder = shared_file("savu-i13-24737")
    proj = np.stack([tifffile.imread(p) for p in sorted((folder / "tiffs").glob("raw_*.tiff"))])
    flat = tifffile.imread(folder / "flat_00001.tiff")[None]
    dark = tifffile.imread(folder / "dark_00001.tiff")[None]
    theta = np.deg2rad(np.loadtxt(folder / "angles.txt")[10:101])
    scan = xr.Dataset(
        {
            "projections": (("angle", "row", "col"), da.from_array(proj)),
            "flat": (("flat", "row", "col"), da.from_array(flat)),
            "dark": (("dark", "row", "col"), da.from_array(dark)),
        },
        coords={"theta": ("angle", theta)},
    )
    center = find_center(scan, PreprocessConfig(center_method=method))
    assert abs(center - 85.9) <= 1  # vo: 86.5, registration: 85.85


def test_find_center_per_slice_follows_a_tilted_axis():
    """Per-slice centres over 11 rows (two read blocks) follow an axis moving 0.5 px a row."""
    truth = 60.0 + 0.5 * np.arange(11)
    sinos = [disk_sinogram(c, 180, 128)[0] for c in truth]
    theta = disk_sinogram(60.0, 180, 128)[1]
    proj = (1000 * np.exp(-np.stack(sinos, axis=1))).astype(np.float32)
    scan = xr.Dataset(
        {
            "projections": (("angle", "row", "col"), da.from_array(proj, chunks=(180, 4, 128))),
            "flat": (("flat", "row", "col"), np.full((2, 11, 128), 1000, np.float32)),
            "dark": (("dark", "row", "col"), np.zeros((1, 11, 128), np.float32)),
        },
        coords={"theta": ("angle", theta)},
    )
    cfg = PreprocessConfig(center_per_slice=True, stripe="none")
    np.testing.assert_allclose(find_center(scan, cfg), truth, atol=0.25)
    global_center = find_center(scan, PreprocessConfig(stripe="none"))  # rows 2, 5, 8
    assert global_center == pytest.approx(truth[5], abs=0.25)


def test_find_center_override_and_no_opposite_pair():
    scan = tooth_scan()
    assert find_center(scan, PreprocessConfig(center=301.25)) == 301.25
    quarter = scan.isel(angle=slice(0, 91))  # 0 .. 90 degrees
    with pytest.raises(InputError, match="no two projections are 180 degrees apart"):
        find_center(quarter, PreprocessConfig(center_method="registration"))
    with pytest.raises(InputError, match="needs a half turn"):
        find_center(quarter, PreprocessConfig(center_method="vo"))


def test_opposite_pair_picks_closest():
    theta = np.deg2rad(np.arange(-88.2, 92, 2.0))  # the Diamond I13 angles
    i, j = opposite_pair(theta)
    assert (i, j) == (0, 90)
    assert math.degrees(theta[j] - theta[i]) == pytest.approx(180.0)


# ---------------------------------------------------------------------------------------
# -log floor, non-finite values, flats and darks


def test_minus_log_floor_and_count():
    trans = np.array([0.0, -1.0, 1e-7, 0.5, 1.0, np.nan, -np.inf, np.inf], dtype=np.float32)
    out, clipped = minus_log(trans, floor=1e-6)
    assert clipped == 3
    np.testing.assert_allclose(out[:3], -np.log(np.float32(1e-6)))
    np.testing.assert_allclose(out[3:5], [np.log(2.0), 0.0], atol=1e-7)
    assert out.dtype == np.float32
    assert np.isnan(out[5]) and np.isnan(out[6]) and out[7] == -np.inf  # never clipped
    with pytest.raises(InputError, match="floor must be > 0"):
        minus_log(trans, floor=0)


def test_count_nonfinite_and_fill():
    a = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    a[0, 2, 2] = np.nan
    a[0, 0, 4] = np.inf
    assert count_nonfinite(a) == 2
    assert count_nonfinite(np.arange(4)) == 0
    filled, n = fill_invalid(a)
    assert n == 2 and count_nonfinite(filled) == 0
    assert filled[0, 2, 2] == 12.0  # median of 10, 11, 13, 14 (same row)
    assert filled[0, 0, 4] == 2.5  # median of 2, 3 (the detector edge adds nothing)
    filled, n = fill_invalid(a, mask=np.eye(5, dtype=bool))
    assert n == 6 and filled[0, 0, 0] == 1.5  # median of 1, 2 (0 itself is masked)
    all_bad, _ = fill_invalid(np.full((2, 3), np.nan))
    np.testing.assert_array_equal(all_bad, 0)


def test_preprocess_block_reports_and_fills_nonfinite(caplog):
    proj, flat, dark = raw_block()
    proj[3, 1, 5] = np.nan
    proj[7, 4, 9] = np.inf
    proj[8, 4, 9] = -np.inf
    cfg = PreprocessConfig(stripe="none")
    with caplog.at_level(logging.WARNING, logger="tomochunk"):
        out, report = preprocess_block(proj, flat, dark, cfg)
    assert report["nonfinite_in"] == 3
    assert report["nonfinite_filled"] == 3
    assert count_nonfinite(out) == 0
    assert "3 NaN/inf values in detector rows 0..5" in caplog.text
    assert out[3, 1, 5] == np.median(out[3, 1, [3, 4, 6, 7]])  # its neighbours in the row


def test_preprocess_block_too_many_nonfinite_names_rows():
    proj, flat, dark = raw_block()
    proj[:, 2, :5] = np.nan  # 120 of 5760 values = 2.1 %
    with pytest.raises(InputError, match=r"2\.08% of the projection values \(120\) are NaN/inf.*"
                       r"in detector rows 12;"):
        preprocess_block(proj, flat, dark, PreprocessConfig(), row_offset=10)


def test_flat_dark_swapped_is_an_error():
    proj, flat, dark = raw_block()
    with pytest.raises(InputError, match=r"flat - dark is <= 0 \(or not finite\) on 100\.0% of "
                       r"the detector pixels.*not swapped"):
        check_flat_dark(dark, flat)
    with pytest.raises(InputError, match="flat - dark is <= 0"):
        preprocess_block(proj, dark, flat, PreprocessConfig())


def test_flat_dark_wrong_shapes():
    proj, flat, dark = raw_block()
    with pytest.raises(InputError, match=r"flat frames have shape \(4, 6, 39\) but projections "
                       r"have shape \(24, 6, 40\)"):
        preprocess_block(proj, flat[..., :39], dark[..., :39], PreprocessConfig())
    with pytest.raises(InputError, match=r"flat frames have shape \(4, 6, 40\) but dark frames "
                       r"have shape \(3, 5, 40\)"):
        check_flat_dark(flat, dark[:, :5])
    with pytest.raises(InputError, match="give both flat and dark"):
        preprocess_block(proj, flat, None, PreprocessConfig())


def test_isolated_dead_pixel_is_counted_and_filled():
    """Like the Diamond TIFFs: pixel [0, 0] is 0 in every frame, flats and darks included."""
    import tifffile

    flat_real = tifffile.imread(shared_file("savu-i13-24737", "flat_00001.tiff"))
    dark_real = tifffile.imread(shared_file("savu-i13-24737", "dark_00001.tiff"))
    check_flat_dark(flat_real, dark_real)  # one dead pixel of 21600: no error

    proj, flat, dark = raw_block()
    proj[:, 0, 0] = flat[:, 0, 0] = dark[:, 0, 0] = 0
    out, report = preprocess_block(proj, flat, dark, PreprocessConfig(stripe="none"))
    assert report["dead_pixels"] == 1
    assert report["filled"] == proj.shape[0]
    assert report["nonfinite_filled"] == 0
    np.testing.assert_array_equal(out[:, 0, 0], np.median(out[:, 0, [1, 2]], axis=1))
    assert out[:, 0, 0].max() < 3  # not -log(1e-6) = 13.8


# ---------------------------------------------------------------------------------------
# the chain and its blocks


@pytest.mark.parametrize("stripe", ["fw", "sorting", "none"])
def test_preprocess_block_equals_chain(stripe):
    proj, flat, dark = raw_block()
    cfg = PreprocessConfig(stripe=stripe, projection_median=1, flat_reduce="median")
    out, report = preprocess_block(proj, flat, dark, cfg)

    trans = normalize(proj, flat, dark, flat_reduce="median")
    att, clipped = minus_log(trans, cfg.log_floor)
    att = median_filter_projections(att, 1)
    if stripe == "fw":
        att = remove_stripe_fw(att)
    elif stripe == "sorting":
        att = remove_stripe_sorting(att, size=21)
    assert out.dtype == np.float32 and out.shape == proj.shape
    np.testing.assert_array_equal(out, att)
    assert report["clipped"] == clipped
    assert report["nonfinite_in"] == 0 and report["dead_pixels"] == 0


def test_median_halo_and_preprocess_scan_chunked_equals_whole():
    proj, flat, dark = raw_block(n_rows=7)
    whole = median_filter_projections(proj, 1)
    np.testing.assert_array_equal(median_filter_projections(proj[:, 1:6], 1, row_halo=1),
                                  whole[:, 2:5])
    np.testing.assert_array_equal(median_filter_projections(proj[:, 0:4], 1, row_halo=(0, 1)),
                                  whole[:, 0:3])

    proj[5, 3, 7] = np.nan  # in-filled identically in blocks and whole (row 3 starts a block)
    flat[:, 2, 9] = 0  # a dead pixel on the last row of the first block
    cfg = PreprocessConfig(stripe="fw", projection_median=1)
    ref, report = preprocess_block(proj, flat, dark, cfg)
    assert report["nonfinite_filled"] == 1 and report["dead_pixels"] == 1
    scan = xr.Dataset(
        {
            "projections": (("angle", "row", "col"), da.from_array(proj, chunks=(24, 2, 40))),
            "flat": (("flat", "row", "col"), da.from_array(flat)),
            "dark": (("dark", "row", "col"), da.from_array(dark)),
        },
        coords={"theta": ("angle", np.linspace(0, np.pi, 24, endpoint=False))},
    )
    _, report_mid = preprocess_block(proj[:, 2:7], flat[:, 2:7], dark[:, 2:7], cfg,
                                     row_offset=2, row_halo=1)
    assert report_mid["nonfinite_filled"] == 1 and report_mid["dead_pixels"] == 0  # halo rows
    _, report_top = preprocess_block(proj[:, 0:4], flat[:, 0:4], dark[:, 0:4], cfg,
                                     row_halo=(0, 1))
    assert report_top["nonfinite_filled"] == 0 and report_top["dead_pixels"] == 1
    lazy = preprocess_scan(scan, cfg, rows_per_block=3)
    assert lazy.dims == ("angle", "row", "col") and lazy.chunks[1] == (3, 3, 1)
    np.testing.assert_array_equal(lazy.values, ref)
