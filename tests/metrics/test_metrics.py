"""Known-answer tests of tomochunk.metrics."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from tomochunk.errors import InputError
from tomochunk.metrics import (
    FWHM_PER_SIGMA,
    affine_fit,
    auto_masks,
    cnr,
    difference_structure,
    fit_peaks,
    frc,
    fsc,
    half_bit_threshold,
    line_profile,
    noise_from_halves,
    peak_frequency,
    psd_1d,
    psnr,
    ssim,
    summarize_fwhm,
)

RNG = np.random.default_rng(1234)


# ------------------------------------------------------------------------------- CNR


def test_cnr_constructed_regions_exact():
    img = np.zeros((4, 10))
    img[:2, :] = np.tile([9.0, 11.0], 5)  # material: mean 10, std 1
    img[2:, :] = np.tile([1.0, 4.0], 5)  # air: mean 2.5, std 1.5
    mat = np.zeros(img.shape, bool)
    mat[:2] = True
    expected = (10 - 2.5) / np.sqrt((1.0 + 2.25) / 2)
    assert cnr(img, mat, ~mat) == pytest.approx(expected, rel=1e-12)
    assert cnr(img, ~mat, mat) == pytest.approx(-expected, rel=1e-12)


def test_cnr_bad_masks():
    img = RNG.normal(size=(8, 8))
    m = np.zeros((8, 8), bool)
    m[:4] = True
    with pytest.raises(InputError, match="has shape \\(9, 8\\) but the image has shape"):
        cnr(img, np.ones((9, 8), bool), m)
    with pytest.raises(InputError, match="air mask is empty"):
        cnr(img, m, np.zeros((8, 8), bool))
    with pytest.raises(InputError, match="overlap in 32 voxels"):
        cnr(img, m, m)
    with pytest.raises(InputError, match="perfectly uniform"):
        cnr(np.ones((8, 8)), m, ~m)


def test_auto_masks_find_disc_and_background():
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 32) ** 2 + (xx - 32) ** 2 < 15**2
    img = disc * 1.0 + RNG.normal(0, 0.3, disc.shape)
    mat, air = auto_masks(img, erode=2)
    assert not (mat & air).any()
    # eroded: inside the disc / outside it, away from the edge by >= 2 pixels
    assert mat.sum() > 0.6 * disc.sum() and np.all(disc[mat])
    assert np.all(~disc[air])
    assert not (ndimage.binary_dilation(disc, iterations=1) & air).any()
    assert cnr(img, mat, air) == pytest.approx(1 / 0.3, rel=0.1)
    with pytest.raises(InputError, match="empty after eroding by 40"):
        auto_masks(img, erode=40)
    with pytest.raises(InputError, match="sample mask is empty"):
        auto_masks(img, sample_mask=np.zeros(img.shape, bool))


# ----------------------------------------------------------------------- line profiles


@pytest.mark.parametrize("sigma", [1.5, 3.0, 6.0])
def test_gaussian_fwhm_known_width(sigma):
    d = np.linspace(0, 60, 241)
    v = 5 + 3 * np.exp(-0.5 * ((d - 31.3) / sigma) ** 2) + RNG.normal(0, 0.01, d.size)
    (fit,) = fit_peaks(d, v)
    assert fit.fwhm == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.02)
    assert FWHM_PER_SIGMA == pytest.approx(2.3548, abs=1e-4)
    assert fit.center == pytest.approx(31.3, abs=0.05)
    assert fit.offset == pytest.approx(5, abs=0.05)
    assert 0 < fit.fwhm_err < 0.05 * fit.fwhm


def test_fwhm_uncertainty_grows_with_noise():
    d = np.linspace(0, 40, 161)
    clean = np.exp(-0.5 * ((d - 20) / 2.0) ** 2)
    errs = [fit_peaks(d, clean + RNG.normal(0, s, d.size), peaks=[20.0])[0].fwhm_err
            for s in (0.01, 0.1)]
    assert errs[1] > 5 * errs[0]


def test_periodic_peaks_and_summary():
    d = np.arange(0, 100.0, 0.5)
    sigma = 2.0
    v = sum(np.exp(-0.5 * ((d - c) / sigma) ** 2) for c in (20, 40, 60, 80))
    fits = fit_peaks(d, v)
    assert [round(f.center) for f in fits] == [20, 40, 60, 80]
    s = summarize_fwhm(fits)
    assert s["n_peaks"] == 4
    assert s["fwhm"] == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.02)
    # dark peaks (pores): polarity="min"
    fits_min = fit_peaks(d, 1 - v, polarity="min")
    assert len(fits_min) == 4 and fits_min[0].amplitude < 0
    assert summarize_fwhm([])["fwhm"] is None


def test_line_profile_any_orientation_and_lazy():
    z, y, x = np.mgrid[:8, :20, :30].astype(float)
    vol = 2 * z + 3 * y + 5 * x  # linear: linear interpolation is exact
    dist, val = line_profile(vol, (1, 2, 3), (6, 17.5, 25.2), num=50)
    t = np.linspace(0, 1, 50)
    p = np.array([1, 2, 3])[:, None] + np.array([5, 15.5, 22.2])[:, None] * t
    np.testing.assert_allclose(val, 2 * p[0] + 3 * p[1] + 5 * p[2], rtol=1e-12)
    assert dist[-1] == pytest.approx(np.linalg.norm([5, 15.5, 22.2]))
    # a dask volume gives the same (only the bounding box is read)
    _, val_lazy = line_profile(da.from_array(vol, chunks=4), (1, 2, 3), (6, 17.5, 25.2), num=50)
    np.testing.assert_allclose(val_lazy, val)
    # 2D, yz orientation with constant x, default sampling one per pixel, physical units
    d2, v2 = line_profile(vol[:, :, 7], (0, 0), (7, 0), pixel_size=22.0)
    assert v2.size == 8 and d2[-1] == pytest.approx(7 * 22.0)


def test_line_profile_outside_volume():
    vol = np.zeros((4, 5, 6))
    with pytest.raises(InputError, match="end point .* lies outside the volume of shape"):
        line_profile(vol, (0, 0, 0), (3, 4, 6))
    with pytest.raises(InputError, match="start point"):
        line_profile(vol, (-1, 0, 0), (3, 4, 5))
    with pytest.raises(InputError, match="must have 3 coordinates"):
        line_profile(vol, (0, 0), (3, 4))


# ----------------------------------------------------------------------------- PSD


def test_psd_peak_at_sinusoid_frequency():
    n, f0, px = 256, 0.125, 22.2  # 8 pixel period
    x = np.arange(n)
    rows = np.sin(2 * np.pi * f0 * x + RNG.uniform(0, 2 * np.pi, (32, 1)))
    img = rows + RNG.normal(0, 0.5, rows.shape)
    f, p = psd_1d(img)
    assert peak_frequency(f, p) == pytest.approx(f0, abs=1 / n)
    fnm, pnm = psd_1d(img, pixel_size=px)
    assert peak_frequency(fnm, pnm) == pytest.approx(f0 / px, rel=1e-9)
    assert fnm[-1] == pytest.approx(0.5 / px)


def test_psd_parseval_white_noise():
    img = RNG.normal(0, 2.0, (64, 512))
    f, p = psd_1d(img, window=None)
    # integral over frequency = variance (4), flat spectrum 2*var for one-sided density
    assert np.trapezoid(p, f) == pytest.approx(4.0, rel=0.05)
    assert np.median(p[1:-1]) == pytest.approx(8.0, rel=0.1)


# ----------------------------------------------------------------------------- FRC


def test_frc_identical_images_is_one():
    img = RNG.normal(size=(64, 64))
    r = frc(img, img, pixel_size=10.0)
    np.testing.assert_allclose(r.frc[1:], 1.0, atol=1e-12)
    assert r.crossing is None and r.resolution_px is None
    assert r.freq[-1] == pytest.approx(0.5)


def test_frc_white_noise_is_near_zero_and_crosses_early():
    a, b = RNG.normal(size=(2, 128, 128))
    r = frc(a, b)
    # independent noise: FRC per ring ~ N(0, 1/n_ring), so |FRC| sqrt(n) ~ 0.8 on average
    assert np.mean(np.abs(r.frc[2:]) * np.sqrt(r.n_per_ring[2:])) < 1.2
    assert np.mean(np.abs(r.frc[20:])) < 0.06
    assert r.crossing is not None and r.crossing < 0.1


def test_frc_known_snr():
    # a = s + n1, b = s + n2, equal white variances: FRC = SNR / (1 + SNR) = 0.5
    s = RNG.normal(size=(256, 256))
    a = s + RNG.normal(size=s.shape)
    b = s + RNG.normal(size=s.shape)
    r = frc(a, b)
    assert np.mean(r.frc[10:]) == pytest.approx(0.5, abs=0.02)


def test_frc_crossing_of_band_limited_signal():
    # signal limited to |f| < 0.2 cycles/px plus white noise: crossing just above 0.2
    n, px = 256, 20.0
    f = np.fft.fftfreq(n)
    lowpass = (np.sqrt(f[:, None] ** 2 + f[None] ** 2) < 0.2).astype(float)
    s = np.fft.ifft2(np.fft.fft2(RNG.normal(size=(n, n))) * lowpass).real * 10
    r = frc(s + RNG.normal(size=(n, n)), s + RNG.normal(size=(n, n)), pixel_size=px)
    assert 0.19 < r.crossing < 0.22
    assert r.resolution_nm == pytest.approx(px / r.crossing)
    d = r.to_dict()
    assert d["resolution_px"] == pytest.approx(1 / r.crossing) and len(d["frc"]) == len(r.freq)


def test_fsc_shells_and_threshold():
    v = RNG.normal(size=(16, 16, 16))
    r = fsc(v, v)
    np.testing.assert_allclose(r.frc[1:], 1.0, atol=1e-12)
    # half-bit threshold tends to 0.1716 for large rings, and is 1 for a one-pixel ring
    assert half_bit_threshold(1) == pytest.approx(1.0, abs=1e-3)
    assert half_bit_threshold(1e12) == pytest.approx(0.2071 / 1.2071, abs=1e-4)
    with pytest.raises(InputError, match="same shape"):
        frc(v[0], v[0, :8])


# ----------------------------------------------------------------------- PSNR / SSIM


def _phantom(n=64):
    yy, xx = np.mgrid[:n, :n]
    t = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 3) ** 2) * 1.0
    t += 0.5 * (np.sin(xx / 2.0) > 0) * (yy < n / 2)
    return t


def test_psnr_of_known_mse():
    t = _phantom()
    rng = float(np.ptp(t))
    e = RNG.choice([-0.1, 0.1], size=t.shape)  # MSE exactly 0.01
    assert psnr(t + e, t, fit="none") == pytest.approx(10 * np.log10(rng**2 / 0.01), rel=1e-12)
    assert psnr(t, t, fit="none") == np.inf
    mask = np.zeros(t.shape, bool)
    mask[:10] = True
    e2 = np.where(mask, 0.0, 1.0)  # errors only outside the mask
    assert psnr(t + e2, t, mask=mask, fit="none", data_range=1.0) == np.inf


def test_affine_fit_recovers_scaled_image():
    t = _phantom()
    noise = RNG.normal(0, 0.05, t.shape)
    x = 3.0 * (t + noise) - 2.0
    a, b = affine_fit(x, t)
    assert a == pytest.approx(1 / 3, rel=0.02) and b == pytest.approx(2 / 3, rel=0.05)
    assert psnr(x, t) == pytest.approx(psnr(t + noise, t, fit="none"), abs=0.2)
    assert psnr(x, t, fit="none") < psnr(x, t) - 10
    assert ssim(x, t) == pytest.approx(ssim(t + noise, t, fit="none"), abs=0.01)


def test_ssim_identical_and_ordering():
    t = _phantom()
    assert ssim(t, t) == pytest.approx(1.0)
    noisy = t + RNG.normal(0, 0.3, t.shape)
    smooth = ndimage.gaussian_filter(noisy, 1.0)
    assert ssim(smooth, t) > ssim(noisy, t)
    vol = np.stack([t, t, t])
    assert ssim(vol + 0.0, vol) == pytest.approx(1.0)


def test_quality_bad_truth():
    t = _phantom()
    with pytest.raises(InputError, match="the truth has shape \\(32, 64\\)"):
        psnr(t, t[:32])
    with pytest.raises(InputError, match="mask is empty"):
        ssim(t, t, mask=np.zeros(t.shape, bool))
    with pytest.raises(InputError, match="fit must be"):
        psnr(t, t, fit="quadratic")


# --------------------------------------------------------------------- noise, difference


def test_noise_from_halves_known_std_and_map():
    s = np.tile(_phantom(), (6, 1, 1))
    sigma = np.linspace(0.05, 0.2, 64)[None, None, :]  # noise rising along x
    a = s + RNG.normal(size=s.shape) * sigma
    b = s + RNG.normal(size=s.shape) * sigma
    per_slice, xy = noise_from_halves(a, b, window=5)
    expected = np.sqrt(np.mean(sigma**2))
    np.testing.assert_allclose(per_slice, expected, rtol=0.05)
    assert xy.shape == (64, 64)
    np.testing.assert_allclose(xy[:, 10:-10].mean(axis=0), sigma[0, 0, 10:-10], rtol=0.15)
    p2, m2 = noise_from_halves(a[0], b[0])
    assert p2.shape == (1,) and m2.shape == (64, 64)
    with pytest.raises(InputError, match="same shape"):
        noise_from_halves(a, b[:3])


def test_difference_structure_noise_vs_blur():
    t = _phantom(128)
    noisy = t + RNG.normal(0, 0.2, t.shape)
    perfect = difference_structure(t, noisy, reference=t)
    blurred = difference_structure(ndimage.gaussian_filter(noisy, 2.0), noisy, reference=t)
    assert perfect["structure_fraction"] < 1e-3
    assert blurred["structure_fraction"] > 0.03
    clean_blur = difference_structure(ndimage.gaussian_filter(t, 2.0), t, reference=t)
    assert clean_blur["structure_fraction"] > 0.1 and clean_blur["correlation"] < 0
    np.testing.assert_allclose(perfect["difference"], t - noisy)
    # without a reference the filtered image is the signal estimate
    no_ref = difference_structure(t, noisy)
    assert no_ref["signal"] == "filtered" and no_ref["structure_fraction"] < 1e-3
    with pytest.raises(InputError, match="reference has shape"):
        difference_structure(t, noisy, reference=t[:5])
