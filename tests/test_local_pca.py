"""local_pca map: window kernel vs a plain-numpy reference, known truth, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import noisestat
import noisestat.registry
from noisestat.maps._local_pca_kernels import CHUNK, cell_row_sums, chen_rule, window_row_sigmas
from noisestat.maps.local_pca import chen_sigma_batch, local_pca_map, window_sigmas
from noisestat.noise.pca import chen_sigma
from noisestat.synth import clean_texture

# --------------------------------------------------------------------------- #
# Slow reference from the paper's equations
# --------------------------------------------------------------------------- #


def ref_chen(lam):
    lam = np.sort(lam)
    for k in range(lam.size, 0, -1):
        tau = lam[:k].mean()
        if np.sum(lam[:k] > tau) == np.sum(lam[:k] < tau):
            return math.sqrt(max(tau, 0.0))
    raise AssertionError


def ref_window_sigmas(px, r, window, step, white=255.0):
    """Per window: every stride-1 patch with its origin in the window, unclipped; covariance; Chen's rule."""
    h, w, _ = px.shape
    oh, ow = h - r + 1, w - r + 1
    nwy = max(1, -(-oh // step) - window // step + 1)
    nwx = max(1, -(-ow // step) - window // step + 1)
    sig = np.full((nwy, nwx), np.nan)
    cnt = np.zeros((nwy, nwx), int)
    cy, cx = np.zeros(nwy), np.zeros(nwx)
    for i in range(nwy):
        y0, y1 = i * step, min(i * step + window, oh)
        cy[i] = (y0 + (y1 - 1) + r - 1) / 2  # first and last covered pixel
        for j in range(nwx):
            x0, x1 = j * step, min(j * step + window, ow)
            cx[j] = (x0 + (x1 - 1) + r - 1) / 2
            rows = []
            for y in range(y0, y1):
                for x in range(x0, x1):
                    p = px[y : y + r, x : x + r].astype(np.float64)
                    if np.all((p > 0) & (p < white)):
                        rows.append(p.reshape(-1))
            cnt[i, j] = len(rows)
            if len(rows) > p.size:
                xm = np.array(rows)
                c = np.cov(xm.T, bias=True)
                sig[i, j] = ref_chen(np.linalg.eigvalsh(c))
    return sig, cnt, cy, cx


@pytest.mark.parametrize(
    ("shape", "r", "window", "step"),
    [((45, 52, 3), 3, 16, 8), ((37, 29, 1), 4, 12, 4), ((30, 70, 3), 2, 40, 10), ((26, 33, 1), 5, 9, 3)],
)
def test_window_sigmas_match_reference(shape, r, window, step):
    rng = np.random.default_rng(sum(shape) * r)
    px = rng.uniform(1, 254, shape)
    px += np.linspace(0, 30, shape[1])[None, :, None] * (shape[0] > 30)  # some structure
    px.reshape(-1)[rng.choice(px.size, px.size // 200)] = rng.choice([0.0, 255.0, 300.0])  # clipped
    px[2:7, 3:9] = 90.0  # constant patches
    px = np.ascontiguousarray(px, np.float32)
    sig, cnt, cy, cx = window_sigmas(px, 255.0, r, window, step)
    rs, rc, rcy, rcx = ref_window_sigmas(px, r, window, step)
    np.testing.assert_array_equal(cnt, rc)
    np.testing.assert_allclose(cy, rcy)
    np.testing.assert_allclose(cx, rcx)
    assert np.array_equal(np.isnan(sig), np.isnan(rs))
    np.testing.assert_allclose(sig, rs, rtol=2e-4, equal_nan=True)


def test_chen_sigma_batch_matches_scalar_rule(rng):
    lam = np.sort(rng.gamma(1.0, 3.0, (200, 12)), axis=1)
    lam[:20] = np.sort(rng.integers(0, 3, (20, 12)).astype(float), axis=1)  # ties
    lam[20] = 0.0
    lam[21] = 4.0
    got = chen_sigma_batch(lam)
    want = np.array([chen_sigma(v)[0] for v in lam])
    np.testing.assert_array_equal(got, want)
    assert got[21] == 2.0 and got[20] == 0.0


def test_chen_rule_kernel_matches_reference(rng):
    lam = np.sort(rng.gamma(1.0, 3.0, (100, 12)), axis=1)
    lam[:20] = np.sort(rng.integers(0, 3, (20, 12)).astype(float), axis=1)  # ties
    for v in lam:
        assert chen_rule(v) == pytest.approx(ref_chen(v), rel=1e-12, abs=1e-12)


def test_cell_row_sums_match_reference(rng):
    d1 = 23  # more Gram entries than one chunk: 529 > CHUNK
    assert d1 * d1 > CHUNK
    g = rng.integers(-500, 500, (9, d1, d1)).astype(np.float32)
    for mx in (1, 4, 9):
        out = np.empty((9 - mx + 1, d1, d1))
        cell_row_sums(g, mx, out)
        want = np.stack([g[j : j + mx].astype(np.float64).sum(axis=0) for j in range(9 - mx + 1)])
        np.testing.assert_array_equal(out, want)  # integer sums: exact


def test_window_row_sigmas_match_reference(rng):
    d, nwx, my = 6, 5, 3
    x = rng.normal(10.0, 2.0, (my, nwx, 40, d))
    x[:, 1] = 3.0  # constant patches: zero covariance
    grams = np.zeros((my, nwx, d + 1, d + 1))
    for t in range(my):
        for j in range(nwx):
            xa = np.concatenate([x[t, j], np.ones((40, 1))], axis=1)
            grams[t, j] = xa.T @ xa
    grams[:, 4, d, d] = 2.0  # too few patches in window 4
    first = 2
    rows = np.roll(grams, first, axis=0)  # oldest cell row at ring index `first`
    sigma = np.full(nwx, np.nan)
    count = np.zeros(nwx, np.int64)
    window_row_sigmas(rows, first, d, sigma, count)
    np.testing.assert_array_equal(count, [120, 120, 120, 120, 6])
    for j in range(4):
        cov = np.cov(x[:, j].reshape(-1, d).T, bias=True)
        assert sigma[j] == pytest.approx(ref_chen(np.linalg.eigvalsh(cov)), rel=1e-9, abs=1e-9)
    assert sigma[1] == pytest.approx(0.0, abs=1e-6) and np.isnan(sigma[4])


# --------------------------------------------------------------------------- #
# Known truth
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def clean():
    return clean_texture((256, 256, 3), seed=5)


def test_uniform_noise_level_is_recovered(clean):
    noisy = clean + np.random.default_rng(1).normal(0, 5.0, clean.shape)
    hm = local_pca_map(noisy)
    assert hm.applicable and hm.method == "local_pca" and hm.shape == (256, 256)
    assert abs(float(np.median(hm.raw)) - 5.0) < 0.05 * 5.0
    lo, hi = np.percentile(hm.raw, [5, 95])
    assert 0.95 * 5.0 < lo and hi < 1.05 * 5.0
    # a uniform noise level gives few alarms (the mapping is relative to the image's own spread)
    assert float(np.mean(hm.values >= 0.5)) < 0.1


def test_region_with_more_noise_stands_out(clean):
    rng = np.random.default_rng(2)
    noisy = clean + rng.normal(0, 3.0, clean.shape)
    region = np.zeros((256, 256), bool)
    region[60:170, 90:210] = True
    noisy[region] += rng.normal(0, 6.0, (int(region.sum()), 3))
    hm = local_pca_map(noisy)
    core = np.zeros_like(region)
    core[90:140, 120:180] = True  # far from the boundary
    far = np.ones_like(region)
    far[30:200, 60:240] = False
    assert abs(float(np.median(hm.raw[core])) - math.hypot(3.0, 6.0)) < 0.1 * math.hypot(3.0, 6.0)
    assert abs(float(np.median(hm.raw[far])) - 3.0) < 0.1 * 3.0
    assert hm.values[core].min() > 0.5 and np.median(hm.values[core]) > 0.8
    assert np.median(hm.values[far]) < 0.2


def test_uint8_gray_and_registry(clean):
    gray = np.clip(np.round(clean[:, :, 1] + np.random.default_rng(3).normal(0, 8.0, (256, 256))), 0, 255)
    gray = gray.astype(np.uint8)
    hm = local_pca_map(gray, window=32, step=16)
    assert hm.shape == (256, 256) and np.all(np.isfinite(hm.raw))
    assert hm.raw.min() > 0 and 0 <= hm.values.min() and hm.values.max() <= 1
    assert "local_pca" in noisestat.methods()
    loc = noisestat.registry.localize(gray, method="local_pca", window=32, step=16)
    np.testing.assert_array_equal(loc.heatmap.values, hm.values)


# --------------------------------------------------------------------------- #
# Clipping and bad inputs
# --------------------------------------------------------------------------- #


def test_saturated_areas(clean):
    noisy = clean + np.random.default_rng(4).normal(0, 4.0, clean.shape)
    noisy[:128, :128] = 255.0  # more than a window: those windows have no usable patch
    hm = local_pca_map(noisy)
    assert hm.applicable and "windows" in hm.note
    assert np.all(np.isfinite(hm.raw)) and hm.raw.min() > 0
    assert abs(float(np.median(hm.raw[160:, 160:])) - 4.0) < 0.4
    sat = local_pca_map(np.full((80, 80, 3), 255, np.uint8))
    assert not sat.applicable and "clipped" in sat.note and np.all(sat.values == 0)


def test_constant_image_gives_floor_not_nan():
    hm = local_pca_map(np.full((80, 90), 120.0))
    assert hm.applicable and np.all(np.isfinite(hm.raw)) and np.all(hm.raw <= 1e-3)
    assert np.all(np.isfinite(hm.values))


def test_bad_inputs():
    img = np.random.default_rng(0).uniform(10, 200, (100, 100))
    with pytest.raises(ValueError, match="multiple of step"):
        local_pca_map(img, window=50, step=16)
    with pytest.raises(ValueError, match="smaller than the minimum"):
        local_pca_map(img[:40, :40])
    with pytest.raises(ValueError, match="patch_size"):
        local_pca_map(img, patch_size=1)
    bad = img.copy()
    bad[5, 5] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        local_pca_map(bad)
    with pytest.raises(TypeError, match="window"):
        local_pca_map(img, window="64")
