"""Block noise maps: block_pca, wavelet_mad (kernels of noisestat.maps._block_pca_kernels, noisestat.maps._wavelet_mad_kernels and noisestat.blocks).

Every kernel is checked against a slow plain-numpy reference written here from
the papers' equations; the maps against known added noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from noisestat.blocks.tiling import block_index, block_starts, expand_grid
from noisestat.blocks.wavelets import daubechies_highpass
from noisestat.maps._block_pca_kernels import RADIX_LONG, phz_blocks, phz_variance, stable_argsort
from noisestat.maps._wavelet_mad_kernels import block_mad_sigma, hh_subband
from noisestat.maps.block_pca import block_pca_map
from noisestat.maps.wavelet_mad import wavelet_mad_map
from noisestat.synth import clean_texture

# --------------------------------------------------------------------------- #
# references
# --------------------------------------------------------------------------- #


def ref_phz(region, clipped, m, max_clipped, min_count):
    """Pyatykh, Hesser & Zheng (2013), Sec. III-IV, with np.cov / eigvalsh."""
    r = np.asarray(region, np.float64)
    r = r - np.rint(r.mean())  # integer shift: exact sums for integer pixels (ties compare equal)
    x = sliding_window_view(r, (m, m)).reshape(-1, m * m)
    nclip = sliding_window_view(np.asarray(clipped, np.int64), (m, m)).reshape(-1, m * m).sum(axis=1)
    x = x[nclip <= max_clipped]
    n = x.shape[0]
    if n < min_count:
        return math.nan, n
    d = m * m
    pv = (d * (x * x).sum(axis=1) - x.sum(axis=1) ** 2) / (d * d)  # patch variance, 1/d
    order = np.argsort(pv, kind="stable")
    x, pv = x[order], pv[order]
    counts = []
    k = 0
    while 1.0 - 0.05 * k >= 0.06 - 1e-9:
        cnt = min(max(int(math.floor((1.0 - 0.05 * k) * n + 0.5)), 1), n)
        if k > 0 and cnt < min_count:
            break
        counts.append(cnt)
        k += 1
    upper = 3.1 * pv[int(math.floor(0.0005 * (n - 1) + 0.5))]
    eig = [np.linalg.eigvalsh(np.cov(x[:c].T, bias=True)) for c in counts]
    prev, var = 0.0, upper
    for _ in range(10):
        if abs(prev - var) < 1e-6:
            break
        prev = var
        for c, e in zip(counts, eig, strict=True):
            est = e[0]
            if est < 1e-6 or (e[6] - est < 49.0 * prev / math.sqrt(c) and est < upper):
                break
        var = min(est, upper)
    return max(var, 0.0), n


def ref_hh(img, g):
    """HH[k, l] = sum_ij g[i] g[j] x(2k + L/2 - i, 2l + L/2 - j), symmetric extension."""
    x = np.asarray(img, np.float64)
    length = len(g)
    pad = length
    xp = np.pad(x, pad, mode="symmetric")
    hs, ws = (x.shape[0] + 1) // 2, (x.shape[1] + 1) // 2
    out = np.zeros((hs, ws))
    k = np.arange(hs)[:, None]
    l_ = np.arange(ws)[None, :]
    for i in range(length):
        for j in range(length):
            out += g[i] * g[j] * xp[2 * k + length // 2 - i + pad, 2 * l_ + length // 2 - j + pad]
    return out


def ref_tiling(n, b):
    """Block starts and per-sample block index, by explicit enumeration."""
    b = min(b, n)
    starts = list(range(0, n - b + 1, b))
    if starts[-1] + b < n:
        starts.append(n - b)
    idx = []
    for t in range(n):
        owners = [i for i, s in enumerate(starts) if s <= t < s + b]
        idx.append(owners[0] if t < (n // b) * b else len(starts) - 1)
    return np.array(starts), np.array(idx)


def noisy_halves(shape, s_left, s_right, seed):
    img = clean_texture(shape, seed=seed)
    rng = np.random.default_rng(seed + 100)
    w = shape[1]
    img[:, : w // 2] += rng.normal(0, s_left, img[:, : w // 2].shape)
    img[:, w // 2 :] += rng.normal(0, s_right, img[:, w // 2 :].shape)
    return img


# --------------------------------------------------------------------------- #
# tiling and expansion
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("n,b", [(64, 16), (70, 16), (13, 16), (31, 8), (8, 8)])
def test_tiling_matches_enumeration(n, b):
    starts, idx = ref_tiling(n, b)
    np.testing.assert_array_equal(block_starts(n, b), starts)
    np.testing.assert_array_equal(block_index(n, b), idx)
    # every sample lies inside the block it is assigned to
    bb = min(b, n)
    s = block_starts(n, b)[block_index(n, b)]
    t = np.arange(n)
    assert np.all((s <= t) & (t < s + bb))


def test_block_index_with_stride_and_expand_grid(rng):
    h, w = 37, 30  # odd height: the subband has 19 rows
    ri = block_index(h, 8, stride=2)
    ci = block_index(w, 8, stride=2)
    _, sub_r = ref_tiling(19, 8)
    _, sub_c = ref_tiling(15, 8)
    np.testing.assert_array_equal(ri, sub_r[np.arange(h) // 2])
    np.testing.assert_array_equal(ci, sub_c[np.arange(w) // 2])
    grid = rng.normal(size=(ri.max() + 1, ci.max() + 1))
    out = expand_grid(grid, ri, ci)
    expected = np.array([[grid[ri[y], ci[x]] for x in range(w)] for y in range(h)], np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------- #
# Pyatykh-Hesser-Zheng kernel
# --------------------------------------------------------------------------- #


def _phz_cases():
    rng = np.random.default_rng(3)
    tex = clean_texture((80, 80), seed=5)
    cases = {}
    cases["texture_sigma3"] = (tex[:64, :64] + rng.normal(0, 3, (64, 64)), None)
    cases["odd_37x29"] = (tex[5:42, 11:40] + rng.normal(0, 5, (37, 29)), None)
    cases["pure_noise"] = (rng.normal(100, 2, (32, 32)), None)
    cases["constant"] = (np.full((32, 32), 77.0), None)
    img8 = np.clip(np.round(tex[:48, :48] * 1.6 - 60 + rng.normal(0, 4, (48, 48))), 0, 255)
    cases["clipped_uint8"] = (img8, (img8 <= 0) | (img8 >= 255))
    return cases


@pytest.mark.parametrize("name", list(_phz_cases()))
def test_phz_variance_matches_reference(name):
    region, clip = _phz_cases()[name]
    clip = np.zeros(region.shape, bool) if clip is None else clip
    for m, max_clipped, min_count in [(5, 2, 50), (4, 1, 32)]:
        got, n_got = phz_variance(region.astype(np.float32), clip.astype(np.uint8), m, max_clipped, min_count)
        exp, n_exp = ref_phz(region.astype(np.float32), clip, m, max_clipped, min_count)
        assert n_got == n_exp
        if math.isnan(exp):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(exp, rel=1e-7, abs=1e-9), (name, m)
    if name == "constant":
        assert got == 0.0
    if name == "clipped_uint8":
        assert clip.sum() > 50 and n_got < (48 - 3) ** 2  # the test really drops patches


def test_phz_too_few_patches_is_nan():
    region = np.full((20, 20), 255.0, np.float32)
    clip = np.ones(region.shape, np.uint8)
    var, n = phz_variance(region, clip, 5, 2, 50)
    assert math.isnan(var) and n == 0
    var, n = phz_variance(np.zeros((4, 9), np.float32), np.zeros((4, 9), np.uint8), 5, 2, 1)
    assert math.isnan(var) and n == 0  # region smaller than a patch


def test_phz_recovers_sigma_of_pure_noise(rng):
    # PHZ reads a few % low on pure noise: lambda_1 of overlapping-patch covariances is
    # biased low, and the upper bound 3.1 Q(0.0005) is close to sigma^2 when d = 25
    for s in (2.0, 7.0):
        region = rng.normal(120, s, (200, 200)).astype(np.float32)
        var, n = phz_variance(region, np.zeros(region.shape, np.uint8), 5, 2, 50)
        assert n == 196 * 196
        assert 0.88 * s < math.sqrt(var) < 1.01 * s


def test_phz_blocks_equals_per_block_reference(rng):
    img = (clean_texture((70, 100), seed=9) + rng.normal(0, 3, (70, 100))).astype(np.float32)
    clip = np.zeros(img.shape, np.uint8)
    clip[:10, :20] = 1
    rs, cs = block_starts(70, 32), block_starts(100, 32)
    var, cnt = phz_blocks(img, clip, rs, cs, 32, 32, 5, 2, 50)
    assert var.shape == (3, 4)
    for i, r in enumerate(rs):
        for j, c in enumerate(cs):
            exp, n = ref_phz(img[r : r + 32, c : c + 32], clip[r : r + 32, c : c + 32], 5, 2, 50)
            assert cnt[i, j] == n
            assert var[i, j] == pytest.approx(exp, rel=1e-7, abs=1e-9)


# --------------------------------------------------------------------------- #
# wavelet kernels
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("n_moments", [1, 2, 4, 8])
def test_daubechies_filter_properties(n_moments):
    g = daubechies_highpass(n_moments)
    length = 2 * n_moments
    assert g.shape == (length,)
    # orthonormal with its even shifts
    for s in range(0, length, 2):
        assert np.dot(g[: length - s], g[s:]) == pytest.approx(1.0 if s == 0 else 0.0, abs=1e-10)
    # n vanishing moments (moments about the centre keep the numbers small)
    k = np.arange(length) - (length - 1) / 2
    for p in range(n_moments):
        assert abs(np.sum(g * k**p)) < 1e-8 * max(1.0, np.sum(np.abs(g * k**p)))
    # the low-pass it comes from sums to sqrt(2)
    h = (g * (-1.0) ** np.arange(length))[::-1]
    assert h.sum() == pytest.approx(math.sqrt(2.0))


def test_daubechies_closed_forms():
    np.testing.assert_allclose(np.abs(daubechies_highpass(1)), [2**-0.5, 2**-0.5])
    r3 = math.sqrt(3.0)
    h2 = np.array([1 + r3, 3 + r3, 3 - r3, 1 - r3]) / (4 * math.sqrt(2.0))  # Daubechies (1988) D4
    g = daubechies_highpass(2)
    h = (g * (-1.0) ** np.arange(4))[::-1]
    assert np.allclose(h, h2) or np.allclose(h, h2[::-1])


@pytest.mark.parametrize("shape", [(37, 30), (16, 16), (41, 23)])
@pytest.mark.parametrize("n_moments", [1, 8])
def test_hh_subband_matches_reference(shape, n_moments, rng):
    img = rng.normal(100, 20, shape).astype(np.float32)
    img[: shape[0] // 3] = 255.0  # a clipped, constant band
    g = daubechies_highpass(n_moments)
    got = hh_subband(img, g)
    exp = ref_hh(img, g)
    assert got.shape == exp.shape == ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-3)


def test_hh_subband_of_white_noise_has_the_noise_variance(rng):
    img = rng.normal(0, 5.0, (256, 256)).astype(np.float32)
    for nm in (1, 8):
        sub = hh_subband(img, daubechies_highpass(nm))
        assert sub[8:-8, 8:-8].std() == pytest.approx(5.0, rel=0.03)


def test_block_mad_sigma_matches_reference(rng):
    sub = rng.normal(0, 3, (19, 30)).astype(np.float32)
    sub[:4, :4] = 0.0  # constant block part
    rs, cs = block_starts(19, 8), block_starts(30, 8)
    got = block_mad_sigma(sub, rs, cs, 8, 8)
    exp = np.array([[np.median(np.abs(sub[r : r + 8, c : c + 8].astype(np.float64))) / 0.6745
                     for c in cs] for r in rs])
    np.testing.assert_allclose(got, exp, rtol=1e-12)


# --------------------------------------------------------------------------- #
# maps: known truth
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def halves():
    """Noise-free gray texture + sigma 2 (left) and sigma 6 (right), float (no rounding)."""
    return noisy_halves((256, 256), 2.0, 6.0, seed=21)


def test_wavelet_mad_recovers_sigma_per_half(halves):
    for wavelet, tol in (("db8", 0.08), ("haar", 0.12)):
        hm = wavelet_mad_map(halves, wavelet=wavelet)
        assert hm.shape == halves.shape and hm.applicable
        left, right = np.median(hm.raw[:, :128]), np.median(hm.raw[:, 128:])
        assert left == pytest.approx(2.0, rel=tol), wavelet
        assert right == pytest.approx(6.0, rel=tol), wavelet
        # block-constant: each 16x16 image block holds one value
        assert np.all(hm.raw[:16, :16] == hm.raw[0, 0])


def test_block_pca_recovers_sigma_per_half(halves):
    # small-sample bias of the smallest eigenvalue: up to about -10 % (see Notes)
    hm = block_pca_map(halves)
    assert hm.shape == halves.shape and hm.applicable and hm.note == ""
    left, right = np.median(hm.raw[:, :128]), np.median(hm.raw[:, 128:])
    assert left == pytest.approx(2.0, rel=0.12)
    assert right == pytest.approx(6.0, rel=0.12)
    assert right / left == pytest.approx(3.0, rel=0.12)


def test_block_pca_mix_is_the_weighted_sum(halves):
    coarse = block_pca_map(halves, mix=1.0).raw
    fine = block_pca_map(halves, mix=0.0).raw
    mixed = block_pca_map(halves, mix=0.8).raw
    np.testing.assert_allclose(mixed, 0.8 * coarse + 0.2 * fine, rtol=1e-5)
    # coarse map is constant on 64x64 blocks and equals the kernel on one block
    exp, _ = ref_phz(halves[64:128, 128:192].astype(np.float32), np.zeros((64, 64), bool), 5, 2, 50)
    assert coarse[100, 150] == pytest.approx(math.sqrt(exp), rel=1e-5)
    assert np.all(coarse[64:128, 128:192] == coarse[64, 128])


def test_maps_flag_the_noisier_half(halves):
    for f in (block_pca_map, wavelet_mad_map):
        hm = f(halves)
        assert hm.values.dtype == np.float32
        assert 0.0 <= hm.values.min() and hm.values.max() <= 1.0
        np.testing.assert_array_equal(f(halves).values, hm.values)  # deterministic


def test_16bit_input_is_on_its_native_scale(halves):
    img16 = np.round(np.clip(halves, 0, 255) * 257).astype(np.uint16)
    for f in (block_pca_map, wavelet_mad_map):
        r8 = f(halves).raw
        r16 = f(img16).raw
        assert np.median(r16) == pytest.approx(257 * np.median(r8), rel=0.02)


def test_block_pca_saturated_blocks_are_reported():
    img = noisy_halves((128, 128), 3.0, 3.0, seed=4)
    img[:64, :64] = 255.0
    hm = block_pca_map(img)
    assert hm.applicable and "blocks" in hm.note
    assert np.all(np.isfinite(hm.raw))
    full = block_pca_map(np.full((96, 96, 3), 255, np.uint8))
    assert not full.applicable and "not applicable" in full.note
    assert np.all(full.values == 0)


def test_small_images_and_parameter_errors():
    img = np.random.default_rng(0).normal(100, 3, (20, 24))
    assert block_pca_map(img).shape == (20, 24)  # blocks shrink to the image
    assert wavelet_mad_map(img).shape == (20, 24)
    with pytest.raises(ValueError, match="smaller"):
        wavelet_mad_map(img[:10])
    with pytest.raises(ValueError, match="mix"):
        block_pca_map(img, mix=1.5)
    with pytest.raises(TypeError, match="block"):
        block_pca_map(img, block=32.5)
    with pytest.raises(ValueError, match="wavelet"):
        wavelet_mad_map(img, wavelet="db4")


def test_clipped_mask_matches_numpy(rng):
    from noisestat.maps.block_pca import _clipped_mask

    for shape, white in [((30, 41, 3), 255.0), ((17, 9, 1), 255.0), ((20, 20, 3), 65535.0)]:
        px = np.round(rng.uniform(-0.4, 1.02, shape) * white).astype(np.float32)
        px[0, 0] = white
        px[1, 1] = np.nextafter(np.float32(white), np.float32(0))
        got = _clipped_mask(px, white)
        exp = (np.any(px <= 0, axis=2) | np.any(px >= white, axis=2)).astype(np.uint8)
        np.testing.assert_array_equal(got, exp)
        assert got.dtype == np.uint8 and got.flags.c_contiguous


@pytest.mark.parametrize("n", [0, 1, 7, 500, RADIX_LONG + 300])
def test_stable_argsort_matches_numpy_stable(n):
    rng = np.random.default_rng(n)
    x = rng.normal(0.0, 50.0, n) ** 2 / 7.0  # non-negative variances
    if n > 10:
        x[: n // 3] = rng.choice([0.0, 1.5, 2.0 / 3.0, 1e-300, 1e300], n // 3)  # many ties, extremes
        x[n // 3 : n // 3 + 3] = [-0.0, -1e-12, -3.5]  # rounding can make a variance slightly negative
        x[-1] = 0.0
        rng.shuffle(x)
    got = stable_argsort(np.ascontiguousarray(x))
    np.testing.assert_array_equal(got, np.argsort(x, kind="stable"))
