"""Chen-Zhu-Heng PCA noise estimator: kernels vs a plain-numpy reference, known truth, bad inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from noisestat.blocks import patches
from noisestat.noise import pca
from noisestat.noise.pca import estimate_noise_pca
from noisestat.synth import clean_texture

CASIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "casia1"
needs_casia = pytest.mark.skipif(not (CASIA / "pristine").is_dir(), reason="../shared/data/casia1 is not present")

# --------------------------------------------------------------------------- #
# Independent slow reference, written from the paper (Chen et al. 2015, Alg. 1)
# --------------------------------------------------------------------------- #


def ref_origins(length, r, stride, grid):
    """Origins along one axis, by enumeration."""
    if grid == "aligned":
        return [o for o in range(0, length - r + 1) if o % 8 == 0]
    out = list(range(0, length - r + 1, stride))
    if length - r >= 0 and (not out or out[-1] != length - r):
        out.append(length - r)  # the authors' program always adds the last position
    if grid == "avoid":
        # keep patches whose first and last pixel lie in different 8-pixel blocks
        out = [o for o in out if o // 8 != (o + r - 1) // 8]
    return out


def ref_patch_matrix(px, r, stride, grid="any", white=255.0, mask=None):
    """(n, r*r*C) float64 matrix of usable patches (pixel-major, channels interleaved)."""
    h, w, _ = px.shape
    rows = []
    for y in ref_origins(h, r, stride, grid):
        for x in ref_origins(w, r, stride, grid):
            p = px[y : y + r, x : x + r, :].astype(np.float64)
            if np.any(p <= 0) or np.any(p >= white):
                continue
            if mask is not None and not mask[y : y + r, x : x + r].all():
                continue
            rows.append(p.reshape(-1))
    return np.array(rows).reshape(len(rows), -1)


def ref_sigma(x):
    """sigma by Chen's rule from a patch matrix: full eigen-decomposition, explicit loop."""
    mu = x.mean(axis=0)
    cov = (x - mu).T @ (x - mu) / x.shape[0]
    lam = np.sort(np.linalg.eigvalsh(cov))
    for k in range(lam.size, 0, -1):
        sub = lam[:k]
        tau = sub.sum() / k
        if np.sum(sub > tau) == np.sum(sub < tau):
            return math.sqrt(max(tau, 0.0)), k
    raise AssertionError


def _bad_ii(px, white=255.0, mask=None):
    return patches.unusable_integral(np.ascontiguousarray(px, np.float32), white, mask)


# --------------------------------------------------------------------------- #
# Kernels and building blocks vs the reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("grid", ["any", "aligned", "avoid"])
def test_axis_origins_match_reference(grid):
    for length in (5, 8, 9, 17, 31, 64, 101):
        for r in (2, 4, 5, 8):
            for stride in (1, 2, 3, 7):
                got = pca.axis_origins(length, r, stride, grid).tolist()
                assert got == ref_origins(length, r, stride, grid), (length, r, stride)


@pytest.mark.parametrize(
    ("shape", "r", "stride", "grid"),
    [((37, 29, 3), 4, 3, "any"), ((41, 53, 1), 5, 2, "any"), ((45, 39, 3), 3, 1, "avoid"),
     ((50, 43, 1), 8, 3, "aligned"), ((23, 31, 3), 2, 1, "any")],
)
def test_patch_covariance_matches_reference(shape, r, stride, grid):
    rng = np.random.default_rng(sum(shape) + r)
    px = rng.uniform(1, 254, shape)
    px.reshape(-1)[rng.choice(px.size, px.size // 300)] = rng.choice([-3.0, 0.0, 255.0, 260.0])  # clipped
    px[5:12, 3:9] = 77.0  # a constant area
    mask = rng.random(shape[:2]) > 0.003
    px32 = np.ascontiguousarray(px, np.float32)
    x = ref_patch_matrix(px32, r, stride, grid, mask=mask)
    assert 0 < x.shape[0]
    oy, ox = pca.patch_origins(_bad_ii(px32, mask=mask), r, stride, grid)
    assert oy.size == x.shape[0]
    got = np.stack([px32[y : y + r, xx : xx + r].reshape(-1) for y, xx in zip(oy, ox)])
    np.testing.assert_array_equal(got, x)  # same patches, same order, same layout
    cov = pca.patch_covariance(px32, oy, ox, r, patches.channel_center(px32, mask))
    mu = x.mean(axis=0)
    ref = (x - mu).T @ (x - mu) / x.shape[0]
    np.testing.assert_allclose(cov, ref, rtol=1e-5, atol=1e-3)


def test_patch_covariance_many_blocks_and_large_offset(rng):
    # more than one 4096-patch block, pixel values far from the centre
    px = (200.0 + rng.normal(0, 3.0, (140, 150, 3))).astype(np.float32)
    oy, ox = pca.patch_origins(_bad_ii(px), 4, 1, "any")
    assert oy.size > 2 * pca._BLOCK_PATCHES
    cov = pca.patch_covariance(px, oy, ox, 4, patches.channel_center(px, None))
    x = ref_patch_matrix(px, 4, 1)
    ref = np.cov(x.T, bias=True)
    np.testing.assert_allclose(cov, ref, rtol=1e-5, atol=1e-4)


def test_chen_rule_on_hand_spectra():
    # all-equal spectrum: k = d is accepted (ports that start at d - 1 fail this)
    assert pca.chen_sigma(np.array([4.0, 4.0, 4.0])) == (2.0, 3)
    # symmetric spectrum: mean equals median at k = d
    assert pca.chen_sigma(np.array([1.0, 2.0, 3.0])) == (math.sqrt(2.0), 3)
    # a noise tail of 1s under two signal directions
    assert pca.chen_sigma(np.array([1.0, 1.0, 1.0, 1.0, 50.0, 100.0])) == (1.0, 4)
    # no symmetric tail: stops at k = 2
    s, k = pca.chen_sigma(np.array([1.0, 3.0, 10.0, 40.0, 200.0]))
    assert k == 2 and s == pytest.approx(math.sqrt(2.0))
    # round-off below zero is clamped
    assert pca.chen_sigma(np.array([-1e-12, -1e-12]))[0] == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_estimator_matches_reference_on_random_images(seed):
    rng = np.random.default_rng(seed)
    img = clean_texture((47, 61, 3), seed=seed) + rng.normal(0, 4.0, (47, 61, 3))
    img[:6, :6] = 255.0  # clipped corner
    est = estimate_noise_pca(img, patch_size=4, stride=2)
    # a small image: the stride is reduced to 1 to get more patches
    assert est.params["stride_used"] == 1 and est.fallback == "stride=1"
    x = ref_patch_matrix(np.float32(img), 4, 1)
    s, k = ref_sigma(x)
    assert est.n_patches == x.shape[0]
    assert est.params["k"] == k
    assert est.sigma == pytest.approx(s, rel=1e-4)
    for c in range(3):
        sc, _ = ref_sigma(x[:, c::3])
        assert est.sigma_per_channel[c] == pytest.approx(sc, rel=1e-4)


def test_patch_selection_rules(rng):
    img = rng.uniform(20, 230, (300, 280))
    # enough patches at the requested stride: kept
    e = estimate_noise_pca(img, patch_size=4, stride=3)
    assert e.fallback is None and e.n_patches == len(ref_origins(300, 4, 3, "any")) * len(
        ref_origins(280, 4, 3, "any"))
    # d = 64: 48 * 48 origins at stride 3 < 80 d, 72 * 72 at stride 2 >= 80 d
    e = estimate_noise_pca(img[:150, :150], patch_size=8, stride=3)
    assert e.params["stride_used"] == 2 and e.fallback == "stride=2" and e.n_patches == 72 * 72
    # a region too small for 8x8 patches even at stride 1 -> patch_size 5
    e = estimate_noise_pca(img[:30, :30], patch_size=8)
    assert e.params["patch_size_used"] == 5 and e.fallback == "patch_size=5,stride=1"
    assert e.reliable
    # explicit min_patches
    e = estimate_noise_pca(img[:30, :30], patch_size=8, min_patches=100)
    assert e.params["patch_size_used"] == 8 and e.n_patches == 23 * 23


# --------------------------------------------------------------------------- #
# Known truth
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def clean():
    return clean_texture((256, 256, 3), seed=1)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_known_sigma_whole_image_and_half_mask(clean, sigma):
    noisy = clean + np.random.default_rng(int(sigma)).normal(0, sigma, clean.shape)
    est = estimate_noise_pca(noisy)
    assert est.reliable and est.method == "pca" and est.note == ""
    assert abs(est.sigma - sigma) <= 0.03 * sigma
    assert len(est.sigma_per_channel) == 3
    mask = np.zeros(clean.shape[:2], bool)
    mask[:, 100:228] = True
    half = estimate_noise_pca(noisy, mask=mask)
    assert half.reliable and half.params["masked"]
    assert abs(half.sigma - sigma) <= 0.05 * sigma


def test_uint8_and_float_overshoot_agree(clean):
    noisy = clean + np.random.default_rng(3).normal(0, 10.0, clean.shape)
    assert noisy.min() < 0 or noisy.max() > 255  # really overshoots
    f = estimate_noise_pca(noisy)
    u = estimate_noise_pca(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    assert f.reliable and u.reliable
    assert abs(f.sigma - 10.0) <= 0.3 and abs(u.sigma - 10.0) <= 0.3


def test_mask_separates_two_noise_levels(clean):
    rng = np.random.default_rng(11)
    noisy = clean + rng.normal(0, 2.0, clean.shape)
    noisy[:, 128:] += rng.normal(0, 8.0, (256, 128, 3))
    left = np.zeros((256, 256), bool)
    left[:, :128] = True
    a = estimate_noise_pca(noisy, mask=left).sigma
    b = estimate_noise_pca(noisy, mask=~left).sigma
    assert abs(a - 2.0) < 0.15 and abs(b - math.hypot(2.0, 8.0)) < 0.5


def test_per_channel_levels(clean):
    noisy = clean + np.random.default_rng(5).normal(0, 1.0, clean.shape) * np.array([2.0, 5.0, 8.0])
    est = estimate_noise_pca(noisy)
    s = est.sigma_per_channel
    assert s[0] < s[1] < s[2]
    assert s[1] == pytest.approx(5.0, rel=0.1) and s[2] == pytest.approx(8.0, rel=0.1)


def test_grayscale_and_16bit():
    # gray patches (d = 64) leave less room for texture than RGB ones: test at sigma 10
    g = clean_texture((256, 256), seed=2)
    noisy = g + np.random.default_rng(2).normal(0, 10.0, g.shape)
    est = estimate_noise_pca(noisy)
    assert len(est.sigma_per_channel) == 1 and est.sigma == est.sigma_per_channel[0]
    assert abs(est.sigma - 10.0) < 0.05 * 10.0
    # 16-bit data: sigma on the native scale
    u16 = np.clip(np.round(noisy * 257), 0, 65535).astype(np.uint16)
    assert estimate_noise_pca(u16).sigma == pytest.approx(257 * est.sigma, rel=0.02)


# --------------------------------------------------------------------------- #
# Fallbacks and bad inputs
# --------------------------------------------------------------------------- #


def test_small_region_falls_back(clean):
    noisy = clean + np.random.default_rng(4).normal(0, 5.0, clean.shape)
    mask = np.zeros((256, 256), bool)
    mask[40:70, 40:75] = True
    est = estimate_noise_pca(noisy, mask=mask)
    assert est.fallback is not None and est.params["stride_used"] == 1
    assert math.isfinite(est.sigma) and abs(est.sigma - 5.0) < 1.0
    tiny = np.zeros((256, 256), bool)
    tiny[10:18, 10:18] = True  # 8x8: a handful of 4x4 patches for d = 48
    t = estimate_noise_pca(noisy, mask=tiny)
    assert not t.reliable and math.isnan(t.sigma) and "no estimate" in t.note
    assert all(math.isnan(v) for v in t.sigma_per_channel)
    empty = estimate_noise_pca(noisy, mask=np.zeros((256, 256), bool))
    assert not empty.reliable and math.isnan(empty.sigma) and empty.n_patches == 0


def test_few_patches_flagged_unreliable(clean):
    noisy = clean + np.random.default_rng(4).normal(0, 5.0, clean.shape)
    est = estimate_noise_pca(noisy[:14, :14])  # 121 patches of 4x4x3 < 3 * 48
    assert est.params["patch_size_used"] == 4 and est.n_patches == 121
    assert not est.reliable and math.isfinite(est.sigma) and "121" in est.note


def test_constant_and_saturated_images():
    const = estimate_noise_pca(np.full((40, 50, 3), 100, np.uint8))
    assert const.sigma == 0.0 and not const.reliable and "constant" in const.note
    sat = estimate_noise_pca(np.full((40, 50, 3), 255, np.uint8))
    assert math.isnan(sat.sigma) and not sat.reliable and "clipped" in sat.note
    black = estimate_noise_pca(np.zeros((40, 50)))
    assert math.isnan(black.sigma) and not black.reliable


def test_invalid_inputs():
    img = np.random.default_rng(0).uniform(10, 200, (32, 32))
    bad = img.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimate_noise_pca(bad)
    with pytest.raises(ValueError, match="jpeg_grid"):
        estimate_noise_pca(img, jpeg_grid="diagonal")
    with pytest.raises(ValueError, match="patch_size"):
        estimate_noise_pca(img, patch_size=1)
    with pytest.raises(TypeError, match="stride"):
        estimate_noise_pca(img, stride=2.5)
    with pytest.raises(ValueError, match="mask"):
        estimate_noise_pca(img, mask=np.ones((10, 10), bool))
    with pytest.raises(TypeError):
        estimate_noise_pca(b"a string that is not a file.png")


def test_top_level_export():
    import noisestat

    assert noisestat.estimate_noise_pca is estimate_noise_pca


# --------------------------------------------------------------------------- #
# JPEG grid
# --------------------------------------------------------------------------- #


def test_jpeg_grid_selects_the_documented_patches(tmp_path, clean):
    from PIL import Image

    noisy = np.clip(np.round(clean + np.random.default_rng(9).normal(0, 4.0, clean.shape)), 0, 255)
    path = tmp_path / "x.jpg"
    Image.fromarray(noisy.astype(np.uint8)).save(path, quality=90)
    res = {g: estimate_noise_pca(path, jpeg_grid=g) for g in ("any", "aligned", "avoid")}
    for g, e in res.items():
        r, s = e.params["patch_size_used"], e.params["stride_used"]
        assert e.n_patches == len(ref_origins(256, r, s, g)) ** 2
        assert e.params["jpeg_grid"] == g and math.isfinite(e.sigma) and e.sigma > 0
    # 4:2:0 chroma subsampling: the joint estimate collapses and the note says so
    assert res["any"].sigma < 0.5 * min(res["any"].sigma_per_channel)
    assert "chroma" in res["any"].note
    assert all(1.0 < v < 4.5 for v in res["any"].sigma_per_channel)  # q90 removes some noise
    assert res["aligned"].n_patches == 32 * 32  # one patch per 8x8 block
    assert res["aligned"].params["stride_used"] == 3  # stride does not apply
    # "avoid" patches of 8x8 never start on a multiple of 8
    oy, ox = pca.patch_origins(_bad_ii(noisy), 8, 1, "avoid")
    assert oy.size and np.all(oy % 8 != 0) and np.all(ox % 8 != 0)


@needs_casia
def test_jpeg_grid_on_casia_pristine():
    files = sorted((CASIA / "pristine").glob("*.jpg"))[:3]
    if not files:
        pytest.skip("no pristine CASIA images")
    for f in files:
        a = estimate_noise_pca(f)
        b = estimate_noise_pca(f, jpeg_grid="aligned")
        assert a.reliable and math.isfinite(b.sigma)
        assert b.n_patches < a.n_patches
