"""Report sections: segmentation against the truth and the opt-in truth-free table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from tests.report.test_report import _coords, _make_run, _write
from tomochunk.config import ReportConfig
from tomochunk.errors import InputError
from tomochunk.io.store import write_dataset
from tomochunk.metrics.truthfree import holdout_datasets
from tomochunk.report import make_report


def test_report_segmentation_and_truth_free_tables(tmp_path):
    run, truth = _make_run(tmp_path)
    rng = np.random.default_rng(11)
    gain = 0.05  # as _make_run: the reconstructions' units
    ref = np.stack([gain * truth + rng.normal(size=truth.shape) * gain * 0.5
                    for _ in range(2)]).astype(np.float32)
    _write(tmp_path / "ref.zarr", "split", ref)
    out = make_report(run, tmp_path / "rep",
                      config=ReportConfig(truth_free_reference=str(tmp_path / "ref.zarr")))
    m = json.loads((out / "metrics.json").read_text())
    seg = m["segmentation"]["methods"]
    assert seg["ml"]["mean_dice"] > seg["unfiltered"]["mean_dice"] + 0.05
    assert 0 < m["segmentation"]["truth_porosity"] < 1
    tf = m["truth_free"]["methods"]
    # the good denoiser (most noise removed) has the lowest estimated error, as in truth
    assert tf["ml"]["rmse"] < tf["median"]["rmse"] < tf["unfiltered"]["rmse"]
    assert tf["unfiltered"]["noise_var"] == pytest.approx((gain * 0.5) ** 2 / 2, rel=0.15)
    html = (out / "index.html").read_text()
    assert "Segmentation against the truth" in html and "Truth-free quality" in html
    # a reference of another grid is one clear error, before any work
    write_dataset(xr.Dataset({"split": (("split", "z", "y", "x"), ref[:, :-1])}),
                  tmp_path / "bad.zarr")
    with pytest.raises(InputError, match="same grid"):
        make_report(run, tmp_path / "b",
                    config=ReportConfig(truth_free_reference=str(tmp_path / "bad.zarr")))
    assert not (tmp_path / "b").exists()


def test_holdout_datasets_even_and_odd_splits():
    split = np.arange(4 * 2 * 3 * 3, dtype=np.float32).reshape(4, 2, 3, 3)
    ds = xr.Dataset({"split": (("split", "z", "y", "x"), split)}, attrs={"n_splits": 4})
    used, ref = holdout_datasets(ds)
    np.testing.assert_array_equal(used["split"].values, split[[0, 2]])
    np.testing.assert_array_equal(ref["split"].values, split[[1, 3]])
    np.testing.assert_allclose(used["full"].values, split[[0, 2]].mean(axis=0))
    assert used.attrs["n_splits"] == 2 and ref.attrs["holdout_of"] == [1, 3]
    with pytest.raises(InputError, match="splits=4"):
        holdout_datasets(ds.isel(split=[0, 1]))
    assert _coords  # the shared fixture helpers are importable
