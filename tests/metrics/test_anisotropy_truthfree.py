"""Lattice contrast per axis, axial FRC, and the truth-free MSE estimate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

import tomochunk as tc
from tomochunk.errors import InputError
from tomochunk.metrics import axial_frc, lattice_contrast, truth_free_mse
from tomochunk.metrics.truthfree import holdout_splits
from tomochunk.phantom import lattice_mask, make_truth, sample_mask


@pytest.fixture(scope="module")
def lattice():
    spec = tc.ScanSpec(n_z=32, n_xy=64, n_angles=8)
    return spec, make_truth(spec), lattice_mask(spec)


def test_lattice_contrast_sees_blur_per_axis(lattice):
    spec, t, m = lattice
    f = spec.lattice_frequency
    assert lattice_contrast(t, t, m, f) == {"y": 1.0, "z": 1.0, "anisotropy": 1.0}
    z_blur = lattice_contrast(ndi.gaussian_filter(t, (2, 0, 0)), t, m, f)
    assert z_blur["y"] > 0.9 and z_blur["z"] < 0.2 and z_blur["anisotropy"] < 0.2
    xy_blur = lattice_contrast(ndi.gaussian_filter(t, (0, 1.5, 1.5)), t, m, f)
    assert xy_blur["y"] < 0.25 and xy_blur["z"] > 0.9
    iso = lattice_contrast(ndi.gaussian_filter(t, 1.5), t, m, f)
    assert iso["anisotropy"] == pytest.approx(1.0, abs=0.1)
    # white noise averages out of the profiles
    noisy = t + np.random.default_rng(0).normal(0, 0.3 * spec.mu, t.shape)
    assert lattice_contrast(noisy, t, m, f, axes=("y",))["y"] == pytest.approx(1.0, abs=0.1)
    with pytest.raises(InputError, match="1.5 periods"):
        lattice_contrast(t, t, np.zeros_like(m), f)


def test_axial_frc_resolution_follows_the_signal_per_axis(lattice):
    spec, t, _ = lattice
    rng = np.random.default_rng(1)
    # smooth along z only: the signal along z ends at low frequency, along y it does not
    sig = ndi.gaussian_filter(rng.normal(size=t.shape), (3, 0.5, 0.5))
    sig /= sig.std()
    a = sig + rng.normal(0, 0.5, t.shape)
    b = sig + rng.normal(0, 0.5, t.shape)
    fz, fy = axial_frc(a, b, "z"), axial_frc(a, b, "y")
    assert fz.crossing is not None and fz.crossing < 0.2
    assert fy.crossing is None or fy.crossing > 0.35
    with pytest.raises(InputError, match="one shape"):
        axial_frc(a, b[:-1], "z")


def test_truth_free_mse_is_unbiased_with_correlated_noise():
    rng = np.random.default_rng(2)
    s = ndi.gaussian_filter(rng.normal(size=(8, 48, 48)), 2)
    s /= s.std()

    def noise(std):
        n = ndi.gaussian_filter(rng.normal(size=s.shape), (0, 1, 1))
        return n / n.std() * std

    ra, rb = s + noise(0.5), s + noise(0.5)  # reference noise var 0.125
    for err in (0.05, 0.2, 0.5):
        vol = s + noise(err)
        score = truth_free_mse(vol, ra, rb)
        assert score.noise_var == pytest.approx(0.5**2 / 2, rel=0.05)
        assert score.mse == pytest.approx(np.mean((vol - s) ** 2), abs=0.01)
        assert score.mse_to_reference > score.mse + 0.1  # the raw MSE is far off
    assert truth_free_mse(s, ra, rb).to_dict()["rmse"] < 0.1


def test_truth_free_ranks_methods_as_the_truth_on_a_phantom_scan():
    spec = tc.ScanSpec(n_z=8, n_xy=64, n_angles=128, photons=800.0, seed=3)
    scan, truth = tc.simulate_scan(spec)
    rec = tc.reconstruct(scan, splits=4, stripe="none", center=spec.center, threads=1)
    split = rec["split"].values
    used, held = holdout_splits(4)
    assert used == (0, 2) and held == (1, 3)  # even and odd angles
    noisy = split[list(used)].mean(axis=0)
    methods = {  # clearly separated true MSEs (ratios >= 2)
        "unfiltered": noisy,
        "gauss0.5": ndi.gaussian_filter(noisy, (0, 0.5, 0.5)),
        "median": ndi.median_filter(noisy, size=(1, 3, 3)),
        "gauss2": ndi.gaussian_filter(noisy, (0, 2, 2)),
    }
    m = sample_mask(spec)
    est = {k: truth_free_mse(v, split[1], split[3], m).mse for k, v in methods.items()}
    true = {k: float(np.mean((v - truth)[m] ** 2)) for k, v in methods.items()}
    assert sorted(est, key=est.get) == sorted(true, key=true.get), (est, true)
    # the reference's signal is itself an FBP of 64 angles (its blur and streaks are not
    # noise), so the estimate differs from the MSE against the voxel-averaged truth by
    # an offset: measured 1e-6..3e-6 here, 5-16 % of the unfiltered MSE
    for k in methods:
        assert abs(est[k] - true[k]) < 0.2 * true["unfiltered"], (k, est, true)
    assert est["unfiltered"] == pytest.approx(true["unfiltered"], rel=0.25)


def test_holdout_and_bad_input():
    assert holdout_splits(6) == ((0, 2, 4), (1, 3, 5))
    with pytest.raises(InputError, match="splits=4"):
        holdout_splits(3)
    with pytest.raises(InputError, match="even"):
        holdout_splits(5)
    with pytest.raises(InputError, match="one shape"):
        truth_free_mse(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5)))
