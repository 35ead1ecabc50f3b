"""Report sections: segmentation against the truth and the opt-in truth-free table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from tests.report.test_report import _coords, _make_run, _write
from tomochunk.config import ReportConfig
from tomochunk.errors import ConfigError, InputError
from tomochunk.io.store import write_dataset
from tomochunk.metrics.truthfree import holdout_datasets
from tomochunk.report import make_report
from tomochunk.report.quality import quality_sections, sections_html


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


def test_segmentation_at_given_thresholds_keeps_a_rare_phase():
    # a 3 % low phase: multi-Otsu of the noisy method moves a threshold into the large middle
    # phase; at the truth's thresholds, after the affine fit to the truth's units, it is kept
    rng = np.random.default_rng(0)
    phases = rng.choice(3, (4, 50, 100), p=[0.03, 0.74, 0.23])
    truth = np.array([0.5, 1.0, 1.6])[phases]
    recon = 0.05 * (truth + rng.normal(0, 0.1, truth.shape)) + 0.2  # reconstruction units
    slabs = {"ml": recon}
    otsu = quality_sections(None, ReportConfig(), slabs, truth, (slice(None),) * 3)
    fixed = quality_sections(None, ReportConfig(segmentation_thresholds=[0.75, 1.3]), slabs,
                             truth, (slice(None),) * 3)
    assert otsu["segmentation"]["rule"] == "multi-otsu"
    assert otsu["segmentation"]["methods"]["ml"]["dice"][0] < 0.5
    seg = fixed["segmentation"]
    assert seg["rule"] == "thresholds" and seg["thresholds"] == [0.75, 1.3]
    assert min(seg["methods"]["ml"]["dice"]) > 0.9
    assert seg["truth_porosity"] == pytest.approx(np.mean(phases == 0))
    assert "segmented into 3 phases at 0.75, 1.3" in sections_html(fixed, {})
    # thresholds that miss the truth's phases: the section says so instead of scoring
    off = quality_sections(None, ReportConfig(segmentation_thresholds=[2.0, 3.0]), slabs,
                           truth, (slice(None),) * 3)
    assert "holds 1 of the 3 phases" in off["segmentation"]["skipped"]


@pytest.mark.parametrize("kwargs, match", [
    ({"segmentation_thresholds": [0.7]}, "needs segmentation_phases - 1 = 2 values"),
    ({"segmentation_thresholds": [1.3, 0.7]}, "must increase"),
    ({"segmentation_phases": 1}, "segmentation_phases must be >= 2"),
])
def test_report_segmentation_settings_are_checked_when_made(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ReportConfig(**kwargs)
