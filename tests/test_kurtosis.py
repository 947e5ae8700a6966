"""Kurtosis local noise map (Lyu, Pan & Zhang 2014): kernels vs a slow numpy reference, known truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dct

from noisestat.blocks.dct import dct_bank, dct_matrix
from noisestat.maps import kurtosis as kmod
from noisestat.maps._kurtosis_kernels import box_preblur, fallback_rule, kurtosis_stats, valid_sqrt_kappa
from noisestat.maps.kurtosis import kurtosis_map, local_noise_variance
from noisestat.synth import clean_texture

# --------------------------------------------------------------------------- #
# slow reference written from the paper's equations
# --------------------------------------------------------------------------- #


def ref_band_stats(img, fz, br, var_floor):
    """a, b, c, d of the paper per pixel: direct window central moments, numpy padding."""
    img = np.asarray(img, np.float64)
    h, w = img.shape
    cmat = dct(np.eye(fz), norm="ortho", axis=0)  # row u = DCT-II basis vector u
    o = (fz - 1) // 2
    padded = np.pad(img, ((o, fz - 1 - o), (o, fz - 1 - o)), mode="symmetric")
    patches = sliding_window_view(padded, (fz, fz))
    sums = np.zeros((4, h, w))
    nk = fz * fz - 1
    for u in range(fz):
        for v in range(fz):
            if u == 0 and v == 0:
                continue
            resp = np.einsum("hwij,ij->hw", patches, np.outer(cmat[u], cmat[v]))
            win = sliding_window_view(np.pad(resp, br, mode="symmetric"), (2 * br + 1, 2 * br + 1))
            dev = win - win.mean(axis=(2, 3))[..., None, None]
            var = (dev**2).mean(axis=(2, 3))
            mu4 = (dev**4).mean(axis=(2, 3))
            flat = var <= var_floor
            var = np.where(flat, var_floor, var)
            kurt = np.where(flat, 0.0, mu4 / var**2 - 3.0)
            sk = np.sqrt(np.clip(kurt, 0.0, None))
            sums += np.stack([sk, 1 / var, 1 / var**2, sk / var])
    return sums / nk


def ref_variance(img, fz, br, var_floor):
    a, b, c, d = ref_band_stats(img, fz, br, var_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        sqk = (a * c - b * d) / (c - b * b)
        var_fit = (1 - a / sqk) / b
    flat = 1 / b <= var_floor * (1 + 1e-9)
    ok = np.isfinite(sqk) & ~flat & (c - b * b > 1e-9 * c)
    med = np.median(sqk[ok])
    fallback = ~ok | (sqk < med) | ~(var_fit >= 0)
    return np.where(fallback, 1 / b, var_fit), fallback, a, b, c, d


def test_dct_bank_is_the_orthonormal_ac_basis():
    for fz in (2, 3, 4, 5, 8):
        bank = dct_bank(fz)
        assert bank.shape == (fz * fz - 1, fz, fz)
        flat = bank.reshape(fz * fz - 1, -1)
        np.testing.assert_allclose(flat @ flat.T, np.eye(fz * fz - 1), atol=1e-12)
        np.testing.assert_allclose(flat.sum(axis=1), 0.0, atol=1e-12)
        cmat = dct(np.eye(fz), norm="ortho", axis=0)
        np.testing.assert_allclose(bank[0], np.outer(cmat[0], cmat[1]), atol=1e-12)


def _test_image(rng, shape, flat=8):
    img = rng.normal(120.0, 12.0, shape) + rng.laplace(0.0, 8.0, shape)
    h, w = shape
    img[h // 2 :, w // 2 :] = np.clip(img[h // 2 :, w // 2 :] * 1.8, 0, 255)  # clipped pixels
    img[-4:, : w // 4] = 255.0
    img[2 : 2 + flat, 3 : 3 + flat] = 77.0  # constant patch
    return img.astype(np.float32)


@pytest.mark.parametrize(
    "shape,fz,br,strip", [((37, 29), 4, 2, 7), ((23, 41), 3, 1, 64), ((40, 33), 5, 3, 5), ((45, 39), 4, 8, 16)]
)
def test_kernel_matches_reference(shape, fz, br, strip):
    rng = np.random.default_rng(sum(shape) + fz + br)
    flat = 2 * (br + fz) + 1
    img = _test_image(rng, shape, flat)
    var_floor = 1e-6
    sqk, vfit, vharm = kurtosis_stats(img, dct_matrix(fz), br, strip, var_floor)
    for threads in (1, 3):
        again = kurtosis_stats(img, dct_matrix(fz), br, strip, var_floor, threads=threads)
        for x, y in zip(again, (sqk, vfit, vharm)):
            np.testing.assert_array_equal(x, y)
    a, b, c, d = ref_band_stats(img, fz, br, var_floor)
    np.testing.assert_allclose(vharm, 1 / b, rtol=1e-7)
    den = c - b * b
    good = den > 1e-3 * c
    assert good.mean() > 0.5
    np.testing.assert_allclose(sqk[good], (a * c - b * d)[good] / den[good], rtol=1e-6, atol=1e-9)
    fit_ok = good & (sqk > 0.2)
    np.testing.assert_allclose(vfit[fit_ok], (1 - a[fit_ok] / sqk[fit_ok]) / b[fit_ok], rtol=1e-5, atol=1e-6)
    # at the centre of the constant patch every band is flat: fit undefined, variance = floor
    yc, xc = 2 + flat // 2, 3 + flat // 2
    assert np.isnan(sqk[yc, xc]) and np.isnan(vfit[yc, xc]) and vharm[yc, xc] == pytest.approx(var_floor)
    assert np.all(np.isfinite(vharm))


def test_local_noise_variance_matches_reference_with_fallback_rule():
    rng = np.random.default_rng(3)
    img = _test_image(rng, (51, 47), flat=15)
    var, fallback, flat = local_noise_variance(img, filter_size=4, radius=3, var_floor=1e-6)
    ref, ref_fb, *_ = ref_variance(img, 4, 3, 1e-6)
    agree = fallback == ref_fb
    assert agree.mean() > 0.99  # pixels at the median itself may flip by rounding
    np.testing.assert_allclose(var[agree], ref[agree], rtol=1e-5, atol=1e-6)
    assert 0.4 < fallback.mean() < 1.0  # half the pixels are below the median of sqrt(kappa)
    assert flat.any() and np.all(var[flat] == pytest.approx(1e-6))


def test_fallback_kernels_match_numpy():
    rng = np.random.default_rng(9)
    sqk = rng.normal(1.0, 0.5, (13, 17))
    vfit = rng.normal(2.0, 3.0, sqk.shape)
    vharm = rng.uniform(0.5, 4.0, sqk.shape)
    sqk[0, :5] = np.nan
    vfit[1, :5] = np.nan
    vharm[2, :6] = 1e-6  # flat windows
    sqk[3, 3] = np.inf
    thr = 1e-6 * (1.0 + 1e-9)
    flat = vharm <= thr
    valid = np.isfinite(sqk) & ~flat
    np.testing.assert_array_equal(valid_sqrt_kappa(sqk, vharm, thr), sqk[valid])
    med = float(np.median(sqk[valid]))
    with np.errstate(invalid="ignore"):
        fb = ~valid | ~(sqk >= med) | ~(vfit >= 0.0)
    out = (np.empty(sqk.shape), np.empty(sqk.shape, bool), np.empty(sqk.shape, bool))
    fallback_rule(sqk, vfit, vharm, thr, med, *out)
    np.testing.assert_array_equal(out[0], np.where(fb, vharm, vfit))
    np.testing.assert_array_equal(out[1], fb)
    np.testing.assert_array_equal(out[2], flat)
    assert fb.any() and (~fb).any() and flat.any()


def test_result_does_not_depend_on_strip_or_threads(monkeypatch):
    import numba

    rng = np.random.default_rng(5)
    img = _test_image(rng, (150, 61))
    base = kurtosis_map(img, radius=3)
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = kurtosis_map(img, radius=3)
    finally:
        numba.set_num_threads(n)
    np.testing.assert_array_equal(single.raw, base.raw)
    monkeypatch.setattr(kmod, "STRIP_ROWS", 17)
    other = kurtosis_map(img, radius=3)
    np.testing.assert_allclose(other.raw, base.raw, rtol=1e-4)


def test_box_preblur_matches_reference():
    rng = np.random.default_rng(9)
    img = rng.uniform(0, 255, (19, 26)).astype(np.float32)
    padded = np.pad(img.astype(np.float64), ((1, 2), (1, 2)), mode="symmetric")
    ref = sliding_window_view(padded, (4, 4)).mean(axis=(2, 3))
    np.testing.assert_allclose(box_preblur(img, 4), ref, rtol=1e-5)


# --------------------------------------------------------------------------- #
# known truth
# --------------------------------------------------------------------------- #


def _band_limited_texture(shape, seed):
    """clean_texture at half resolution, cubic-upsampled: a band-limited, noise-free scene.

    The full-resolution clean_texture carries a fine *Gaussian* random texture, which
    the kurtosis-concentration model by construction cannot tell from Gaussian noise
    (its band kurtosis is 0); camera images are band-limited by the optics.
    """
    h, w = shape
    base = clean_texture((h // 2, w // 2), seed=seed)
    return cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_piecewise_constant_noise_field(seed):
    h, w = 256, 320
    clean = _band_limited_texture((h, w), seed)
    sigma = np.full((h, w), 2.0)
    sigma[:, w // 2 :] = 6.0
    rng = np.random.default_rng(100 + seed)
    noisy = np.clip(np.round(clean + rng.standard_normal((h, w)) * sigma), 0, 255).astype(np.uint8)
    hm = kurtosis_map(noisy)
    br = hm.params["radius"]
    left = np.median(hm.raw[:, : w // 2 - br - 1])
    right = np.median(hm.raw[:, w // 2 + br + 1 :])
    assert left == pytest.approx(2.0, rel=0.15)
    assert right == pytest.approx(6.0, rel=0.15)
    # the boundary is visible where it is: column medians cross the geometric mean near w/2
    prof = np.median(hm.raw, axis=0)
    crossing = np.flatnonzero(prof > np.sqrt(2.0 * 6.0))
    assert abs(int(crossing[0]) - w // 2) <= br + 2 and np.all(prof[w // 2 + br + 1 :] > np.sqrt(12.0))
    # the heatmap marks one side as the anomaly only through the fixed mapping
    assert hm.values.shape == (h, w) and 0.0 <= hm.values.min() and hm.values.max() <= 1.0
    assert hm.units.startswith("noise sigma")


def test_uniform_noise_level_and_scale_invariance():
    clean = _band_limited_texture((192, 224), 4)
    rng = np.random.default_rng(8)
    noisy = np.clip(clean + rng.normal(0, 4.0, clean.shape), 0, 255)
    hm8 = kurtosis_map(np.round(noisy).astype(np.uint8))
    assert np.median(hm8.raw) == pytest.approx(4.0, rel=0.15)
    hm16 = kurtosis_map((np.round(noisy).astype(np.uint16) * 257).astype(np.uint16))
    np.testing.assert_allclose(hm16.raw, hm8.raw * 257, rtol=1e-3)
    np.testing.assert_allclose(hm16.values, hm8.values, atol=1e-3)


def test_colour_modes_and_preblur():
    clean = _band_limited_texture((96, 112), 2)
    rng = np.random.default_rng(2)
    rgb = np.clip(clean[..., None] + rng.normal(0, 5.0, clean.shape + (3,)), 0, 255)
    mean = kurtosis_map(rgb, color="mean")
    assert np.median(mean.raw) == pytest.approx(5.0, rel=0.15)
    luma = kurtosis_map(rgb)  # luma of independent channel noise: sigma * |(0.299, 0.587, 0.114)|
    assert np.median(luma.raw) == pytest.approx(5.0 * np.sqrt(0.299**2 + 0.587**2 + 0.114**2), rel=0.15)
    gray = rgb[..., 0]
    np.testing.assert_array_equal(kurtosis_map(gray, color="mean").raw, kurtosis_map(gray).raw)
    blurred = kurtosis_map(rgb, preblur=True)
    assert blurred.params["preblur"] is True
    assert np.median(blurred.raw) < 0.5 * np.median(luma.raw)  # a 4x4 box divides white noise sigma by 4


def test_constant_and_partly_flat_images():
    const = kurtosis_map(np.full((40, 40), 200, np.uint8))
    assert not const.applicable and "flat" in const.note
    assert np.all(const.values == 0) and np.all(np.isfinite(const.raw))
    rng = np.random.default_rng(4)
    img = np.clip(_band_limited_texture((96, 96), 3) + rng.normal(0, 3, (96, 96)), 0, 255)
    img[:40, :40] = 255.0  # saturated block
    hm = kurtosis_map(img, radius=4)
    assert hm.applicable and "flat" in hm.note
    assert np.all(hm.values[:30, :30] == 0) and np.all(np.isfinite(hm.raw))
    assert np.median(hm.raw[60:, 60:]) == pytest.approx(3.0, rel=0.3)


def test_registered_and_bad_inputs():
    import noisestat

    assert "kurtosis" in noisestat.methods()
    img = np.random.default_rng(0).normal(128, 5, (40, 40))
    with pytest.raises(ValueError, match="radius"):
        kurtosis_map(img, radius=0)
    with pytest.raises(TypeError, match="radius"):
        kurtosis_map(img, radius=2.5)
    with pytest.raises(ValueError, match="filter_size"):
        kurtosis_map(img, filter_size=1)
    with pytest.raises(ValueError, match="color"):
        kurtosis_map(img, color="rgb")
    with pytest.raises(TypeError, match="preblur"):
        kurtosis_map(img, preblur="yes")
    with pytest.raises(ValueError, match="smaller than the minimum"):
        kurtosis_map(img, radius=20)
    bad = img.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kurtosis_map(bad)
    with pytest.raises(ValueError, match="no parameter"):
        noisestat.localize(img, method="kurtosis", window=3)
