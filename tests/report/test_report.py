"""The comparison report on a small fake run directory made of real Zarr stores."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy import ndimage

from tomochunk.cli import main
from tomochunk.config import ReportConfig
from tomochunk.errors import IncompleteStoreError, InputError, OutputExistsError
from tomochunk.io.store import write_dataset
from tomochunk.report import analyse, collect_run, make_report

CHROMIUM = Path("/usr/bin/chromium")
PX_UM = 0.0222  # 22.2 nm pixels, as the paper's butterfly scale
NZ, NY, NX = 12, 96, 96


def _truth() -> np.ndarray:
    """A disc of material with a band of fine periodic lines and two blobs."""
    z, y, x = np.mgrid[:NZ, :NY, :NX].astype(float)
    r = np.hypot(y - NY / 2, x - NX / 2)
    t = 0.2 + 0.8 * (r < 38)
    # fine periodic structure: bright lines (Gaussian cross-section, sigma 1 px) every 8 px
    band = (np.abs(y - 40) < 10) & (r < 36)
    t += 1.0 * band * np.exp(-0.5 * ((np.mod(x, 8.0) - 4.0) / 1.0) ** 2)
    for cy, cx in ((65, 35), (60, 62)):
        t[np.hypot(y - cy, x - cx) < 5] = 1.6
    return t.astype(np.float32)


def _coords() -> dict[str, np.ndarray]:
    return {d: np.arange(n) * PX_UM for d, n in (("z", NZ), ("y", NY), ("x", NX))}


def _write(path: Path, name: str, arr: np.ndarray, attrs: dict | None = None) -> None:
    dims = ("z", "y", "x") if arr.ndim == 3 else ("split", "z", "y", "x")
    ds = xr.Dataset({name: (dims, arr)}, coords=_coords()).chunk({"z": 4})
    write_dataset(ds, path, attrs=attrs)


def _history() -> dict:
    epochs = [{"epoch": e, "train_loss": 1.0 / (e + 1) + 0.1,
               "val_loss": 1.0 / (e + 1) + 0.12 + 0.004 * max(e - 12, 0), "seconds": 1.5}
              for e in range(20)]
    return {"epochs": epochs, "best_epoch": 12, "stopped": "early_stop"}


def _make_run(root: Path, *, with_truth_store: bool = True, methods=("median", "nlm", "ml"),
              history: bool = True) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(7)
    truth = _truth()
    run = root / "run"
    run.mkdir()
    gain = 0.05  # reconstructions are in other units than the truth
    noise = gain * 0.35 * (1 + 0.8 * np.linspace(0, 1, NX))[None, None, :]  # rises along x
    split = np.stack([gain * truth + rng.normal(size=truth.shape) * noise for _ in range(2)])
    split = split.astype(np.float32)
    full = split.mean(axis=0)
    recon = xr.Dataset(
        {"full": (("z", "y", "x"), full), "split": (("split", "z", "y", "x"), split)},
        coords=_coords(),
    ).chunk({"z": 4})
    write_dataset(recon, run / "recon.zarr",
                  attrs={"center": 47.5, "filter": "shepp", "n_splits": 2,
                         "angles_per_split": 180})
    if "median" in methods:
        _write(run / "median.zarr", "median", ndimage.median_filter(full, size=3))
    if "nlm" in methods:
        _write(run / "nlm.zarr", "nlm", ndimage.gaussian_filter(full, (0.5, 1.2, 1.2)))
    if "ml" in methods:  # a good denoiser: most noise gone, structure kept
        ml = gain * truth + 0.15 * (full - gain * truth)
        _write(run / "denoised.zarr", "denoised", ndimage.gaussian_filter(ml, 0.5))
    if with_truth_store:
        _write(run / "truth.zarr", "truth", truth)
    if history:
        (run / "model").mkdir()
        (run / "model" / "history.json").write_text(json.dumps(_history()))
        (run / "model" / "metadata.json").write_text(json.dumps(
            {"network": "msd", "context": 5, "n_splits": 2, "network_params": {"depth": 30}}))
    (run / "run.json").write_text(json.dumps({"input": "fake", "stages": {
        "recon": {"seconds": 12.5, "summary": "full 12x96x96 in 12.5 s"},
        "train": {"seconds": 30.0, "summary": "20 epochs"}}}))
    return run, truth


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    run, truth = _make_run(root)
    out = make_report(run)
    return run, out, json.loads((out / "metrics.json").read_text())


def test_report_files_and_links(report):
    run, out, _ = report
    assert out == run / "report"
    html = (out / "index.html").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    expected = {"slices_xy.png", "slices_yz.png", "profiles.png", "psd.png", "frc.png",
                "noise.png", "difference.png", "training.png", "cnr_masks.png"}
    assert expected <= set(pngs)
    for name in pngs:
        assert f'src="{name}"' in html
        assert (out / name).stat().st_size > 10_000
    # only relative links, no scripts
    assert not re.search(r'(src|href)="(/|[a-z]+://)', html)
    assert "<script" not in html
    assert not list(run.glob(".report*")), "no temporary folder is left behind"


def test_report_metrics_values(report):
    _, _, m = report
    meth = m["methods"]
    assert set(meth) == {"unfiltered", "median", "nlm", "ml"}
    for k in ("cnr", "psnr", "ssim", "fwhm"):
        assert all(isinstance(meth[x][k], float) for x in meth), k
    # the constructed ML result is closest to the truth, the raw one furthest
    assert meth["ml"]["psnr"] > meth["median"]["psnr"] > meth["unfiltered"]["psnr"]
    assert meth["ml"]["psnr"] > meth["nlm"]["psnr"]
    assert meth["ml"]["ssim"] > meth["unfiltered"]["ssim"]
    # CNR rises with denoising (it is limited by the lines and blobs inside the material, as
    # the paper notes, so the smoothing filters are not far behind)
    for k in ("median", "nlm", "ml"):
        assert meth[k]["cnr"] > 2 * meth["unfiltered"]["cnr"] > 2
    # the lines have FWHM 2.3548 * 22.2 nm = 52 nm; smoothing widens them, the ML result less
    assert meth["ml"]["fwhm"] == pytest.approx(52.3 * np.sqrt(1 + 0.5**2), rel=0.1)
    assert meth["nlm"]["fwhm"] > 1.3 * meth["ml"]["fwhm"]
    assert meth["median"]["fwhm"] > 1.2 * meth["ml"]["fwhm"]
    assert meth["ml"]["n_peaks"] >= 5
    assert m["profile"]["distance_unit"] == "nm"
    # the automatic profile crosses the periodic lines (y = 30..50), not the blobs or the rim
    prof = m["profile"]
    mid_y = (prof["start_zyx"][1] + prof["end_zyx"][1]) / 2
    assert 30 <= mid_y <= 50 and prof["source"].startswith("automatic")
    assert abs(prof["end_zyx"][2] - prof["start_zyx"][2]) > 30  # across the lines
    assert m["pixel_size_nm"] == pytest.approx(22.2)
    # FRC of the halves has a half-bit crossing, reported in px and nm
    h = m["frc"]["halves"]
    assert 0 < h["crossing_per_px"] <= 0.5
    assert h["resolution_nm"] == pytest.approx(h["resolution_px"] * 22.2)
    # noise of one half: std 0.05*0.35*(1..1.8) -> rms ~ 0.0247; the map rises along x
    assert m["noise"]["mean_std"] == pytest.approx(0.05 * 0.35 * np.sqrt(np.mean(
        (1 + 0.8 * np.linspace(0, 1, NX)) ** 2)), rel=0.05)
    assert m["noise"]["map_max_over_min"] > 1.4
    assert m["training"]["best_epoch"] == 12 and m["training"]["epochs"] == 20
    assert meth["ml"]["structure_fraction"] < meth["nlm"]["structure_fraction"]


def test_report_without_optional_parts(tmp_path):
    run, truth = _make_run(tmp_path, with_truth_store=False, methods=("median",),
                           history=False)
    (run / "run.json").unlink()
    out = tmp_path / "rep"
    out.mkdir()
    (out / "stale.txt").write_text("an older report")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        make_report(run, out)
    # through the CLI (contract: tomochunk report RUN_DIR [--truth] [--out] [--overwrite])
    cli = CliRunner()
    res = cli.invoke(main, ["report", str(run), "--out", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output
    res = cli.invoke(main, ["report", str(run), "--out", str(out), "--overwrite", "-q"])
    assert res.exit_code == 0, res.output
    assert f"report written to {out}" in res.output
    assert not (out / "stale.txt").exists(), "overwrite replaces the whole folder"
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["methods"]) == {"unfiltered", "median"}
    assert m["methods"]["median"]["psnr"] is None
    html = (out / "index.html").read_text()
    for text in ("NLM: nlm.zarr is absent", "denoised.zarr is absent", "no ground truth",
                 "training history (history.json) is absent"):
        assert text in html
    assert not (out / "training.png").exists()
    # a truth given as .npy gives PSNR/SSIM
    np.save(tmp_path / "truth.npy", truth)
    m2, _ = analyse(collect_run(run, truth=tmp_path / "truth.npy"), ReportConfig())
    assert m2["methods"]["median"]["psnr"] > m2["methods"]["unfiltered"]["psnr"]


def test_report_bad_input(tmp_path, report):
    run, out, _ = report
    with pytest.raises(OutputExistsError, match="already exists"):
        make_report(run)
    np.save(tmp_path / "bad.npy", np.zeros((3, 4, 5)))
    with pytest.raises(InputError, match=r"has shape \(3, 4, 5\) but the reconstruction"):
        make_report(run, tmp_path / "r", config=ReportConfig(truth=str(tmp_path / "bad.npy")))
    np.save(tmp_path / "flat.npy", np.zeros((96, 96)))
    with pytest.raises(InputError, match=r"has shape \(96, 96\) but the reconstruction"):
        make_report(run, tmp_path / "r", config=ReportConfig(truth=str(tmp_path / "flat.npy")))
    with pytest.raises(InputError, match="does not exist"):
        make_report(run, tmp_path / "r", config=ReportConfig(truth=str(tmp_path / "no.npy")))
    with pytest.raises(InputError, match="lies outside the volume"):
        make_report(run, tmp_path / "r", config=ReportConfig(profile=[6, 10, 10, 6, 10, 200]))
    with pytest.raises(InputError, match="has no recon.zarr"):
        make_report(tmp_path, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    # an incomplete recon store is refused
    bad = tmp_path / "badrun"
    shutil.copytree(run / "recon.zarr", bad / "recon.zarr")
    attrs = json.loads((bad / "recon.zarr" / "zarr.json").read_text())
    attrs["attributes"]["tomochunk_complete"] = False
    (bad / "recon.zarr" / "zarr.json").write_text(json.dumps(attrs))
    with pytest.raises(IncompleteStoreError):
        collect_run(bad)


def test_report_profile_from_config(report):
    run, _, _ = report
    cfg = ReportConfig(profile=[6, 40, 10, 6, 40, 60], slice_z=6)
    m, _ = analyse(collect_run(run), cfg)
    # a profile along x through the periodic lines (period 8 px): peaks every 8 px
    cs = [p["center"] for p in m["profile"]["peaks"]["ml"]]
    assert len(cs) >= 5
    assert np.median(np.diff(cs)) == pytest.approx(8 * 22.2, rel=0.05)
    assert m["profile"]["source"] == "config"
    # PSD peak at the period of the lines, 1/(8 px) in 1/nm
    assert m["psd"]["peak_frequency"]["ml"] == pytest.approx(1 / (8 * 22.2), rel=0.15)


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="headless Chromium (/usr/bin/chromium, Debian package 'chromium') "
                           "is not installed")
def test_report_renders_in_headless_chromium(report, tmp_path):
    _, out, _ = report
    shot = tmp_path / "page.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1400,3000",
           (out / "index.html").resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    from skimage.io import imread

    img = imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1400
    grey = img[..., :3].mean(axis=-1)
    # non-trivial: many distinct tones (text, figures), not a blank or error page
    assert np.unique(grey.astype(np.uint8)).size > 100
    assert grey.std() > 20


def test_report_page_fixes_of_issue_13(report, tmp_path):
    from tomochunk.report.units import format_length_nm

    run, out, _ = report
    html = (out / "index.html").read_text()
    # parameters as text, not JSON blobs; timings with the report stage and a total
    assert '{"depth"' not in html and "depth: 30" in html
    assert ">total<" in html and "42.5" in html and ">report<" in html
    # run.json does not ask for iternlm here (no config): absent stores are noted; a run
    # that asked only for median and nlm is not told that iternlm.zarr is absent
    assert "iternlm.zarr is absent" in html
    rec = json.loads((run / "run.json").read_text())
    rec["config"] = {"filters": {"methods": ["median", "nlm"]}}
    (run / "run.json").write_text(json.dumps(rec))
    html2 = (make_report(run, tmp_path / "r2") / "index.html").read_text()
    assert "iternlm.zarr is absent" not in html2
    assert (format_length_nm(6090.0), format_length_nm(350.0)) == ("6.09 µm", "350 nm")


def test_pixel_coordinates_mean_unknown_pixel_size(tmp_path):
    from tomochunk.report.collect import _pixel_size_nm

    ds = xr.Dataset(coords={"x": ("x", np.arange(5.0), {"units": "pixel"}),
                            "y": ("y", np.arange(5.0), {"units": "pixel"})})
    assert _pixel_size_nm(ds, tmp_path) is None
    ds_um = xr.Dataset(coords={"x": ("x", np.arange(5.0) * 0.5, {"units": "um"})})
    assert _pixel_size_nm(ds_um, tmp_path) == 500.0
