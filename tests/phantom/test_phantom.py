"""Synthetic scans (tomochunk.phantom): exactness, consistency, noise model, layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, ndimage
from skimage.transform import iradon, radon

from tomochunk.errors import ConfigError, InputError, OutputExistsError
from tomochunk.io.store import open_scan
from tomochunk.phantom import (
    CYLINDER,
    ELLIPSOID,
    PRESETS,
    ScanSpec,
    Shapes,
    angles,
    beam_profile,
    demo_spec,
    lattice_holes,
    lattice_patch,
    make_truth,
    project_shapes,
    rasterise_shapes,
    simulate_projections,
    simulate_scan,
    write_scan,
)

SMALL = dict(n_z=6, n_xy=48, n_angles=40)


def _normalised(ds):
    flat = ds.flat.values.astype(np.float64).mean(0)
    dark = ds.dark.values.astype(np.float64).mean(0)
    return (ds.projections.values.astype(np.float64) - dark) / (flat - dark)


# -- determinism and layout ------------------------------------------------------------


def test_same_seed_same_scan_other_seed_other_scan():
    spec = ScanSpec(**SMALL, seed=7)
    a, ta = simulate_scan(spec)
    b, tb = simulate_scan(spec)
    np.testing.assert_array_equal(ta, tb)
    for var in ("projections", "flat", "dark"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    c, tc = simulate_scan(spec.replace(seed=8))
    assert not np.array_equal(ta, tc)
    assert not np.array_equal(a.projections.values, c.projections.values)
    # the object does not depend on the noise settings
    np.testing.assert_array_equal(make_truth(spec.replace(photons=50.0)), ta)


def test_scan_dataset_layout():
    spec = ScanSpec(**SMALL, n_flats=3, n_darks=2)
    ds, truth = simulate_scan(spec)
    assert ds.projections.dims == ("angle", "row", "col")
    assert ds.projections.shape == (40, 6, 48) and ds.projections.dtype == np.float32
    assert ds.flat.dims == ("flat", "row", "col") and ds.flat.shape == (3, 6, 48)
    assert ds.dark.dims == ("dark", "row", "col") and ds.dark.shape == (2, 6, 48)
    theta = ds.theta.values
    assert ds.theta.dims == ("angle",) and theta.dtype == np.float64
    np.testing.assert_allclose(theta, np.arange(40) * np.pi / 40)
    assert theta.max() < np.pi
    assert truth.shape == (6, 48, 48) and truth.dtype == np.float32 and truth.min() >= 0
    assert ds.attrs["source"] == "tomochunk.phantom"
    assert ds.attrs["pixel_size_um"] == 0.05
    assert ds.attrs["phantom_center"] == 23.5
    assert ScanSpec.from_json(ds.attrs["phantom_spec"]) == spec
    json.dumps(ds.attrs)  # every attribute is JSON-serialisable (Zarr attrs)
    counts = ds.projections.values
    assert np.all(counts == np.round(counts)) and counts.min() >= 0  # Poisson counts
    u16, _ = simulate_scan(spec.replace(dtype="uint16"), truth=truth)
    assert u16.projections.dtype == np.uint16
    np.testing.assert_array_equal(u16.projections.values, counts)


def test_presets():
    assert PRESETS["test"] == dict(n_z=16, n_xy=64, n_angles=90, photons=2000.0)
    spec = demo_spec("demo")
    assert (spec.n_z, spec.n_xy, spec.n_angles) == (64, 128, 256)
    assert spec.n_angles % 2 == 0
    big = demo_spec("bench", seed=3)
    assert (big.n_z, big.n_xy, big.n_angles, big.seed) == (128, 256, 512, 3)
    ds, truth = simulate_scan(demo_spec("test"))
    assert ds.projections.shape == (90, 16, 64) and truth.shape == (16, 64, 64)


# -- exact projections -------------------------------------------------------------------


def test_disk_projection_is_the_pixel_averaged_chord_length():
    spec = ScanSpec(n_z=3, n_xy=41, n_angles=8, kind="disk")
    p = simulate_projections(spec)
    radius, mu, c = 0.3 * 41, spec.mu, 20.0
    chord = lambda s: 2 * mu * np.sqrt(max(radius**2 - s**2, 0.0))  # noqa: E731
    for col in (20, 25, 31, 32):
        expected = integrate.quad(chord, col - c - 0.5, col - c + 0.5, limit=200)[0]
        np.testing.assert_allclose(p[:, 1, col], expected, rtol=1e-6)
    assert p[0, 1, 20] == pytest.approx(2 * radius * mu, rel=2e-3)  # centre: the diameter
    assert np.all(p[:, :, :8] == 0)  # outside the disk (radius 12.3 px from column 20)
    np.testing.assert_allclose(p.sum(axis=2), np.pi * radius**2 * mu, rtol=1e-6)


def test_detector_convention_and_centre():
    """A small cylinder at (x, y) projects onto column c + x cos(theta) + y sin(theta)."""
    n, c = 33, 16.0
    x, y = 7.0, -4.0  # y is up: array row c - y
    shapes = Shapes.from_rows([(CYLINDER, x, y, 0.0, 1.0, 1.0, 5.0, 0.0, 1.0)])
    theta = np.array([0.0, np.pi / 2, np.pi / 4])
    sino = project_shapes(shapes, theta, 1, n)[0]
    for k, t in enumerate(theta):  # (pixel-averaged profiles: centroids within 0.02 px)
        centroid = (sino[k] * np.arange(n)).sum() / sino[k].sum()
        assert centroid == pytest.approx(c + x * np.cos(t) + y * np.sin(t), abs=0.02)
    assert sino[0].argmax() == 23 and sino[1].argmax() == 12
    vol = rasterise_shapes(shapes, 1, n)[0]
    iy, ix = ndimage.center_of_mass(vol)
    assert (ix, iy) == (pytest.approx(c + x, abs=1e-3), pytest.approx(c - y, abs=1e-3))


def test_projections_match_skimage_radon_of_the_truth():
    spec = ScanSpec(n_z=5, n_xy=65, n_angles=30, seed=2)
    truth = make_truth(spec)
    p = simulate_projections(spec)
    ref = radon(truth[2], theta=np.degrees(angles(spec)), circle=True)
    assert np.corrcoef(ref.ravel(), p[:, 2, :].T.ravel())[0, 1] > 0.995


def test_truth_and_projections_hold_the_same_mass():
    """Every projection of a slice integrates to the slice's total (no ROI)."""
    spec = ScanSpec(n_z=8, n_xy=64, n_angles=12, seed=1)
    truth = make_truth(spec).astype(np.float64)
    p = simulate_projections(spec).astype(np.float64)
    mass = np.broadcast_to(truth.sum(axis=(1, 2)), (12, 8))
    np.testing.assert_allclose(p.sum(axis=2), mass, rtol=1e-4)


@pytest.mark.parametrize("kind", ["cells", "shepp"])
def test_fbp_of_noise_free_projections_reproduces_the_truth(kind):
    spec = ScanSpec(n_z=3, n_xy=65, n_angles=180, kind=kind, seed=4)
    truth = make_truth(spec)[1]
    p = simulate_projections(spec)[:, 1, :]
    rec = iradon(p.T, theta=np.degrees(angles(spec)), filter_name="ramp", circle=True)
    yy, xx = np.mgrid[:65, :65] - 32
    inside = np.hypot(xx, yy) < 30
    assert np.corrcoef(rec[inside], truth[inside])[0, 1] > 0.95
    if kind == "cells":  # the body (a large uniform feature), away from its edges
        body = ndimage.binary_erosion(np.abs(truth - spec.mu) < 1e-6 * spec.mu, iterations=2)
        assert body.sum() > 150
        assert rec[body].mean() == pytest.approx(spec.mu, rel=0.03)


# -- measurement model ---------------------------------------------------------------------


def test_noise_free_flat_normalised_projections_are_exp_minus_line_integrals():
    spec = ScanSpec(**SMALL, noise=False, ring_defects=0, seed=5)
    ds, _ = simulate_scan(spec)
    np.testing.assert_allclose(_normalised(ds), np.exp(-simulate_projections(spec)),
                               rtol=1e-5)


def test_ring_columns_have_gain_errors_that_flats_do_not_correct():
    spec = ScanSpec(**SMALL, noise=False, ring_defects=4, ring_strength=0.02)
    ds, _ = simulate_scan(spec)
    gain = _normalised(ds) / np.exp(-simulate_projections(spec).astype(np.float64))
    cols = ds.attrs["phantom_ring_columns"]
    assert len(cols) == 4
    expected = np.broadcast_to(ds.attrs["phantom_ring_gains"], gain[:, :, cols].shape)
    np.testing.assert_allclose(gain[:, :, cols], expected, rtol=1e-5)
    assert np.all(np.abs(np.array(ds.attrs["phantom_ring_gains"]) - 1) >= 0.01 - 1e-9)
    others = np.setdiff1d(np.arange(48), cols)
    np.testing.assert_allclose(gain[:, :, others], 1.0, rtol=1e-5)


def test_noise_grows_toward_the_field_edges_as_the_beam_profile_predicts():
    spec = ScanSpec(n_z=3, n_xy=64, n_angles=2, n_flats=400, photons=1000.0,
                    beam_falloff=0.5, pixel_gain_sigma=0.0, seed=6)
    beam = beam_profile(spec)
    assert beam[1, 0] == pytest.approx(0.5) and beam[1, 63] == pytest.approx(0.5)
    assert beam[1, 31] == pytest.approx(1.0, abs=1e-3)
    ds, _ = simulate_scan(spec)
    dark = ds.dark.values.mean(0)
    flats = ds.flat.values.astype(np.float64) - dark
    rel_std = (flats / flats.mean(0)).std(axis=0)  # noise of flat-normalised frames
    centre, edge = rel_std[:, 28:36].mean(), rel_std[:, [0, 1, 62, 63]].mean()
    signal = spec.photons * beam[1]
    expected = np.sqrt((signal[[0, 1, 62, 63]] + 100.0) / signal[[0, 1, 62, 63]] ** 2).mean() / \
        np.sqrt((signal[28:36] + 100.0) / signal[28:36] ** 2).mean()
    assert expected > 1.35
    assert edge / centre == pytest.approx(expected, rel=0.08)


def test_roi_projections_do_not_fall_to_zero_at_the_detector_edges():
    base = ScanSpec(n_z=2, n_xy=48, n_angles=16, seed=3)
    inside = simulate_projections(base)
    assert np.all(inside[:, :, [0, -1]] == 0)
    roi = simulate_projections(base.replace(roi=True))
    assert np.all(roi[:, :, [0, -1]] > 0.3 * roi.max())
    # the truth is the part of the object inside the field of view
    truth = make_truth(base.replace(roi=True))
    assert truth[:, [0, -1], :].min() > 0 and truth[:, :, [0, -1]].min() > 0


def test_lattice_period_is_the_peak_of_the_truth_power_spectrum():
    spec = ScanSpec(n_z=32, n_xy=128, n_angles=2, lattice_period=5.0, seed=9)
    x, y, radius, z0, z1 = lattice_patch(spec)
    c, p = spec.center, spec.lattice_period
    side = int(radius * np.sqrt(2) / p) * int(p)  # 30: a whole number of periods
    i0, j0 = int(round(c - y - side / 2)), int(round(c + x - side / 2))
    truth = make_truth(spec)

    def spectrum(volume):
        crop = volume[16, i0:i0 + side, j0:j0 + side].astype(np.float64)
        power = np.abs(np.fft.fft2(crop - crop.mean())) ** 2
        freq = np.fft.fftfreq(side)
        return power, np.hypot(*np.meshgrid(freq, freq, indexing="ij"))

    power, radial = spectrum(truth)
    peak = radial.ravel()[np.argmax(np.where(radial > 0.5 * spec.lattice_frequency, power, 0))]
    assert peak == pytest.approx(spec.lattice_frequency, abs=1e-9)
    plain, _ = spectrum(make_truth(spec.replace(lattice=False)))
    at_peak = np.isclose(radial, spec.lattice_frequency)
    assert power[at_peak].sum() > 100 * plain[at_peak].sum()
    # periodic along z too: a hole column alternates hole / wall with the same period
    centres, segments, hole = lattice_holes(spec)
    hx, hy = centres[np.argmin(np.hypot(*(centres - (x, y)).T))]
    column = truth[:, int(round(c - hy)), int(round(c + hx))]
    inner = column[segments[0, 0].astype(int) + 2:segments[-1, 1].astype(int) - 1][:20]
    zpower = np.abs(np.fft.rfft(inner - inner.mean())) ** 2
    assert np.fft.rfftfreq(20)[np.argmax(zpower)] == pytest.approx(1 / p)
    assert np.ptp(inner) > 0.7 * 0.8 * spec.mu  # holes and walls fully resolved


# -- API behaviour -------------------------------------------------------------------------


def test_bad_specs_raise_config_errors_naming_the_fix():
    with pytest.raises(ConfigError, match=r"n_angles=1 is not an integer >= 2"):
        ScanSpec(n_angles=1)
    with pytest.raises(ConfigError, match=r"beam_falloff=0 is not in \(0, 1\]"):
        ScanSpec(beam_falloff=0)
    with pytest.raises(ConfigError, match=r"kind='foam' is not a known phantom kind; use one of"):
        ScanSpec(kind="foam")
    with pytest.raises(ConfigError, match=r"unknown phantom preset 'huge'"):
        demo_spec("huge")
    with pytest.raises(ConfigError, match=r"unknown ScanSpec field\(s\) photon;"):
        ScanSpec.from_dict({"photon": 3})
    with pytest.raises(InputError, match=r"truth has shape \(2, 8, 8\)"):
        simulate_scan(ScanSpec(**SMALL), truth=np.zeros((2, 8, 8), np.float32))


def test_write_scan_is_openable_and_refuses_to_overwrite(tmp_path):
    spec = ScanSpec(**SMALL, seed=11)
    path, truth = write_scan(spec, tmp_path / "scan.zarr", truth_path=tmp_path / "truth.npy",
                             chunk_rows=4)
    scan = open_scan(path)
    ds, _ = simulate_scan(spec)
    np.testing.assert_array_equal(scan.projections.values, ds.projections.values)
    np.testing.assert_array_equal(scan.theta.values, ds.theta.values)
    assert scan.attrs["source"] == "tomochunk.phantom"
    assert ScanSpec.from_json(scan.attrs["phantom_spec"]) == spec
    assert scan.projections.chunks[1] == (4, 2)
    np.testing.assert_array_equal(np.load(tmp_path / "truth.npy"), truth)
    with pytest.raises(OutputExistsError):
        write_scan(spec, path)


def test_shapes_mix_ellipsoids_and_cylinders_consistently():
    """Ellipsoid cross-sections shrink with height exactly as the projections do."""
    shapes = Shapes.from_rows([(ELLIPSOID, 0.0, 0.0, 4.0, 6.0, 4.0, 3.0, 0.4, 1.0)])
    theta = np.linspace(0, np.pi, 7, endpoint=False)
    vol = rasterise_shapes(shapes, 9, 24, supersample=8, sub_rows=64)
    sino = project_shapes(shapes, theta, 9, 24, supersample=8)
    mass = np.broadcast_to(vol.sum(axis=(1, 2))[:, None], (9, 7))
    np.testing.assert_allclose(sino.sum(axis=2), mass, rtol=1e-4)
    total = vol.sum()
    assert total == pytest.approx(4 / 3 * np.pi * 6 * 4 * 3, rel=2e-3)  # ellipsoid volume
    assert np.all(vol[[0, 8]] == 0) and vol[4].sum() > vol[2].sum() > vol[1].sum()
