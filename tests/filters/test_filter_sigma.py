"""NLM noise level from the split difference (FilterConfig.sigma = auto-split)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage as ndi

from tomochunk.config import FilterConfig, from_dict
from tomochunk.errors import ConfigError, InputError
from tomochunk.filters import apply_filter, resolve_sigma, slice_noise, split_sigma
from tomochunk.io.store import write_dataset


def _correlated(rng, shape, std):
    """Low-pass correlated noise (like FBP noise after the interpolation), exact std."""
    n = ndi.gaussian_filter(rng.normal(size=shape), (0, 1.2, 1.2))
    return n / n.std() * std


def _two_identical_slices(sigma=0.2, seed=0):
    """Two z-slices that are identical, K=2 splits with independent noise of the same kind."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :40] - 19.5
    t = ((np.hypot(yy, xx) < 12) * 1.0 + (np.abs(yy) < 4) * 0.5).astype(np.float32)
    truth = np.stack([t, t])
    # each split has twice the full reconstruction's noise variance
    n0 = _correlated(rng, (1, 40, 40), sigma * np.sqrt(2))
    n1 = _correlated(rng, (1, 40, 40), sigma * np.sqrt(2))
    s0, s1 = truth + n0, truth + n1  # both z-slices identical in each split
    full = (s0 + s1) / 2
    return truth, full.astype(np.float32), np.stack([s0, s1]).astype(np.float32)


def test_split_sigma_measures_the_full_noise():
    truth, full, split = _two_identical_slices(sigma=0.2)
    assert split_sigma(split[0], split[1], 2) == pytest.approx(np.std(full - truth), rel=0.1)
    # K = 4: each split has 4x the full variance
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 0.2 * 2, (2, 3, 50, 50))
    assert split_sigma(a, b, 4) == pytest.approx(0.2, rel=0.05)
    assert split_sigma(a, a, 2) == 0.0


def test_auto_split_nlm_denoises_two_identical_slices_where_wavelet_does_not(tmp_path):
    truth, full, split = _two_identical_slices(sigma=0.2)
    wavelet = slice_noise(full)
    assert np.all(wavelet < 0.5 * 0.2)  # the wavelet estimate misses correlated noise
    ds = xr.Dataset({"full": (("z", "y", "x"), full),
                     "split": (("split", "z", "y", "x"), split)}, attrs={"n_splits": 2})
    path = tmp_path / "recon.zarr"
    write_dataset(ds, path)
    assert resolve_sigma("auto-split", ds) == pytest.approx(0.2, rel=0.1)
    err0 = np.sqrt(np.mean((full - truth) ** 2))
    errs = {}
    for method in ("nlm", "iternlm"):
        for mode in ("auto-split", "wavelet"):
            cfg = FilterConfig(sigma=mode, nlm_patch_distance=3, iternlm_iterations=2,
                               iternlm_patch_distance=2)
            out = apply_filter(path, tmp_path / f"{method}-{mode}.zarr", method=method,
                               config=cfg)[method].values
            errs[method, mode] = np.sqrt(np.mean((out - truth) ** 2))
        assert errs[method, "wavelet"] > 0.95 * err0  # ~0 sigma: NLM returns its input
        assert errs[method, "auto-split"] < 0.85 * err0, (method, errs, err0)
        assert errs[method, "auto-split"] < 0.9 * errs[method, "wavelet"], (method, errs)


def test_sigma_setting_validation(tmp_path):
    assert resolve_sigma("wavelet") is None and resolve_sigma(0.3) == 0.3
    assert from_dict(FilterConfig, {"sigma": 0.5}).sigma == 0.5
    assert FilterConfig().sigma == "auto-split"
    with pytest.raises(ConfigError, match="sigma"):
        from_dict(FilterConfig, {"sigma": "mad"})
    with pytest.raises(ConfigError, match="> 0"):
        resolve_sigma(0.0)
    full = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(InputError, match="split volumes"):
        resolve_sigma("auto-split", xr.Dataset({"full": (("z", "y", "x"), full)}))
    same = xr.Dataset({"full": (("z", "y", "x"), full),
                       "split": (("split", "z", "y", "x"), np.stack([full + 1, full + 1]))})
    path = tmp_path / "r.zarr"
    write_dataset(same, path)
    with pytest.raises(InputError, match="identical"):
        apply_filter(path, tmp_path / "n.zarr", method="nlm")
    assert not (tmp_path / "n.zarr").exists()


def test_cli_filter_sigma(tmp_path):
    from click.testing import CliRunner
    from distributed import LocalCluster

    from tomochunk.cli import main

    truth, full, split = _two_identical_slices()
    same = xr.Dataset({"full": (("z", "y", "x"), full),
                       "split": (("split", "z", "y", "x"), np.stack([full, full]))})
    path = tmp_path / "r.zarr"
    write_dataset(same, path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        base = ["filter", str(path), str(tmp_path / "n.zarr"), "--method", "nlm",
                "--scheduler", cluster.scheduler_address, "-q"]
        res = CliRunner().invoke(main, base)
        assert res.exit_code == 2 and "identical" in res.output
        res = CliRunner().invoke(main, [*base, "--sigma", "mad"])
        assert res.exit_code == 2 and "--sigma" in res.output
        res = CliRunner().invoke(main, [*base, "--sigma", "0.2"])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(main, [*base, "--sigma", "wavelet", "--overwrite"])
        assert res.exit_code == 0, res.output
