"""Liu-Tanaka-Okutomi (2013) weak-texture noise estimator: kernels vs slow references, known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import gamma

import noisestat
from noisestat.noise import weak_texture as wt
from noisestat.noise._weak_texture_kernels import find_runs, gather_patches, patch_texture, select_below
from noisestat.synth import clean_texture

# --------------------------------------------------------------------------- #
# slow plain-numpy references written from the paper's equations
# --------------------------------------------------------------------------- #


def ref_dd(p: int) -> np.ndarray:
    """DD = D_h^T D_h + D_v^T D_v, built column by column from unit patches."""
    cols_h, cols_v = [], []
    for k in range(p * p):
        e = np.zeros((p, p))
        e.flat[k] = 1.0
        cols_h.append(((e[:, 2:] - e[:, :-2]) / 2).ravel())
        cols_v.append(((e[2:, :] - e[:-2, :]) / 2).ravel())
    dh = np.array(cols_h).T
    dv = np.array(cols_v).T
    return dh.T @ dh + dv.T @ dv


def ref_patches(ch: np.ndarray, p: int) -> np.ndarray:
    """All p x p patches, row-major, shape (Hp, Wp, p*p)."""
    win = sliding_window_view(np.asarray(ch, np.float64), (p, p))
    return win.reshape(win.shape[0], win.shape[1], p * p)


def ref_texture(ch: np.ndarray, p: int) -> np.ndarray:
    x = ref_patches(ch, p)
    return np.einsum("ijk,kl,ijl->ij", x, ref_dd(p), x)


def ref_valid(bad: np.ndarray, p: int) -> np.ndarray:
    return ~sliding_window_view(bad.astype(bool), (p, p)).any(axis=(2, 3))


def ref_liu_channel(ch, bad, p, conf, n_iter, center=False):
    """Liu et al. 2013 on one channel from the equations (full patch matrix, eigh)."""
    dd = ref_dd(p)
    r = np.linalg.matrix_rank(dd)
    tau0 = gamma.ppf(conf, r / 2, scale=2 * np.trace(dd) / r)
    x = ref_patches(ch, p)[ref_valid(bad, p)]
    tex = np.einsum("nk,kl,nl->n", x, dd, x)
    if x.shape[0] < p * p:
        return math.nan, 0

    def sig2_of(xs):
        c = np.cov(xs.T) if center else xs.T @ xs / (xs.shape[0] - 1)
        return max(np.linalg.eigh(c)[0][0], 0.0)

    sig2 = sig2_of(x)
    used = x.shape[0]
    for _ in range(1, n_iter):
        keep = tex < sig2 * tau0
        x, tex = x[keep], tex[keep]
        if x.shape[0] < p * p or x.shape[0] == used:
            break
        sig2 = sig2_of(x)
        used = x.shape[0]
    return sig2, used


def noisy(sigma: float, seed: int, shape=(256, 256, 3)) -> np.ndarray:
    clean = clean_texture(shape, seed=0)
    return clean + np.random.default_rng(seed).normal(0.0, sigma, clean.shape)


# --------------------------------------------------------------------------- #
# derivative operators and threshold
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("p", [3, 4, 5, 7, 8])
def test_derivative_matrices_match_reference(p):
    dh, dv = wt.derivative_matrices(p)
    assert dh.shape == dv.shape == (p * (p - 2), p * p)
    np.testing.assert_allclose(dh.T @ dh + dv.T @ dv, ref_dd(p), atol=1e-15)
    tau0, rank, trace = wt.texture_threshold(p)
    # null space: patches constant on each of the 4 (row parity, column parity) classes
    assert rank == p * p - 4
    assert trace == pytest.approx(p * (p - 2))
    assert tau0 == pytest.approx(gamma.ppf(1 - 1e-6, rank / 2, scale=2 * trace / rank), rel=1e-12)


def test_threshold_values_for_p7():
    tau0, rank, trace = wt.texture_threshold(7)
    assert (rank, trace) == (45, 35.0)
    assert tau0 == pytest.approx(81.82, abs=0.01)
    # a larger confidence gives a larger threshold
    assert wt.texture_threshold(7, conf=1 - 1e-9)[0] > tau0


def test_gamma_model_matches_pure_noise_texture():
    # for i.i.d. N(0, 1) patches xi = x^T DD x has mean tr(DD) (the Gamma model's mean
    # shape * scale) and rarely exceeds tau0 (conf = 1 - 1e-6; the Gamma fit matches two
    # moments only, so its far tail is not exact)
    p = 7
    tau0, rank, trace = wt.texture_threshold(p)
    x = np.random.default_rng(3).standard_normal((40000, p * p))
    xi = np.einsum("nk,kl,nl->n", x, ref_dd(p), x)
    assert xi.mean() == pytest.approx((rank / 2) * (2 * trace / rank), rel=0.01)
    assert np.mean(xi >= tau0) < 0.005
    # a lower confidence cuts the tail roughly at its level (the Gamma fit is approximate)
    tau90 = wt.texture_threshold(p, conf=0.9)[0]
    assert 0.05 < np.mean(xi >= tau90) < 0.2


# --------------------------------------------------------------------------- #
# kernels vs references
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("shape,p", [((23, 31), 7), ((16, 9), 5), ((11, 12), 3), ((40, 33), 8)])
def test_patch_texture_matches_reference(shape, p, rng):
    img = rng.uniform(0, 255, shape).astype(np.float32)
    img[2:2 + p, 3:3 + p] = 77.0  # a constant patch: texture 0
    bad = (rng.random(shape) < 0.02).astype(np.uint8)
    tex, valid = patch_texture(img, bad, p)
    np.testing.assert_allclose(tex, ref_texture(img, p), rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(valid, ref_valid(bad, p))
    assert tex[2, 3] == 0.0


def test_select_below_is_cumulative(rng):
    tex = rng.uniform(0, 10, (9, 13))
    keep = rng.random((9, 13)) < 0.7
    expect = keep & (tex < 4.0)
    removed = np.zeros_like(keep)
    before = keep.copy()
    n = select_below(tex, keep, 4.0, removed)
    np.testing.assert_array_equal(removed, before & ~expect)
    np.testing.assert_array_equal(keep, expect)
    assert n == expect.sum()


@pytest.mark.parametrize("p", [3, 7])
def test_gather_and_second_moments_match_patch_matrix(p, rng, monkeypatch):
    img = rng.uniform(0, 255, (37, 29)).astype(np.float32)
    keep = rng.random((37 - p + 1, 29 - p + 1)) < 0.5
    x = ref_patches(img, p)[keep]
    counts = keep.sum(axis=1)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    out = np.full((x.shape[0], p * p), np.nan)
    gather_patches(img, keep, p, 0, offsets, out)
    np.testing.assert_array_equal(out, x)
    # blocked accumulation (force many small blocks) equals X^T X
    monkeypatch.setattr(wt, "_BLOCK", 7)
    s, sx, n = wt._second_moments(img, keep, p)
    assert n == x.shape[0]
    np.testing.assert_allclose(s, x.T @ x, rtol=1e-12)
    np.testing.assert_allclose(sx, x.sum(axis=0), rtol=1e-12)


def test_find_runs_matches_loop(rng):
    sel = rng.random((13, 17)) < 0.6
    sel[3] = True
    sel[4] = False
    expect = []
    for i in range(sel.shape[0]):
        j = 0
        while j < sel.shape[1]:
            if sel[i, j]:
                j0 = j
                while j < sel.shape[1] and sel[i, j]:
                    j += 1
                expect.append((i, j0, j))
            else:
                j += 1
    ri, rs, re = find_runs(sel)
    assert list(zip(ri.tolist(), rs.tolist(), re.tolist())) == expect


@pytest.mark.parametrize("p,shape,frac", [(7, (41, 30), 0.9), (5, (23, 37), 0.3), (3, (9, 8), 1.0), (7, (7, 7), 1.0)])
def test_run_moments_match_patch_matrix(p, shape, frac, rng, monkeypatch):
    img = rng.uniform(0, 255, shape).astype(np.float32)
    sel = rng.random((shape[0] - p + 1, shape[1] - p + 1)) < frac
    x = ref_patches(img, p)[sel]
    for band in (1, 3, 48):  # band boundaries must not matter
        monkeypatch.setattr(wt, "_BAND", band)
        s, sx, n = wt._moments_runs(img, find_runs(sel), p)
        assert n == x.shape[0]
        np.testing.assert_allclose(s, x.T @ x, rtol=1e-11)
        np.testing.assert_allclose(sx, x.sum(axis=0), rtol=1e-11)


def test_second_moments_methods_agree(rng, monkeypatch):
    img = rng.uniform(0, 255, (50, 44)).astype(np.float32)
    sel = rng.random((44, 38)) < 0.5
    monkeypatch.setattr(wt, "_COST_GATHER", 0.0)  # force the gather + syrk path
    a = wt._second_moments(img, sel, 7)
    monkeypatch.setattr(wt, "_COST_GATHER", 1.0)  # force the run path
    b = wt._second_moments(img, sel, 7)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-11)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-11)
    assert a[2] == b[2] == sel.sum()


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_estimator_matches_reference(seed, center):
    rng = np.random.default_rng(seed)
    # odd size, smooth ramp + texture + noise, some clipped pixels
    h, w = 61, 47
    yy, xx = np.mgrid[0:h, 0:w]
    img = 60 + 1.5 * xx + 20 * (yy > 30) + rng.normal(0, 4, (h, w))
    img[5:9, 5:20] = 255.0
    img = np.clip(img, 0, 255).astype(np.uint8)
    mask = np.ones((h, w), bool)
    mask[:, 40:] = False
    est = wt.estimate_noise_weak_texture(img, mask=mask, center=center, min_patches=1,
                                         bias_correction=False)
    ch = img.astype(np.float64)
    bad = (ch <= 0) | (ch >= 255) | ~mask
    sig2, used = ref_liu_channel(ch, bad, 7, 1 - 1e-6, 3, center=center)
    assert est.sigma == pytest.approx(math.sqrt(sig2), rel=1e-9)
    assert est.n_patches == used
    assert est.sigma_per_channel == (pytest.approx(math.sqrt(sig2), rel=1e-9),)
    # default: divided by the Marchenko-Pastur edge factor 1 - sqrt(p^2 / N)
    corr = wt.estimate_noise_weak_texture(img, mask=mask, center=center, min_patches=1)
    assert corr.sigma == pytest.approx(math.sqrt(sig2) / (1 - math.sqrt(49 / used)), rel=1e-9)
    assert corr.params["bias_correction"] and not est.params["bias_correction"]


def test_estimator_matches_reference_per_channel_rgb(rng):
    img = noisy(5.0, 3, shape=(40, 52, 3))
    est = wt.estimate_noise_weak_texture(img, n_iter=4, min_patches=1)
    per = []
    for c in range(3):
        ch = img[:, :, c].astype(np.float32).astype(np.float64)
        sig2, used = ref_liu_channel(ch, (ch <= 0) | (ch >= 255), 7, 1 - 1e-6, 4)
        per.append(math.sqrt(sig2) / (1 - math.sqrt(49 / used)))
    np.testing.assert_allclose(est.sigma_per_channel, per, rtol=1e-9)
    assert est.sigma == pytest.approx(math.sqrt(np.mean(np.square(per))), rel=1e-12)


# --------------------------------------------------------------------------- #
# known truth
# --------------------------------------------------------------------------- #

HALF = np.zeros((256, 256), bool)
HALF[:, :128] = True


# issue 3's bar: within 6 % on the whole image, 8 % within a mask covering half of it
@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("sigma", [5.0, 10.0])
def test_known_sigma_on_textured_image(sigma, seed):
    img = noisy(sigma, seed)
    est = noisestat.estimate_noise_weak_texture(img)
    assert est.reliable, est.note
    assert est.method == "weak_texture" and est.fallback is None
    assert len(est.sigma_per_channel) == 3
    assert abs(est.sigma / sigma - 1) < 0.06
    half = noisestat.estimate_noise_weak_texture(img, mask=HALF)
    assert half.reliable, half.note
    assert abs(half.sigma / sigma - 1) < 0.08
    assert half.n_patches < est.n_patches
    # the paper's uncorrected estimate reads low (smallest sample eigenvalue, documented)
    raw = noisestat.estimate_noise_weak_texture(img, bias_correction=False)
    assert raw.sigma < est.sigma and raw.sigma < sigma


def test_no_weak_texture_is_flagged():
    # clean_texture has texture everywhere: at sigma 2 no 7x7 patch is as smooth as pure
    # noise, the iteration collapses, and the result must say so
    est = noisestat.estimate_noise_weak_texture(noisy(2.0, 11))
    assert not est.reliable
    assert "settled" in est.note or "selected" in est.note


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_known_sigma_on_smooth_image(sigma):
    h, w = 160, 200
    yy, xx = np.mgrid[0:h, 0:w]
    clean = 40 + 0.5 * xx + 0.3 * yy + 30 * ((xx - 100) ** 2 + (yy - 80) ** 2 < 40**2)
    img = clean[:, :, None] + np.random.default_rng(5).normal(0, sigma, (h, w, 3))
    est = noisestat.estimate_noise_weak_texture(img)
    assert est.reliable, est.note
    assert abs(est.sigma / sigma - 1) < 0.02
    raw = noisestat.estimate_noise_weak_texture(img, bias_correction=False)
    assert -0.06 < raw.sigma / sigma - 1 < 0.0


def test_clipped_region_is_ignored():
    img = noisy(5.0, 2)
    ref = wt.estimate_noise_weak_texture(img)
    sat = img.copy()
    sat[40:120, 30:200] = 255.0  # saturated block: its patches are dropped
    est = wt.estimate_noise_weak_texture(sat)
    assert est.reliable
    assert est.sigma == pytest.approx(ref.sigma, rel=0.05)
    assert est.n_patches < ref.n_patches


# --------------------------------------------------------------------------- #
# bad inputs and API
# --------------------------------------------------------------------------- #


def test_nan_raises():
    img = np.full((64, 64), 100.0)
    img[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        wt.estimate_noise_weak_texture(img)


def test_tiny_image_raises_and_small_image_falls_back():
    with pytest.raises(ValueError, match="smaller"):
        wt.estimate_noise_weak_texture(np.zeros((2, 2)) + 9)
    small = 100 + np.random.default_rng(0).normal(0, 5, (12, 12))
    est = wt.estimate_noise_weak_texture(small)
    assert not est.reliable and est.fallback == "mad"
    assert np.isfinite(est.sigma) and est.sigma > 0
    off = wt.estimate_noise_weak_texture(small, fallback=False)
    assert not off.reliable and off.fallback is None
    assert math.isnan(off.sigma)  # 36 valid patches < p**2 = 49: no estimate



def test_small_region_falls_back_to_mad():
    img = 100 + np.random.default_rng(1).normal(0, 5, (128, 128))
    mask = np.zeros((128, 128), bool)
    mask[10:50, 10:60] = True  # 34 x 44 = 1496 valid 7x7 patches < 4900
    est = wt.estimate_noise_weak_texture(img, mask=mask)
    assert est.fallback == "mad" and not est.reliable and "1496" in est.note
    assert est.sigma == pytest.approx(5.0, rel=0.15)
    raw = wt.estimate_noise_weak_texture(img, mask=mask, fallback=False, bias_correction=False)
    assert raw.fallback is None and not raw.reliable and raw.n_patches > 0
    assert raw.sigma < 5.0  # the small-sample bias the fallback avoids
    ok = wt.estimate_noise_weak_texture(img, mask=mask, min_patches=1000)
    assert ok.fallback is None and ok.reliable


def test_tiny_region_never_crashes():
    img = 100 + np.random.default_rng(2).normal(0, 5, (64, 64))
    mask = np.zeros((64, 64), bool)
    mask[5, 5] = True
    est = wt.estimate_noise_weak_texture(img, mask=mask)
    assert not est.reliable and math.isnan(est.sigma) and est.note
    with pytest.raises(ValueError, match="empty"):
        wt.estimate_noise_weak_texture(img, mask=np.zeros((64, 64), bool))
    with pytest.raises(ValueError, match="shape"):
        wt.estimate_noise_weak_texture(img, mask=np.ones((10, 10), bool))


def test_constant_and_saturated_images():
    const = wt.estimate_noise_weak_texture(np.full((64, 64, 3), 128, np.uint8))
    assert const.sigma == 0.0 and not const.reliable and "0" in const.note
    sat = wt.estimate_noise_weak_texture(np.full((64, 64), 255, np.uint8))
    assert math.isnan(sat.sigma) and not sat.reliable and "clipped" in sat.note


def test_parameter_errors():
    img = np.zeros((32, 32)) + 50
    with pytest.raises(ValueError, match="patch_size"):
        wt.estimate_noise_weak_texture(img, patch_size=2)
    with pytest.raises(TypeError, match="patch_size"):
        wt.estimate_noise_weak_texture(img, patch_size=7.0)
    with pytest.raises(ValueError, match="conf"):
        wt.estimate_noise_weak_texture(img, conf=1.0)
    with pytest.raises(ValueError, match="n_iter"):
        wt.estimate_noise_weak_texture(img, n_iter=0)
    with pytest.raises(TypeError, match="center"):
        wt.estimate_noise_weak_texture(img, center="yes")
    with pytest.raises(TypeError):
        wt.estimate_noise_weak_texture(img, 7)  # everything but the image is keyword-only


def test_lazy_export_and_params():
    assert noisestat.estimate_noise_weak_texture is wt.estimate_noise_weak_texture
    est = wt.estimate_noise_weak_texture(100 + np.random.default_rng(0).normal(0, 3, (80, 80)))
    assert est.params["patch_size"] == 7 and est.params["tau0"] == pytest.approx(81.82, abs=0.01)
    assert float(est) == est.sigma
