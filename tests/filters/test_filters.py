"""Baseline filters: chunked == whole-volume reference, store output, bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy import ndimage as ndi
from skimage.restoration import denoise_nl_means

from tomochunk.config import FilterConfig
from tomochunk.errors import ConfigError, InputError, OutputExistsError
from tomochunk.filters import (
    FILTERS,
    apply_filter,
    footprint_array,
    iternlm,
    iternlm_halo,
    median,
    nlm,
)
from tomochunk.io.store import is_complete, write_dataset

RNG = np.random.default_rng(7)


def _phantom(shape=(23, 20, 21), noise=0.15, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    truth[:, 5:15, 5:16] = 1.0
    truth[4:18, 8:12, 2:19] = 0.5
    truth += np.linspace(0, 0.3, shape[0], dtype=np.float32)[:, None, None]
    return (truth + rng.normal(scale=noise, size=shape)).astype(np.float32), truth


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


# ----------------------------------------------------------------------------- median


@pytest.mark.parametrize("radius,footprint", [(1, "cube"), (2, "ball"), (3, "ball")])
@pytest.mark.parametrize("chunk_z", [1, 2, 5, 7, 23, 40])
def test_median_chunked_equals_scipy_exactly(radius, footprint, chunk_z):
    vol, _ = _phantom()
    ref = ndi.median_filter(vol, footprint=footprint_array(radius, footprint))
    # 23 = 3*7 + 2: with chunk_z 7 the last chunk (2 slices) is smaller than the halo (3)
    out = median(da.from_array(vol, chunks=(chunk_z, -1, -1)), radius, footprint).compute()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 27, 33, 64, 123, 125])
def test_selection_network_picks_the_rank(n):
    from tomochunk.filters.selection import oddeven_merge_sort, selection_network

    rng = np.random.default_rng(n)
    # ties (rounded values) and distinct values, many random orders at once
    x = np.round(rng.normal(size=(n, 3000)), 1 if n > 8 else 3)
    ref = np.sort(x, axis=0)
    w = list(x.copy())
    for a, b in oddeven_merge_sort(n):
        w[a], w[b] = np.minimum(w[a], w[b]), np.maximum(w[a], w[b])
    np.testing.assert_array_equal(np.array(w), ref)
    for rank in {0, n // 2, n - 1}:
        w = list(x.copy())
        for a, b, need_min, need_max in selection_network(n, rank):
            lo, hi = np.minimum(w[a], w[b]), np.maximum(w[a], w[b])
            if need_min:
                w[a] = lo
            if need_max:
                w[b] = hi
        np.testing.assert_array_equal(w[rank], ref[rank])
    assert len(selection_network(33, 16)) < len(oddeven_merge_sort(33))


@pytest.mark.parametrize("shape", [(6, 17, 23), (1, 5, 5), (2, 9, 6), (3, 8, 40)])
@pytest.mark.parametrize("fp_shape,rank", [((5, 5, 5), None), ((3, 3, 3), 0), ((1, 3, 5), 14),
                                           ((3, 1, 1), 2)])
def test_rank_filter_equals_scipy(shape, fp_shape, rank):
    from tomochunk.filters import rank_filter

    rng = np.random.default_rng(sum(shape))
    vol = rng.normal(size=shape).astype(np.float32)
    fp = footprint_array(2, "ball") if fp_shape == (5, 5, 5) else np.ones(fp_shape, bool)
    if fp.shape[1] > shape[1] or fp.shape[2] > shape[2]:
        pytest.skip("footprint wider than the slice")
    rank = int(fp.sum()) // 2 if rank is None else rank
    ref = ndi.rank_filter(vol, rank, footprint=fp, mode="reflect")
    # tiny blocks: several blocks per slice, the last one partial
    for block in (7, 65536):
        np.testing.assert_array_equal(rank_filter(vol, fp, rank, block_voxels=block), ref)
    np.testing.assert_array_equal(rank_filter(vol, fp, rank, z_range=(shape[0] - 1, shape[0])),
                                  ref[-1:])


def test_median_engines_agree_and_bad_engine():
    vol, _ = _phantom()
    vol64 = vol.astype(np.float64)  # computed in float32 either way: same values
    ref = median(vol64, 2, engine="scipy")
    np.testing.assert_array_equal(median(vol64, 2, engine="network"), ref)
    np.testing.assert_array_equal(median(vol, 2, chunk_z=4, engine="scipy"), ref)
    with pytest.raises(ConfigError, match="valid engines are: auto, network, scipy"):
        median(vol, 2, engine="numba")


def test_median_input_chunks_differ_from_task_chunks():
    vol, _ = _phantom()
    ref = ndi.median_filter(vol, footprint=footprint_array(2, "ball"))
    lazy = median(da.from_array(vol, chunks=(3, 7, 21)), 2, chunk_z=5)
    assert lazy.chunks[0] == (5, 5, 5, 5, 3)
    np.testing.assert_array_equal(lazy.compute(), ref)


def test_footprints():
    ball = footprint_array(2, "ball")
    assert ball.shape == (5, 5, 5) and ball.sum() == 33  # lattice points with |p| <= 2
    assert footprint_array(1, "cube").sum() == 27


def test_median_dataarray_keeps_coords_and_numpy_type():
    vol, _ = _phantom()
    arr = xr.DataArray(vol, dims=("z", "y", "x"),
                       coords={"z": np.arange(23) * 0.5, "y": np.arange(20), "x": np.arange(21)})
    out = median(arr, radius=1)
    assert isinstance(out, xr.DataArray) and isinstance(out.data, np.ndarray)
    assert out.name == "median" and out.attrs["radius"] == 1
    xr.testing.assert_equal(out.z, arr.z)
    assert isinstance(median(vol, 1), np.ndarray)


def test_median_reduces_noise():
    vol, truth = _phantom(noise=0.3)
    assert _rmse(median(vol, 2), truth) < 0.6 * _rmse(vol, truth)


@pytest.mark.parametrize("radius", [0, -1, 11])
def test_median_bad_radius(radius):
    vol, _ = _phantom()
    with pytest.raises(ConfigError, match="radius"):
        median(vol, radius)


def test_median_radius_error_names_fix():
    with pytest.raises(ConfigError, match=r"use a radius <= 9"):
        median(np.zeros((4, 19, 30), np.float32), 10)
    with pytest.raises(ConfigError, match=r"must be >= 1 voxel"):
        median(np.zeros((19, 30, 30), np.float32), 0)


def test_bad_volume_and_footprint():
    with pytest.raises(InputError, match="must be 3D"):
        median(np.zeros((4, 4), np.float32), 1)
    with pytest.raises(ConfigError, match="valid footprints are: ball, cube"):
        median(np.zeros((9, 9, 9), np.float32), 1, footprint="disk")
    with pytest.raises(ConfigError, match="chunk_z"):
        median(np.zeros((9, 9, 9), np.float32), 1, chunk_z=0)


# ----------------------------------------------------------------------------- nlm


@pytest.mark.parametrize("chunk_z", [1, 3, 6, 23])
def test_nlm_chunked_equals_whole_fixed_sigma(chunk_z):
    vol, _ = _phantom()
    sigma = 0.15
    ref = denoise_nl_means(vol, patch_size=3, patch_distance=2, h=0.8 * sigma, sigma=sigma,
                           fast_mode=True, channel_axis=None)
    out = nlm(da.from_array(vol, chunks=(chunk_z, -1, -1)), 3, 2, 0.8, sigma=sigma).compute()
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


def test_nlm_sigma_estimated_per_chunk_adapts_along_z():
    """Noise 0.05 in the top half, 0.3 in the bottom: per-chunk sigma follows it."""
    rng = np.random.default_rng(1)
    truth = np.zeros((16, 24, 24), np.float32)
    truth[:, 6:18, 6:18] = 1
    scale = np.where(np.arange(16) < 8, 0.05, 0.3)[:, None, None]
    vol = (truth + scale * rng.normal(size=truth.shape)).astype(np.float32)
    out = nlm(vol, 3, 2, 0.8, chunk_z=8)
    whole = nlm(vol, 3, 2, 0.8)  # one sigma for the whole volume (between the two)
    # the quiet half is smoothed less (detail kept), the noisy half more than with one sigma
    assert _rmse(out[8:], truth[8:]) < _rmse(whole[8:], truth[8:])
    assert _rmse(out[8:], truth[8:]) < 0.5 * _rmse(vol[8:], truth[8:])
    assert np.abs(out[:8] - vol[:8]).mean() < np.abs(whole[:8] - vol[:8]).mean()


def test_nlm_bad_params():
    vol = np.zeros((9, 9, 9), np.float32)
    with pytest.raises(ConfigError, match="h .* must be > 0"):
        nlm(vol, h=0)
    with pytest.raises(ConfigError, match="patch_size 11 is larger"):
        nlm(vol, patch_size=11)


# ----------------------------------------------------------------------------- iternlm


@pytest.mark.parametrize("sigma", [0.15, None])
@pytest.mark.parametrize("chunk_z", [1, 4, 7])
def test_iternlm_chunked_equals_whole(chunk_z, sigma):
    vol, _ = _phantom(shape=(17, 18, 18))
    kw = dict(iterations=3, patch_size=3, patch_distance=1, sigma=sigma)
    assert iternlm_halo(3, 3, 1) == 6  # > chunk 4 and the last chunk of 7 (3 slices)
    ref = iternlm(vol, **kw)
    out = iternlm(da.from_array(vol, chunks=(chunk_z, -1, -1)), **kw).compute()
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


def test_iternlm_denoises_and_iterations_help():
    vol, truth = _phantom(shape=(16, 24, 24), noise=0.2)
    one = iternlm(vol, iterations=1, patch_distance=2, h=0.6)
    four = iternlm(vol, iterations=4, patch_distance=2, h=0.6)
    assert _rmse(one, truth) < 0.4 * _rmse(vol, truth)
    assert _rmse(four, truth) < _rmse(one, truth)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_iternlm_bad_iterations(bad):
    # True is an int to Python; the Params and the function refuse it alike
    with pytest.raises(ConfigError, match=r"iterations must be a positive integer"):
        iternlm(np.zeros((9, 9, 9), np.float32), iterations=bad)


# ----------------------------------------------------------------------------- store + registry


@pytest.fixture
def recon_store(tmp_path):
    vol, _ = _phantom()
    coords = {"z": np.arange(23) * 0.5, "y": np.arange(20) * 0.5, "x": np.arange(21) * 0.5}
    ds = xr.Dataset(
        {"full": (("z", "y", "x"), da.from_array(vol, chunks=(8, -1, -1))),
         "split": (("split", "z", "y", "x"), da.from_array(np.stack([vol, vol]),
                                                            chunks=(1, 8, -1, -1)))},
        coords=coords, attrs={"pixel_size_um": 0.5, "filter": "shepp"},
    )
    path = tmp_path / "recon.zarr"
    write_dataset(ds, path)
    return path, vol


def test_apply_filter_writes_store(recon_store, tmp_path):
    path, vol = recon_store
    out = tmp_path / "median.zarr"
    ds = apply_filter(path, out, method="median", config=FilterConfig(radius=2, chunk_z=5))
    assert is_complete(out)
    assert list(ds.data_vars) == ["median"] and ds["median"].dtype == np.float32
    np.testing.assert_array_equal(ds["median"].values,
                                  ndi.median_filter(vol, footprint=footprint_array(2, "ball")))
    np.testing.assert_array_equal(ds.z.values, np.arange(23) * 0.5)
    assert ds.attrs["filter_params"] == {"radius": 2, "footprint": "ball", "chunk_z": 5}
    assert ds.attrs["recon_pixel_size_um"] == 0.5
    with pytest.raises(OutputExistsError, match="--overwrite"):
        apply_filter(path, out, method="median")
    # the fixture's two splits are identical: the split difference cannot give a sigma
    apply_filter(path, out, method="nlm", overwrite=True,
                 config=FilterConfig(nlm_patch_distance=2, sigma="wavelet"))
    assert not any(p.name.startswith(".median.zarr") for p in tmp_path.iterdir())


def test_apply_filter_bad_input_before_work(recon_store, tmp_path):
    path, _ = recon_store
    with pytest.raises(ConfigError, match="valid names are: iternlm, median, nlm"):
        apply_filter(path, tmp_path / "x.zarr", method="gauss")
    with pytest.raises(ConfigError, match="radius"):
        apply_filter(path, tmp_path / "x.zarr", method="median", config=FilterConfig(radius=0))
    with pytest.raises(InputError, match="does not exist"):
        apply_filter(tmp_path / "nope.zarr", tmp_path / "x.zarr", method="median")
    assert not (tmp_path / "x.zarr").exists()
    assert not any(p.name.startswith(".x.zarr") for p in tmp_path.iterdir())


def test_registry():
    assert FILTERS.names() == ["iternlm", "median", "nlm"]
    assert FILTERS.get("median") is median


def test_projection_median_preprocessing_option():
    """The paper's alternative: a 2D median on every projection before reconstruction."""
    from tomochunk.config import PreprocessConfig

    assert PreprocessConfig().projection_median == 0  # off by default, a radius when > 0
    pre = pytest.importorskip("tomochunk.preprocess")
    proj = RNG.normal(size=(6, 10, 12)).astype(np.float32)
    out = pre.median_filter_projections(proj, 1)
    ref = np.stack([ndi.median_filter(p, size=3) for p in proj])
    np.testing.assert_array_equal(out, ref)


def test_accessor_filters(recon_store):
    import tomochunk.accessor  # noqa: F401 - registers .tomo
    from tomochunk.io.store import open_recon

    path, vol = recon_store
    rec = open_recon(path)
    out = rec.full.tomo.median(radius=1, chunk_z=4)
    assert out.chunks[0][0] == 4 and out.name == "median"
    np.testing.assert_array_equal(out.values, median(vol, 1))
    np.testing.assert_array_equal(rec.tomo.median(radius=1).values, median(vol, 1))
    np.testing.assert_allclose(rec.full.tomo.nlm(patch_distance=2, sigma=0.1).values,
                               nlm(vol, patch_distance=2, sigma=0.1), atol=1e-5)
    with pytest.raises(InputError, match="split volumes"):
        rec.full.tomo.denoise("model")


def test_apply_filter_iternlm_store(recon_store, tmp_path):
    path, vol = recon_store
    cfg = FilterConfig(iternlm_iterations=2, iternlm_patch_distance=1, chunk_z=4,
                       sigma="wavelet")
    ds = apply_filter(path, tmp_path / "it.zarr", method="iternlm", config=cfg)
    assert ds.attrs["filter_params"]["patch_distance"] == 1
    np.testing.assert_allclose(ds["iternlm"].values,
                               iternlm(vol, iterations=2, patch_distance=1), atol=1e-5)


@pytest.fixture(scope="module")
def tcp_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      protocol="tcp://", dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_cli_filter(recon_store, tmp_path, tcp_cluster):
    from click.testing import CliRunner

    from tomochunk.cli import main

    path, vol = recon_store
    out = tmp_path / "m.zarr"
    args = ["filter", str(path), str(out), "--method", "median", "--radius", "1",
            "--chunk-z", "5", "--scheduler", tcp_cluster, "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    from tomochunk.io.store import open_store

    np.testing.assert_array_equal(open_store(out)["median"].values, median(vol, 1))
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "already exists" in res.output
    res = CliRunner().invoke(main, [*args[:6], "0", "--scheduler", tcp_cluster, "--overwrite"])
    assert res.exit_code == 2 and "radius must be >= 1" in res.output


@pytest.mark.parametrize("n_z", [1, 2, 3])
def test_thin_volumes_thinner_than_the_footprint(n_z):
    """A few detector rows (the tooth has 2): z thinner than the footprint still works and
    chunked equals whole (the reflecting boundary of scipy / scikit-image)."""
    import scipy.ndimage as ndi

    from tomochunk.filters import footprint_array, median, nlm

    vol = np.random.default_rng(n_z).random((n_z, 24, 24)).astype(np.float32)
    ref = ndi.median_filter(vol, footprint=footprint_array(2, "ball"), mode="reflect")
    for chunk_z in (None, 1):
        np.testing.assert_array_equal(median(vol, radius=2, chunk_z=chunk_z), ref)
    whole = nlm(vol, sigma=0.1)
    assert whole.shape == vol.shape
    np.testing.assert_allclose(nlm(vol, sigma=0.1, chunk_z=1), whole, atol=1e-5)
