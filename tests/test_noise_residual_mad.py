"""Residual-variance and wavelet-MAD noise estimators: references, derived factors, known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

import noisestat
from noisestat.blocks import wavelets
from noisestat.noise import mad as madmod
from noisestat.noise import residual as resmod
from noisestat.synth import clean_texture

# --------------------------------------------------------------------------- #
# slow references
# --------------------------------------------------------------------------- #


def ref_median3(ch: np.ndarray) -> np.ndarray:
    """3x3 median at interior pixels (no border handling needed there)."""
    win = sliding_window_view(np.asarray(ch, np.float64), (3, 3))
    return np.median(win.reshape(win.shape[0], win.shape[1], 9), axis=2)


def ref_residual_sigma(ch, bad, denoiser, gaussian_sigma=1.0):
    """sigma from the residual at pixels whose footprint is inside the image and free of bad pixels."""
    ch = np.asarray(ch, np.float64)
    if denoiser == "median3":
        rad, k = 1, None
        den = ref_median3(ch)
    elif denoiser == "box3":
        rad = 1
        den = sliding_window_view(ch, (3, 3)).mean(axis=(2, 3))
    else:
        rad = int(math.ceil(3 * gaussian_sigma))
        x = np.arange(-rad, rad + 1)
        g = np.exp(-(x**2) / (2 * gaussian_sigma**2))
        w2 = np.outer(g, g) / g.sum() ** 2
        den = np.einsum("ijkl,kl->ij", sliding_window_view(ch, w2.shape), w2)
    res = ch[rad:-rad, rad:-rad] - den
    ok = ~sliding_window_view(bad, (2 * rad + 1, 2 * rad + 1)).any(axis=(2, 3))
    k = resmod.residual_factor(denoiser, gaussian_sigma=gaussian_sigma)
    return math.sqrt(np.var(res[ok])) / k, int(ok.sum())


def ref_hh(ch: np.ndarray, g: np.ndarray) -> np.ndarray:
    """HH[i, j] = sum_k sum_l g[k] g[l] x[2i + k, 2j + l], explicit loops."""
    L = g.size
    h = (ch.shape[0] - L) // 2 + 1
    w = (ch.shape[1] - L) // 2 + 1
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            blk = ch[2 * i : 2 * i + L, 2 * j : 2 * j + L]
            out[i, j] = g @ blk @ g
    return out


def noisy(sigma: float, seed: int, shape=(256, 256, 3)) -> np.ndarray:
    clean = clean_texture(shape, seed=0)
    return clean + np.random.default_rng(seed).normal(0.0, sigma, clean.shape)


HALF = np.zeros((256, 256), bool)
HALF[:, :128] = True

# --------------------------------------------------------------------------- #
# residual: correction factors
# --------------------------------------------------------------------------- #


def test_median3_factor_matches_monte_carlo():
    k = resmod.residual_factor("median3")
    x = np.random.default_rng(0).standard_normal((600_000, 9))
    r = x[:, 4] - np.median(x, axis=1)
    # the std of 600k draws has a relative standard error of ~0.1 %
    assert k == pytest.approx(r.std(), rel=0.004)
    assert k == pytest.approx(0.97153, abs=1e-5)


def test_median3_factor_identity_by_order_statistics():
    # the clip identity used in the derivation: median of 9 = clip(x, Y4, Y5)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 9))
    ys = np.sort(x[:, 1:], axis=1)
    np.testing.assert_array_equal(np.median(x, axis=1), np.clip(x[:, 0], ys[:, 3], ys[:, 4]))


@pytest.mark.parametrize("gs", [0.6, 1.0, 2.0])
def test_linear_factors_match_monte_carlo(gs):
    assert resmod.residual_factor("box3") == pytest.approx(math.sqrt(8 / 9), rel=1e-15)
    k = resmod.residual_factor("gaussian", gaussian_sigma=gs)
    n = np.random.default_rng(2).standard_normal((300, 300))
    ch = 128 + 10 * n
    est = resmod.estimate_noise_residual(ch, denoiser="gaussian", gaussian_sigma=gs)
    assert est.sigma == pytest.approx(10, rel=0.02)
    assert est.params["factor"] == k
    assert 0 < k < 1


# --------------------------------------------------------------------------- #
# residual: estimator vs reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("denoiser", ["median3", "box3", "gaussian"])
@pytest.mark.parametrize("shape", [(37, 23), (20, 31)])
def test_residual_matches_reference(denoiser, shape, rng):
    img = np.clip(rng.normal(120, 40, shape), 0, 255).round().astype(np.uint8)  # has clipped pixels
    mask = np.ones(shape, bool)
    mask[:, : shape[1] // 3] = False
    est = resmod.estimate_noise_residual(img, denoiser=denoiser, mask=mask, gaussian_sigma=0.8, min_samples=1)
    ch = img.astype(np.float64)
    bad = (ch <= 0) | (ch >= 255) | ~mask
    s, n = ref_residual_sigma(ch, bad, denoiser, gaussian_sigma=0.8)
    assert est.sigma == pytest.approx(s, rel=1e-5)
    assert est.n_patches == n


def test_residual_rgb_is_rms_of_channels(rng):
    img = rng.uniform(20, 230, (33, 41, 3))
    est = resmod.estimate_noise_residual(img)
    per = [ref_residual_sigma(img[:, :, c].astype(np.float32), np.zeros((33, 41), bool), "median3")[0]
           for c in range(3)]
    np.testing.assert_allclose(est.sigma_per_channel, per, rtol=1e-5)
    assert est.sigma == pytest.approx(math.sqrt(np.mean(np.square(per))), rel=1e-12)


# --------------------------------------------------------------------------- #
# MAD: filters and subband vs reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("wavelet", wavelets.WAVELETS)
def test_daubechies_filters_properties(wavelet):
    h, g = wavelets.daubechies_filters(wavelet)
    n = h.size // 2
    assert h.sum() == pytest.approx(math.sqrt(2), abs=1e-10)
    for m in range(n):  # orthonormal to even shifts
        assert np.dot(h[: h.size - 2 * m], h[2 * m :]) == pytest.approx(float(m == 0), abs=1e-10)
        assert np.dot(g[: g.size - 2 * m], g[2 * m :]) == pytest.approx(float(m == 0), abs=1e-10)
    k = np.arange(g.size, dtype=np.float64)
    for p in range(n):  # N vanishing moments
        assert abs(np.sum(g * k**p)) < 1e-7 * max(1.0, np.sum(np.abs(g) * k**p))
    assert abs(np.sum(g * k**n)) > 1e-3


def test_db2_closed_form():
    h, _ = wavelets.daubechies_filters("db2")
    s3 = math.sqrt(3)
    expect = np.array([1 + s3, 3 + s3, 3 - s3, 1 - s3]) / (4 * math.sqrt(2))
    np.testing.assert_allclose(h, expect, atol=1e-12)


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db8"])
@pytest.mark.parametrize("shape", [(16, 16), (35, 22), (41, 33)])
def test_diagonal_subband_matches_reference(wavelet, shape, rng):
    x = rng.uniform(0, 255, shape)
    _, g = wavelets.daubechies_filters(wavelet)
    np.testing.assert_allclose(wavelets.diagonal_subband(x, wavelet), ref_hh(x, g), rtol=1e-12, atol=1e-9)


def test_haar_subband_is_block_difference(rng):
    x = rng.uniform(0, 255, (9, 7))
    hh = wavelets.diagonal_subband(x)
    a, b, c, d = x[0:8:2, 0:6:2], x[0:8:2, 1:7:2], x[1:9:2, 0:6:2], x[1:9:2, 1:7:2]
    np.testing.assert_allclose(hh, (a - b - c + d) / 2, rtol=1e-12)


@pytest.mark.parametrize("wavelet", ["haar", "db4"])
def test_mad_matches_reference(wavelet, rng):
    img = np.clip(rng.normal(120, 40, (45, 38, 3)), 0, 255).round().astype(np.uint8)
    mask = np.ones((45, 38), bool)
    mask[30:, :] = False
    est = madmod.estimate_noise_mad(img, mask=mask, wavelet=wavelet, min_coeffs=1)
    _, g = wavelets.daubechies_filters(wavelet)
    per, total = [], 0
    L = g.size
    for c in range(3):
        ch = img[:, :, c].astype(np.float64)
        bad = (ch <= 0) | (ch >= 255) | ~mask
        hh = ref_hh(ch, g)
        ok = np.array([[not bad[2 * i : 2 * i + L, 2 * j : 2 * j + L].any() for j in range(hh.shape[1])]
                       for i in range(hh.shape[0])])
        per.append(np.median(np.abs(hh[ok])) / norm.ppf(0.75))
        total += int(ok.sum())
    np.testing.assert_allclose(est.sigma_per_channel, per, rtol=1e-9)
    assert est.n_patches == total
    assert madmod.MAD_GAUSS == pytest.approx(norm.ppf(0.75), rel=1e-15)


# --------------------------------------------------------------------------- #
# known truth (documented tolerances, see the Notes of both estimators)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_flat_region_is_unbiased(sigma):
    img = 128 + np.random.default_rng(int(sigma)).normal(0, sigma, (200, 220, 3))
    for est in (
        resmod.estimate_noise_residual(img),
        resmod.estimate_noise_residual(img, denoiser="gaussian"),
        resmod.estimate_noise_residual(img, denoiser="box3"),
        madmod.estimate_noise_mad(img),
        madmod.estimate_noise_mad(img, wavelet="db8"),
    ):
        assert est.reliable, est.note
        assert est.sigma == pytest.approx(sigma, rel=0.03)


@pytest.mark.parametrize("sigma,tol_res,tol_haar,tol_db8", [(2.0, 0.20, 0.10, 0.15), (5.0, 0.05, 0.05, 0.08),
                                                            (10.0, 0.04, 0.04, 0.06)])
def test_textured_image_documented_tolerance(sigma, tol_res, tol_haar, tol_db8):
    img = noisy(sigma, 21)
    for region in (None, HALF):
        r = noisestat.estimate_noise_residual(img, mask=region)
        m = noisestat.estimate_noise_mad(img, mask=region)
        m8 = noisestat.estimate_noise_mad(img, mask=region, wavelet="db8")
        for est, tol in ((r, tol_res), (m, tol_haar), (m8, tol_db8)):
            assert est.reliable
            # texture leaks into the residual / finest subband: these read high, never much low
            assert -0.02 < est.sigma / sigma - 1 < tol, (est.method, est.params, est.sigma)
    # the smooth linear denoisers pass more texture: larger error, still an over-estimate
    g = noisestat.estimate_noise_residual(img, denoiser="gaussian")
    assert g.sigma > noisestat.estimate_noise_residual(img).sigma


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("func", [resmod.estimate_noise_residual, madmod.estimate_noise_mad])
def test_bad_inputs(func):
    img = np.full((64, 64), 100.0)
    img[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        func(img)
    with pytest.raises(ValueError, match="smaller"):
        func(np.full((1, 1), 5.0))
    with pytest.raises(ValueError, match="empty"):
        func(np.full((64, 64), 5.0), mask=np.zeros((64, 64), bool))
    with pytest.raises(TypeError):
        func(np.full((64, 64), 5.0), None)  # keyword-only
    const = func(np.full((64, 64, 3), 77, np.uint8))
    assert const.sigma == 0.0 and not const.reliable and "0" in const.note
    sat = func(np.full((64, 64), 255, np.uint8))
    assert math.isnan(sat.sigma) and not sat.reliable and "clipped" in sat.note
    tiny = np.zeros((64, 64), bool)
    tiny[10:14, 10:14] = True
    noisy_img = 100 + np.random.default_rng(0).normal(0, 5, (64, 64))
    small = func(noisy_img, mask=tiny)
    assert not small.reliable and small.note and (math.isnan(small.sigma) or small.sigma > 0)
    one = np.zeros((64, 64), bool)
    one[5, 5] = True
    none = func(noisy_img, mask=one)
    assert math.isnan(none.sigma) and not none.reliable


def test_parameter_errors():
    img = np.full((32, 32), 5.0)
    with pytest.raises(ValueError, match="denoiser"):
        resmod.estimate_noise_residual(img, denoiser="wiener")
    with pytest.raises(ValueError, match="gaussian_sigma"):
        resmod.estimate_noise_residual(img, denoiser="gaussian", gaussian_sigma=0)
    with pytest.raises(ValueError, match="wavelet"):
        madmod.estimate_noise_mad(img, wavelet="sym4")
    with pytest.raises(TypeError, match="min_coeffs"):
        madmod.estimate_noise_mad(img, min_coeffs=2.5)
    with pytest.raises(ValueError, match="too small"):
        wavelets.diagonal_subband(np.zeros((3, 3)), "db2")


def test_lazy_exports():
    assert noisestat.estimate_noise_residual is resmod.estimate_noise_residual
    assert noisestat.estimate_noise_mad is madmod.estimate_noise_mad


@pytest.mark.parametrize("func", [resmod.estimate_noise_residual, madmod.estimate_noise_mad,
                                  noisestat.estimate_noise_weak_texture])
def test_16bit_native_scale_and_loaded_image(func):
    img = np.clip(np.round(30000 + np.random.default_rng(4).normal(0, 500, (160, 160))), 0, 65535)
    img = img.astype(np.uint16)
    est = func(img)
    assert est.reliable, est.note
    assert est.sigma == pytest.approx(500, rel=0.06)
    loaded = noisestat.load_image(img)
    assert func(loaded).sigma == est.sigma
    # a 16-bit value of 255 is not clipped: the usable sample count is unchanged
    if func is not noisestat.estimate_noise_weak_texture:  # (its n_patches counts selected patches)
        low = img.copy()
        low[:20] = 255
        assert func(low).n_patches == est.n_patches
        flt = img.astype(np.float64) / 257
        flt[:20] = 255.0  # on float (0-255) input 255 is white: clipped, left out
        assert func(flt).n_patches < est.n_patches
