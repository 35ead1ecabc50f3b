"""Scan types beamlines record (issue 16): 360-degree and half-acquisition scans, golden-angle
orders, Paganin phase retrieval, few-slice scans."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from tests.conftest import shared_file
from tomochunk.config import PreprocessConfig
from tomochunk.errors import InputError
from tomochunk.phantom import ScanSpec, simulate_scan
from tomochunk.phantom.scan import angles, simulate_projections
from tomochunk.preprocess import find_center_360, find_overlap_360
from tomochunk.recon import reconstruct
from tomochunk.recon.stitch import opposite_pairs, stitch_pairs, stitched_width

# many flats: flat-field noise is common to every projection, so it would correlate the splits
HALF = dict(n_z=4, n_xy=64, n_angles=240, photons=5000.0, ring_defects=0, arc_deg=360.0,
            seed=1, n_flats=200)


def _psnr(a: np.ndarray, truth: np.ndarray) -> float:
    span = float(truth.max() - truth.min())
    return float(10 * np.log10(span**2 / np.mean((np.asarray(a) - truth) ** 2)))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _recon(scan: xr.Dataset, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return reconstruct(scan, stripe="none", threads=1, **kw).compute()


# ---------------------------------------------------------------------------------------
# phantom: 360-degree, half-acquisition and golden-angle scans


def test_phantom_angle_orders_and_half_acquisition() -> None:
    golden = angles(ScanSpec(n_angles=8, angle_order="golden"))
    assert golden[0] == 0 and np.all((golden >= 0) & (golden < np.pi))
    assert np.isclose(golden[1], np.pi * (np.sqrt(5) - 1) / 2)
    assert len(np.unique(golden)) == 8 and np.any(np.diff(golden) < 0)  # interleaved
    full = angles(ScanSpec(n_angles=8, arc_deg=360.0))
    np.testing.assert_allclose(full, np.arange(8) * np.pi / 4)
    scan, truth = simulate_scan(ScanSpec(**HALF, detector_cols=40, noise=False))
    assert scan.projections.shape == (240, 4, 40) and truth.shape == (4, 64, 64)
    assert scan.flat.shape[-1] == 40 and scan.attrs["phantom_center"] == 31.5
    with pytest.raises(Exception, match="detector_cols.*needs a 360 degree scan"):
        ScanSpec(n_xy=64, detector_cols=40)
    with pytest.raises(Exception, match="detector_cols"):
        ScanSpec(n_xy=64, arc_deg=360.0, detector_cols=20)


# ---------------------------------------------------------------------------------------
# half acquisition


def test_opposite_pairs_and_stitch_equal_the_full_width_sinogram() -> None:
    spec = ScanSpec(**HALF, noise=False)
    full = simulate_projections(spec)  # (240, 4, 64) line integrals, axis at 31.5
    half = full[..., :40]  # what a 40-column detector with the same axis sees
    theta = angles(spec)
    a, b = opposite_pairs(theta)
    assert a.tolist() == list(range(120)) and b.tolist() == list(range(120, 240))
    assert stitched_width(40, 31.5) == 64
    stitched = stitch_pairs(half[a], half[b], 31.5)
    assert stitched.shape == (120, 4, 64)
    # the stitched 180-degree sinogram is the full-width one (the blend of equal values too)
    np.testing.assert_allclose(stitched, full[:120], atol=2e-5 * float(full.max()))
    # an axis on the left half is the mirror case
    flipped = stitch_pairs(half[a][..., ::-1], half[b][..., ::-1], 40 - 1 - 31.5)
    np.testing.assert_allclose(flipped, full[:120][..., ::-1], atol=2e-5 * float(full.max()))
    with pytest.raises(InputError, match="360-degree scan"):
        opposite_pairs(np.linspace(0, np.pi, 90, endpoint=False))


@pytest.mark.parametrize("cols", [36, 40, 48])
def test_overlap_360_finds_the_axis_of_half_acquisition_scans(cols: int) -> None:
    clean, _ = simulate_scan(ScanSpec(**HALF, detector_cols=cols, noise=False))
    noisy, _ = simulate_scan(ScanSpec(**HALF, detector_cols=cols))
    cfg = PreprocessConfig(stripe="none")
    assert abs(find_center_360(clean, cfg) - 31.5) < 0.1
    assert abs(find_center_360(noisy, cfg) - 31.5) < 0.35
    # the same scan with the detector mirrored: axis on the left, at cols - 1 - 31.5
    sino = -np.log(np.asarray(clean.projections[:, 2], np.float64)
                   / clean.flat[:, 2].mean("flat").values)
    center, overlap, side = find_overlap_360(sino[:, ::-1], clean.theta.values)
    assert side == "left" and abs(center - (cols - 1 - 31.5)) < 0.1
    assert abs(overlap - (2 * (cols - 1 - 31.5) + 1)) < 0.2


def test_half_acquisition_matches_a_full_width_scan() -> None:
    """A 40-column half-acquisition 360-degree scan against the same phantom on a full
    64-column detector; each object point is measured over 360 degrees in the full-width
    scan but only about 180 in the outer part of the half-acquisition one, so the fair peer
    is the full-width 180-degree scan with the same number of measurements per point."""
    half, truth = simulate_scan(ScanSpec(**HALF, detector_cols=40))
    peer, _ = simulate_scan(ScanSpec(**{**HALF, "arc_deg": 180.0, "n_angles": 120}))
    clean, _ = simulate_scan(ScanSpec(**HALF, detector_cols=40, noise=False))
    rec = _recon(half, half_acquisition=True)
    ref = _recon(peer, center=31.5)
    ideal = _recon(clean, half_acquisition=True, center=rec.attrs["center"])
    assert rec.full.shape == truth.shape and rec.attrs["half_acquisition"] is True
    assert abs(rec.attrs["center"] - 31.5) < 0.35
    assert abs(rec.attrs["overlap_px"] - 16.0) < 0.7  # 2 (39 - 31.5) + 1
    assert rec.attrs["angles_per_split"] == [60, 60]  # 120 pairs, both projections per split
    assert _psnr(ideal.full.values, truth) > 35.0  # stitching + FBP of noise-free data
    p_half, p_ref = _psnr(rec.full.values, truth), _psnr(ref.full.values, truth)
    assert p_half > p_ref - 1.0, (p_half, p_ref)
    # the two splits are independent noisy estimates of the same object
    n0 = rec.split.values[0] - ideal.split.values[0]
    n1 = rec.split.values[1] - ideal.split.values[1]
    assert abs(_corr(n0, n1)) < 0.05
    assert _corr(rec.split.values[0], rec.split.values[1]) > 0.5


# ---------------------------------------------------------------------------------------
# golden angle


def test_golden_angle_splits_are_independent_and_match_an_ordered_scan() -> None:
    spec = dict(n_z=4, n_xy=64, n_angles=120, photons=2000.0, ring_defects=0, seed=2,
                n_flats=200)
    golden, truth = simulate_scan(ScanSpec(**spec, angle_order="golden"))
    golden_clean, _ = simulate_scan(ScanSpec(**spec, angle_order="golden", noise=False))
    ordered, _ = simulate_scan(ScanSpec(**spec))
    rg = _recon(golden, center=31.5)
    rc = _recon(golden_clean, center=31.5)
    ro = _recon(ordered, center=31.5)
    assert rg.attrs["angle_order"] == "interleaved" and ro.attrs["angle_order"] == "monotonic"
    assert rg.attrs["full_from"] == "all_angles"
    noise = rg.split.values - rc.split.values
    assert abs(_corr(noise[0], noise[1])) < 0.05
    p_g, p_o = _psnr(rg.full.values, truth), _psnr(ro.full.values, truth)
    assert abs(p_g - p_o) < 0.5, (p_g, p_o)
    for j in range(2):  # every split covers the half turn evenly
        assert abs(_psnr(rg.split.values[j], truth) - _psnr(ro.split.values[j], truth)) < 0.6


def test_golden_angle_weights_correct_uneven_coverage() -> None:
    """The clustered angles of a golden-angle scan bias an unweighted FBP; the angle weights
    (half the gaps to the neighbours modulo pi) remove most of that bias."""
    from tomochunk.config import ReconConfig
    from tomochunk.recon.order import weight_factors
    from tomochunk.recon.volume import reconstruct_sinograms

    spec = ScanSpec(n_z=2, n_xy=64, n_angles=50, ring_defects=0, noise=False, seed=3,
                    angle_order="golden")
    ordered = spec.replace(angle_order="ordered")
    _, truth = simulate_scan(spec)
    theta, proj = angles(spec), simulate_projections(spec)
    factors = weight_factors(theta)
    assert factors is not None and factors.max() / factors.min() > 1.5  # uneven coverage
    assert weight_factors(angles(ordered)) is None
    cfg = ReconConfig(threads=1)
    weighted = reconstruct_sinograms(proj, theta, 31.5, cfg)[0]
    # the same data with every angle weighted pi / n (weights divided out again)
    flat = reconstruct_sinograms(proj / factors.astype(np.float32)[:, None, None], theta,
                                 31.5, cfg)[0]
    peer = reconstruct_sinograms(simulate_projections(ordered), angles(ordered), 31.5, cfg)[0]
    p_w, p_flat, p_peer = (_psnr(r, truth) for r in (weighted, flat, peer))
    assert p_w > p_flat + 1.0, (p_w, p_flat)  # measured 34.3 vs 32.7 dB
    assert p_w > p_peer - 2.5, (p_w, p_peer)  # ordered 35.9 dB: golden gaps are uneven


# ---------------------------------------------------------------------------------------
# the real 360-degree neutron sinogram (Sarepy)


def _neutron_scan() -> xr.Dataset:
    import tifffile

    sino = tifffile.imread(shared_file("sarepy-neutron", "sinogram_360_neutron_image.tif"))
    sino = np.asarray(sino, dtype=np.float32)
    trans = sino / sino[:, :30].mean(axis=1, keepdims=True)  # open beam left of the sample
    n = sino.shape[0]
    return xr.Dataset(
        {"projections": (("angle", "row", "col"), np.clip(trans, 1e-3, None)[:, None, :])},
        coords={"theta": ("angle", np.arange(n) * (2 * np.pi / n))},
    )


def test_real_360_degree_neutron_sinogram_splits() -> None:
    scan = _neutron_scan()
    assert scan.projections.shape == (459, 1, 503)
    # Vo's 360-degree overlap method on the whole sinogram (measured 244.96)
    sino = -np.log(scan.projections.values[:, 0].astype(np.float64))
    center, overlap, side = find_overlap_360(sino, scan.theta.values)
    assert abs(center - 245.0) < 0.3 and side == "left" and overlap > 480
    rec = _recon(scan, splits=2, center="auto")
    assert abs(rec.attrs["center"] - 245.0) <= 1.5  # registration: 244.75-245.25
    assert rec.full.shape == (1, 503, 503)
    full, split = rec.full.values[0], rec.split.values[:, 0]
    # the 360-degree reconstruction agrees with the one of its first half turn alone
    first = scan.isel(angle=slice(0, 229))
    half = _recon(first, center=rec.attrs["center"]).full.values[0]
    inner = np.hypot(*np.mgrid[-251:252, -251:252]) < 200
    assert _corr(full[inner], half[inner]) > 0.9
    assert 0.9 < float(full[inner].mean() / half[inner].mean()) < 1.1  # weights: not doubled
    # the two splits see the same rods (noisy neutron data: measured 0.40) and average to full
    assert _corr(split[0][inner], split[1][inner]) > 0.3
    assert rec.attrs["angles_per_split"] == [230, 229]  # 459 angles: unequal, weighted
    assert _corr(split.mean(axis=0)[inner], full[inner]) > 0.99


# ---------------------------------------------------------------------------------------
# Paganin phase retrieval

PAGANIN = dict(paganin=True, paganin_energy_kev=20.0, paganin_distance_m=0.05,
               paganin_delta_beta=20.0, paganin_pixel_um=1.0)  # kernel length 2.2 px


def test_paganin_filter_matches_the_analytic_gaussian() -> None:
    """A Gaussian dip ``1 - a exp(-r^2 / 2 s^2)`` filtered by ``1 / (1 + c f^2)``: at its
    centre the result is ``1 - a q e^q E1(q)`` with ``q = 2 pi^2 s^2 / c``."""
    from scipy.special import exp1

    from tomochunk.preprocess import paganin_filter
    from tomochunk.preprocess.paganin import paganin_length_px, paganin_strength_px

    cfg = PreprocessConfig(**PAGANIN)
    c = paganin_strength_px(cfg)
    lam = 12.398419843320026e-10 / 20.0
    assert np.isclose(c, np.pi * lam * 0.05 * 20.0 / 1e-12)  # pi lambda z (delta/beta) / px^2
    assert np.isclose(paganin_length_px(cfg), np.sqrt(c) / (2 * np.pi))
    n, s, a = 129, 3.0, 0.3
    y, x = np.mgrid[:n, :n] - n // 2
    t = 1.0 - a * np.exp(-(x**2 + y**2) / (2 * s**2))
    out = paganin_filter(t[None], c, pad=8)[0]
    q = 2 * np.pi**2 * s**2 / c
    assert abs(out[n // 2, n // 2] - (1 - a * q * np.exp(q) * exp1(q))) < 1e-4
    assert abs(out[0, 0] - 1.0) < 1e-6  # flat regions are unchanged
    assert abs(out.sum() - t.sum()) < 1e-6 * t.size  # the filter keeps the mean (DC gain 1)
    np.testing.assert_allclose(paganin_filter(np.full((2, 20, 30), 0.7), c, 8), 0.7)


def test_paganin_blockwise_equals_whole_projections() -> None:
    from tomochunk.preprocess import paganin_halo, preprocess_block, required_row_halo

    scan, _ = simulate_scan(ScanSpec(n_z=96, n_xy=48, n_angles=6, ring_defects=0, seed=4))
    cfg = PreprocessConfig(stripe="none", **PAGANIN)
    halo = paganin_halo(cfg)
    assert halo == required_row_halo(cfg) == 39  # ceil(2.22 (ln(1e6) + 3)) + 1
    p, f, d = (scan[v].values for v in ("projections", "flat", "dark"))
    whole, _ = preprocess_block(p, f, d, cfg)
    plain, _ = preprocess_block(p, f, d, PreprocessConfig(stripe="none"))
    # a real low-pass filter: pixel-to-pixel (noise) differences drop
    assert np.std(np.diff(whole, axis=2)) < 0.5 * np.std(np.diff(plain, axis=2))
    for r0, r1 in ((0, 8), (44, 52), (88, 96)):
        lo, hi = max(0, r0 - halo), min(96, r1 + halo)
        sl = np.s_[:, lo:hi]
        block, _ = preprocess_block(p[sl], f[sl], d[sl], cfg, row_offset=lo,
                                    row_halo=(r0 - lo, hi - r1))
        np.testing.assert_allclose(block, whole[:, r0:r1], atol=1e-5 * float(np.abs(whole).max()))
        if r0 == 44:  # without the halo, the block differs from whole-projection filtering
            bare, _ = preprocess_block(p[:, r0:r1], f[:, r0:r1], d[:, r0:r1], cfg)
            assert np.abs(bare - whole[:, r0:r1]).max() > 1e-3 * float(np.abs(whole).max())


def test_paganin_reconstruction_blocks_equal_one_block_and_bad_parameters() -> None:
    from tomochunk.errors import ConfigError

    scan, _ = simulate_scan(ScanSpec(n_z=12, n_xy=48, n_angles=40, ring_defects=0, seed=5))
    one = _recon(scan, center=23.5, rows_per_block=12, **PAGANIN)
    many = _recon(scan, center=23.5, rows_per_block=3, **PAGANIN)
    np.testing.assert_allclose(many.full.values, one.full.values,  # float32 FFT rounding
                               atol=1e-3 * float(np.abs(one.full.values).max()))
    assert '"paganin": true' in one.attrs["preprocess"]
    with pytest.raises(ConfigError, match="paganin_distance_m=-1.0 must be a positive number"):
        reconstruct(scan, center=23.5, **{**PAGANIN, "paganin_distance_m": -1.0})
    bare = scan.copy()
    bare.attrs = {}
    with pytest.raises(ConfigError, match="paganin needs the detector pixel size"):
        reconstruct(bare, center=23.5, **{**PAGANIN, "paganin_pixel_um": None})


# ---------------------------------------------------------------------------------------
# few-slice and single-slice scans: in-plane validation


def test_few_slices_validate_on_held_out_columns(caplog) -> None:
    from tomochunk.config import TrainConfig, replace
    from tomochunk.training.dataset import N2IData, slab_layout
    from tomochunk.training.validation import network_footprint, plan_layout

    cfg = TrainConfig(depth=4, context=5, val_fraction=0.25, patch_size=16)
    assert network_footprint(cfg) == 1 + 2 + 3 + 4
    assert plan_layout(12, 64, 64, cfg) == slab_layout(12, 5, 0.25)  # enough slices: z slab
    with caplog.at_level("WARNING", logger="tomochunk"):
        lay = plan_layout(1, 64, 64, replace(cfg, context=1))
    assert "validating on held-out columns 48-63" in caplog.text
    assert lay.train_cols == (0, 38) and lay.val_cols == (48, 64)  # gap 10 = footprint
    assert lay.train == lay.val == lay.read == (0, 1)
    top = plan_layout(3, 64, 64, TrainConfig(depth=4, context=3, val_end="top", val_gap=4))
    assert top.val_cols == (0, 16) and top.train_cols == (20, 64)
    with pytest.raises(InputError, match="cannot hold .* gap of 550"):
        plan_layout(1, 64, 64, TrainConfig(context=1))  # MSD-100's footprint: too wide
    with pytest.raises(InputError, match="still needs context <= the 1 slice.*--context 1"):
        plan_layout(1, 64, 64, cfg)
    # training patches never read the gap or the validation columns; validation only those
    slab = np.random.default_rng(0).normal(size=(2, 1, 64, 64)).astype(np.float32)
    slab[..., 38:] = np.nan
    data = N2IData(slab, lay)
    x, y = data.sample_patches(np.random.default_rng(1), 200, 16)
    assert np.isfinite(x).all() and np.isfinite(y).all()
    slab[..., 38:] = 1.0
    slab[..., 48:] = 2.0
    vx, vy = N2IData(slab, lay).val_pair(0, 0)
    assert vx.shape == (1, 64, 16) and np.all(vy == 2.0)


def test_single_slice_training_learns(tmp_path) -> None:
    """N2I on one slice of a phantom: the held-out columns' loss falls and the model
    denoises them."""
    import torch

    from tomochunk.training import train

    torch.set_num_threads(1)
    scan, truth = simulate_scan(ScanSpec(n_z=1, n_xy=64, n_angles=90, photons=1000.0,
                                         ring_defects=0, seed=6))
    rec = reconstruct(scan, tmp_path / "recon.zarr", stripe="none", center=31.5, threads=1)
    assert rec.split.shape == (2, 1, 64, 64)
    model = train(tmp_path / "recon.zarr", tmp_path / "model", depth=4, context=1,
                  val_fraction=0.25, patch_size=32, batch_size=4, patches_per_epoch=32,
                  epochs=6, patience=None, seed=0, threads=1, device="cpu")
    vals = [e["val_loss"] for e in model.history["epochs"]]
    assert np.isfinite(vals).all() and min(vals) < vals[0]


# ---------------------------------------------------------------------------------------
# `tomochunk run` end to end on each scan type

RUN = {
    "preprocess": {"stripe": "none"},
    "recon": {"rows_per_block": 4},
    "train": {"network": "msd", "depth": 4, "context": 3, "patch_size": 32, "batch_size": 2,
              "patches_per_epoch": 8, "epochs": 2, "patience": None, "val_fraction": 0.25},
    "denoise": {"chunk_z": 4},
    "filters": {"methods": ["median"], "radius": 1, "chunk_z": 4},
}


def _dxchange(path, spec: ScanSpec):
    import h5py

    scan, truth = simulate_scan(spec)
    with h5py.File(path, "w") as f:
        f["exchange/data"] = scan.projections.values
        f["exchange/data_white"] = scan.flat.values
        f["exchange/data_dark"] = scan.dark.values
        f["exchange/theta"] = np.degrees(scan.theta.values)
        f["exchange/theta"].attrs["units"] = "degrees"
    return path, truth


@pytest.fixture(scope="module")
def scheduler():
    """One real LocalCluster (one worker process) for this module's runs: the scan types,
    not the cluster start-up, are under test (a run's own LocalCluster: test_pipeline)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _run(tmp_path, scheduler: str, spec: ScanSpec,
         **sections) -> tuple[xr.Dataset, np.ndarray]:
    import tomochunk as tc
    from tomochunk.io import store

    src, truth = _dxchange(tmp_path / "scan.h5", spec)
    cfg = {k: {**v, **sections.get(k, {})} for k, v in RUN.items()}
    run = tmp_path / "run"
    tc.run(src, run, config=cfg, cluster=tc.ClusterConfig(scheduler=scheduler))
    for name in ("scan.zarr", "recon.zarr", "denoised.zarr", "median.zarr"):
        assert store.is_complete(run / name), name
    assert (run / "model" / "model.pt").exists() and (run / "report").exists()
    den = store.open_store(run / "denoised.zarr")
    assert all(np.isfinite(np.asarray(den[v])).all() for v in den.data_vars)
    return store.open_recon(run / "recon.zarr"), truth


@pytest.mark.slow
def test_run_single_slice_scan(tmp_path, scheduler) -> None:
    spec = ScanSpec(n_z=1, n_xy=64, n_angles=60, ring_defects=0, seed=7)
    rec, truth = _run(tmp_path, scheduler, spec, train={"context": 1})
    assert rec.split.shape == (2, 1, 64, 64)
    assert "validating on held-out columns" in (tmp_path / "run" / "tomochunk.log").read_text()


@pytest.mark.slow
def test_run_half_acquisition_360_phantom(tmp_path, scheduler) -> None:
    spec = ScanSpec(n_z=8, n_xy=64, n_angles=160, arc_deg=360.0, detector_cols=40,
                    photons=5000.0, ring_defects=0, seed=8)
    rec, truth = _run(tmp_path, scheduler, spec, recon={"half_acquisition": True})
    assert rec.full.shape == truth.shape == (8, 64, 64)
    assert abs(rec.attrs["center"] - 31.5) < 0.5 and rec.attrs["half_acquisition"]
    assert _psnr(rec.full.values, truth) > 18.0


@pytest.mark.slow
def test_run_golden_angle_phantom(tmp_path, scheduler) -> None:
    spec = ScanSpec(n_z=8, n_xy=48, n_angles=60, angle_order="golden", ring_defects=0, seed=9)
    rec, truth = _run(tmp_path, scheduler, spec, preprocess={"center": 23.5})
    assert rec.attrs["angle_order"] == "interleaved" and rec.full.shape == (8, 48, 48)
    assert _corr(rec.full.values, truth) > 0.8


@pytest.mark.slow
def test_run_with_paganin(tmp_path, scheduler) -> None:
    spec = ScanSpec(n_z=8, n_xy=48, n_angles=60, ring_defects=0, seed=10)
    rec, truth = _run(tmp_path, scheduler, spec, preprocess={**PAGANIN, "center": 23.5})
    assert '"paganin": true' in rec.attrs["preprocess"]
    assert _corr(rec.full.values, truth) > 0.6


@pytest.mark.slow  # starts a LocalCluster per command
def test_cli_flags_reach_the_config(tmp_path) -> None:
    from click.testing import CliRunner

    from tomochunk.cli import main
    from tomochunk.io.ingest import ingest

    scan, _ = simulate_scan(ScanSpec(n_z=2, n_xy=32, n_angles=20, ring_defects=0))
    ingest(scan, tmp_path / "scan.zarr")
    res = CliRunner().invoke(main, ["recon", str(tmp_path / "scan.zarr"), str(tmp_path / "r"),
                                    "--paganin", "--paganin-distance-m", "-2", "--workers", "1"])
    assert res.exit_code == 2 and "paganin_distance_m=-2.0 must be a positive number" in res.output
    res = CliRunner().invoke(main, ["recon", str(tmp_path / "scan.zarr"), str(tmp_path / "r"),
                                    "--half-acquisition", "--workers", "1"])
    assert res.exit_code == 2 and "half acquisition needs a 360-degree scan" in res.output
    assert not (tmp_path / "r").exists()
    res = CliRunner().invoke(main, ["train", "--help"])
    assert "--val-gap" in res.output
