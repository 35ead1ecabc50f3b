"""The reconstruction stage on scans: store layout, chunking, clusters, real data, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.conftest import shared_file
from tomochunk.config import PreprocessConfig, ReconConfig
from tomochunk.errors import (
    BackendUnavailableError,
    ConfigError,
    InputError,
    OutputExistsError,
)
from tomochunk.io import store
from tomochunk.phantom import demo_spec, simulate_scan
from tomochunk.recon import RECONSTRUCTORS, circle_mask, reconstruct


@pytest.fixture(scope="module")
def phantom_scan() -> tuple[xr.Dataset, np.ndarray]:
    return simulate_scan(demo_spec("test"))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_store_layout_and_accuracy(phantom_scan, tmp_path: Path) -> None:
    scan, truth = phantom_scan
    out = tmp_path / "recon.zarr"
    rec = reconstruct(scan, out, stripe="none", center=31.5, rows_per_block=4)
    assert store.is_complete(out)
    n_z, n = truth.shape[0], truth.shape[1]
    assert rec.full.dims == ("z", "y", "x") and rec.full.shape == (n_z, n, n)
    assert rec.split.dims == ("split", "z", "y", "x") and rec.split.shape == (2, n_z, n, n)
    assert rec.full.dtype == np.float32 and rec.split.dtype == np.float32
    a = rec.attrs
    assert a["center"] == 31.5 and a["filter"] == "shepp" and a["algorithm"] == "native"
    assert a["n_splits"] == 2 and a["angles_per_split"] == [45, 45] and a["stripe"] == "none"
    assert a["full_from"] == "mean_of_splits"
    assert a["pixel_size_um"] == pytest.approx(0.05)
    np.testing.assert_allclose(rec.z.values, np.arange(n_z) * 0.05)
    assert rec.x.attrs["units"] == "um"
    full, split = rec.full.values, rec.split.values
    m = circle_mask(n)
    # attenuation per pixel: the same scale as the truth (noisy, 90 angles, 64 px)
    fit = np.polyfit(truth[:, m].ravel(), full[:, m].ravel(), 1)[0]
    assert fit == pytest.approx(1.0, abs=0.1)
    assert _corr(full[:, m], truth[:, m]) > 0.8
    np.testing.assert_allclose(full, split.mean(axis=0), atol=1e-6)
    assert 0.3 < _corr(split[0][:, m], split[1][:, m]) < 0.95  # independent noise


def test_chunking_invariance_and_lazy_result(phantom_scan, tmp_path: Path) -> None:
    scan, _ = phantom_scan
    lazy = reconstruct(scan, stripe="none", center=31.5, rows_per_block=16, threads=1)
    assert lazy.full.chunks is not None and not (tmp_path / "x").exists()
    whole = lazy.compute()
    blocked = reconstruct(scan, tmp_path / "r.zarr", stripe="none", center=31.5,
                          rows_per_block=4, threads=1)
    assert blocked.full.encoding["chunks"][0] == 4
    np.testing.assert_array_equal(blocked.full.values, whole.full.values)
    np.testing.assert_array_equal(blocked.split.values, whole.split.values)
    # odd blocks pair different rows in the packed transforms: equal to the NUFFT accuracy
    odd = reconstruct(scan, stripe="none", center=31.5, rows_per_block=3, threads=1)
    scale = float(np.abs(whole.full).max())
    np.testing.assert_allclose(odd.full.values, whole.full.values, atol=2e-4 * scale)


@pytest.mark.cluster
def test_local_cluster_gives_the_same_volume(phantom_scan, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    scan, _ = phantom_scan
    path = tmp_path / "scan.zarr"
    from tomochunk.io.ingest import ingest

    ingest(scan, path)
    ref = reconstruct(path, stripe="fw", center=31.5, rows_per_block=4, threads=1).compute()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        rec = reconstruct(path, tmp_path / "recon.zarr", stripe="fw", center=31.5,
                          rows_per_block=4)  # threads: 1 per task on a cluster
    np.testing.assert_array_equal(rec.full.values, ref.full.values)
    np.testing.assert_array_equal(rec.split.values, ref.split.values)


def test_tooth_full_and_halves_with_auto_centre(tmp_path: Path) -> None:
    import h5py

    from tomochunk.io.ingest import from_arrays

    with h5py.File(shared_file("tomopy-tooth", "tooth.h5"), "r") as f:
        proj = f["/exchange/data"][...]
        flat = f["/exchange/data_white"][...]
        dark = f["/exchange/data_dark"][...]
        theta = f["/exchange/theta"][...]
    scan = from_arrays(proj, theta, flat, dark, theta_unit="deg")
    with pytest.warns(UserWarning, match=r"\[91, 90\] angles"):
        rec = reconstruct(scan, tmp_path / "tooth.zarr", center="auto", stripe="none",
                          circle=True)
    assert 294.0 <= rec.attrs["center"] <= 298.0  # SOURCES.md: 295.5-296
    assert rec.attrs["angles_per_split"] == [91, 90]
    assert rec.attrs["full_from"] == "all_angles"
    full, split = rec.full.values, rec.split.values
    assert full.shape == (2, 640, 640) and split.shape == (2, 2, 640, 640)
    m = circle_mask(640)
    for j in range(2):
        assert _corr(split[j][:, m], full[:, m]) > 0.9
    # a tooth, not noise: attenuation inside it is well above the background
    assert np.percentile(full[:, m], 99) > 10 * np.abs(np.median(full[:, m]))
    # the mean of unequal halves is still close to the full reconstruction
    assert _corr(split.mean(0)[:, m], full[:, m]) > 0.999


def test_per_slice_centres_and_astra_backend(phantom_scan) -> None:
    scan, _ = phantom_scan
    rec = reconstruct(scan, center_per_slice=True, stripe="none")
    centres = rec.attrs["center"]
    assert isinstance(centres, list) and len(centres) == 16
    assert all(30.0 <= c <= 33.0 for c in centres)  # the phantom's axis is at 31.5
    if not RECONSTRUCTORS.available()["astra"]:
        pytest.skip("astra-toolbox is not installed")
    nat = reconstruct(scan, center=31.5, stripe="none", filter="ramlak").full.values
    ast = reconstruct(scan, center=31.5, stripe="none", filter="ramlak",
                      backend="astra").full.values
    m = circle_mask(64)
    assert _corr(ast[:, m], nat[:, m]) > 0.95  # noisy 90-angle data, different interpolation


# --------------------------------------------------------------------------- bad input


def test_existing_output_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "recon.zarr"
    out.mkdir()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        reconstruct(tmp_path / "no-such-scan.zarr", out)  # the scan is never opened


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"center": 80.0}, InputError, r"centre of rotation 80.0 is outside the detector "
                                       r"columns 0..63"),
        ({"center": -1.0}, InputError, "outside the detector"),
        ({"backend": "gridrec"}, ConfigError, "valid names are: astra, auto, cufinufft, native"),
        ({"filter": "gauss"}, ConfigError, "valid filters are: shepp, ramlak"),
        ({"splits": 91}, InputError, "larger than the number of projection angles"),
        ({"splits": 46}, InputError, "at least 2 angles"),
        ({"splits": 1}, ConfigError, "K >= 2"),
        ({"bogus": 1}, ConfigError, "unknown option.*bogus"),
        ({"backend": "astra", "filter": "butterworth"}, ConfigError, "astra backend"),
    ],
)
def test_bad_options(phantom_scan, tmp_path: Path, kwargs, error, message) -> None:
    scan, _ = phantom_scan
    kwargs = {"center": 31.5, **kwargs}
    with pytest.raises(error, match=message):
        reconstruct(scan, tmp_path / "r.zarr", **kwargs)
    assert not any(tmp_path.iterdir())


def test_tomopy_backend_unavailable_is_explained(phantom_scan, tmp_path: Path) -> None:
    if RECONSTRUCTORS.available()["tomopy"]:
        pytest.skip("tomopy is installed here")
    with pytest.raises(BackendUnavailableError, match="install tomopy"):
        reconstruct(phantom_scan[0], backend="tomopy", center=31.5)


def test_limited_angles_warn(phantom_scan) -> None:
    scan, _ = phantom_scan
    part = scan.isel(angle=slice(0, 44))  # 0..86 degrees
    with pytest.warns(UserWarning, match="cover only 88.0 degrees"):
        reconstruct(part, center=31.5, stripe="none")


def test_nan_rows_are_named_and_nothing_is_left(phantom_scan, tmp_path: Path) -> None:
    scan, _ = phantom_scan
    proj = scan.projections.values.copy()
    proj[:, 5, :] = np.nan
    proj[:, 9, :20] = np.nan
    bad = scan.copy()
    bad["projections"] = (("angle", "row", "col"), proj)
    out = tmp_path / "r.zarr"
    with pytest.raises(InputError, match=r"detector rows 5, 9"):
        reconstruct(bad, out, center=31.5, stripe="none", rows_per_block=16)
    assert not any(tmp_path.iterdir())


def test_per_slice_centres_length_is_checked(phantom_scan) -> None:
    from tomochunk.recon import check_center

    assert check_center(np.full(16, 31.5), 64, 16).shape == (16,)
    with pytest.raises(InputError, match="3 per-slice centres given for 16 detector rows"):
        check_center(np.full(3, 31.5), 64, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PreprocessConfig(center=31.5)
        ReconConfig()
