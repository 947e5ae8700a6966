"""CFA-artifact map: feature and EM against slow references, Bayer-mosaiced splices, refusals."""

from __future__ import annotations

import io

import cv2
import numba
import numpy as np
import pytest
from PIL import Image

from noisestat.blocks.tiling import block_starts
from noisestat.jpeg.cfa import PHASES, cfa_feature, cfa_map, fit_cfa_mixture
from noisestat.metrics import evaluate_map
from noisestat.synth import sample_image

# ---------------------------------------------------------------- synthetic camera


def bayer_bilinear(rgb: np.ndarray, *, noise: float = 1.0, seed: int = 0, shift: int = 0) -> np.ndarray:
    """Sample ``rgb`` on an RGGB Bayer pattern (R at (0,0), G at (0,1) and (1,0), B at (1,1)),
    with sensor noise of std ``noise`` on the samples, then demosaic bilinearly.

    ``shift=1`` moves the pattern one column (GRBG: green at (0,0) and (1,1)).
    Bilinear: green at an R/B site is the mean of its 4 green neighbours; R (B) is the
    mean of the 2 or 4 nearest R (B) samples. Borders mirrored (``c b | a b c``).
    """
    a = rgb.astype(np.float64) + np.random.default_rng(seed).normal(0, noise, rgb.shape)
    h, w, _ = a.shape
    yy, xx = np.mgrid[:h, :w]
    xx = xx + shift
    sites = [(yy % 2 == 0) & (xx % 2 == 0), (yy + xx) % 2 == 1, (yy % 2 == 1) & (xx % 2 == 1)]
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4.0
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0
    out = np.empty_like(a)
    for c, (m, k) in enumerate(zip(sites, (k_rb, k_g, k_rb))):
        out[:, :, c] = cv2.filter2D(np.where(m, a[:, :, c], 0.0), -1, k, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _downscaled(rgb: np.ndarray) -> np.ndarray:
    """The full-colour pixels up- then downscaled by 2: photo content without a CFA trace."""
    h, w = rgb.shape[:2]
    big = cv2.resize(rgb, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


def _splice(name: str, *, not_demosaiced: bool = False, shifted: bool = False,
            reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A bilinear-Bayer host with a pasted region: downscaled photo (no trace), the raw photo
    (``not_demosaiced``) or a Bayer image on a grid shifted by one column (``shifted``);
    ``reverse``: a downscaled host (no trace) with a Bayer region."""
    photo = sample_image(name)
    host = _downscaled(photo) if reverse else bayer_bilinear(photo)
    h, w = host.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 4 + h // 3, w // 3 : 2 * w // 3] = True
    if reverse or shifted:
        donor = bayer_bilinear(photo, seed=3, shift=int(shifted))
    else:
        donor = photo if not_demosaiced else _downscaled(photo)
    out = host.copy()
    out[mask] = donor[mask]
    return out, mask


def _png(tmp_path, a: np.ndarray, name: str = "x.png"):
    p = tmp_path / name
    Image.fromarray(a).save(p)
    return p


def _jpeg(tmp_path, a: np.ndarray, q: int, name: str = "x.jpg"):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=q)
    p = tmp_path / name
    p.write_bytes(buf.getvalue())
    return p


# ---------------------------------------------------------------- slow references


def _mirror(t: int, n: int) -> int:
    while t < 0 or t >= n:
        t = -t if t < 0 else 2 * (n - 1) - t
    return t


def _slow_feature(g: np.ndarray, block: int, window: int, sigma: float) -> np.ndarray:
    """Ferrara et al. 2012, eqs. of Sec. III, written with loops."""
    h, w = g.shape
    e = np.empty((h, w))
    for y in range(h):
        for x in range(w):
            nb = [g[_mirror(y - 1, h), x], g[_mirror(y + 1, h), x], g[y, _mirror(x - 1, w)], g[y, _mirror(x + 1, w)]]
            e[y, x] = g[y, x] - sum(nb) / 4.0
    n = window // 2
    offs = [(i, j) for i in range(-n, n + 1) for j in range(-n, n + 1) if (i + j) % 2 == 0]
    alpha = np.array([np.exp(-(i * i + j * j) / (2 * sigma**2)) for i, j in offs])
    alpha /= alpha.sum()
    c = 1.0 - np.sum(alpha**2)
    var = np.empty((h, w))
    for y in range(h):
        for x in range(w):
            v = np.array([e[_mirror(y + i, h), _mirror(x + j, w)] for i, j in offs])
            mu = np.sum(alpha * v)
            var[y, x] = max(np.sum(alpha * v * v) - mu * mu, 0.0) / c
    lv = np.log(np.maximum(var, 1e-3))
    ys, xs = block_starts(h, block), block_starts(w, block)
    out = np.empty((ys.size, xs.size))
    for a, y0 in enumerate(ys):
        for b, x0 in enumerate(xs):
            acq = [lv[y, x] for y in range(y0, y0 + block) for x in range(x0, x0 + block) if (y + x) % 2 == 0]
            itp = [lv[y, x] for y in range(y0, y0 + block) for x in range(x0, x0 + block) if (y + x) % 2 == 1]
            out[a, b] = np.mean(acq) - np.mean(itp)  # log(GM_A / GM_I)
    return out


@pytest.mark.parametrize(("shape", "block", "window", "sigma"), [((20, 26), 8, 7, 1.5), ((17, 14), 4, 5, 1.0)])
def test_feature_matches_slow_reference(rng, shape, block, window, sigma):
    g = rng.normal(120, 20, shape)
    L, level, flat = cfa_feature(g, block=block, window=window, sigma=sigma)
    ref = _slow_feature(g, block, window, sigma)
    np.testing.assert_allclose(L, ref, rtol=1e-9, atol=1e-9)
    assert not flat.any() and level.shape == L.shape


def _numpy_em(x, k, mu, v1, v0, pi, iters):
    """EM of x ~ pi N(0, v0) + (1 - pi) N(mu[k], v1[k]), mu >= 0."""
    for _ in range(iters):
        f0 = pi * np.exp(-0.5 * x**2 / v0) / np.sqrt(v0)
        f1 = (1 - pi) * np.exp(-0.5 * (x - mu[k]) ** 2 / v1[k]) / np.sqrt(v1[k])
        r0 = f0 / (f0 + f1)
        r1 = 1 - r0
        old = pi
        pi = r0.mean()
        v0 = np.sum(r0 * x**2) / r0.sum()
        w1 = np.bincount(k, r1, mu.size)
        mu = np.maximum(np.bincount(k, r1 * x, mu.size) / w1, 0.0)
        v1 = np.bincount(k, r1 * (x - mu[k]) ** 2, mu.size) / w1
        if abs(pi - old) < 1e-6:
            break
    return pi, v0, mu, v1


def test_mixture_matches_numpy_em(rng):
    x = np.concatenate([rng.normal(0, 0.2, 300), rng.normal(-1.5, 0.4, 700)])
    level = rng.uniform(0, 5, x.size)
    mix = fit_cfa_mixture(x, level, bins=1)
    pi, v0, mu, v1 = _numpy_em(-x, np.zeros(x.size, np.int64), np.array([max(np.median(-x), 0.0)]),
                               np.array([np.var(x)]), float(np.var(x)), 0.5, 200)
    assert mix.phase == 1  # the trace mean is negative: the odd lattice is the acquired one
    assert mix.weight_no_trace == pytest.approx(pi, rel=1e-9)
    assert mix.var_no_trace == pytest.approx(v0, rel=1e-9)
    np.testing.assert_allclose(-mix.mean_trace, mu, rtol=1e-9)
    np.testing.assert_allclose(mix.var_trace, v1, rtol=1e-9)
    assert mix.weight_no_trace == pytest.approx(0.3, abs=0.05)
    assert mix.mean_trace[0] == pytest.approx(-1.5, abs=0.05)


def test_level_mixture_matches_numpy_em_and_truth(rng):
    """Three texture levels, the trace's mean and spread growing with the level, 25 % without trace."""
    n = 6000
    level = rng.uniform(0, 3, n)
    k_true = np.minimum(level.astype(int), 2)
    mu_t, sd1 = np.array([0.6, 1.2, 2.0]), np.array([0.15, 0.3, 0.5])
    no_trace = rng.random(n) < 0.25
    x = np.where(no_trace, rng.normal(0, 0.15, n), rng.normal(mu_t[k_true], sd1[k_true]))
    mix = fit_cfa_mixture(x, level, bins=3)
    k = mix.bins(level)
    assert np.mean(k == k_true) > 0.97  # equal-count bins of a uniform level: near the integer edges
    med = np.array([np.median(x[k == j]) for j in range(3)])
    pi, v0, mu, v1 = _numpy_em(x, k, med, np.full(3, np.var(x)), float(np.var(x)), 0.5, 200)
    assert mix.phase == 0 and mix.weight_no_trace == pytest.approx(pi, rel=1e-9)
    assert mix.var_no_trace == pytest.approx(v0, rel=1e-8)
    np.testing.assert_allclose(mix.mean_trace, mu, rtol=1e-8)
    np.testing.assert_allclose(mix.var_trace, v1, rtol=1e-8)
    assert mix.weight_no_trace == pytest.approx(0.25, abs=0.03)
    assert np.sqrt(mix.var_no_trace) == pytest.approx(0.15, rel=0.1)
    np.testing.assert_allclose(mix.mean_trace, mu_t, rtol=0.05)
    np.testing.assert_allclose(np.sqrt(mix.var_trace), sd1, rtol=0.15)
    lr = mix.log_lr(np.array([0.0, 2.0]), np.array([2.5, 2.5]))
    assert lr[0] > 5 and lr[1] < -5  # L = 0 at the top level: no trace; L = mu: trace


# ---------------------------------------------------------------- known truth


def test_bayer_splice_png(tmp_path):
    img, mask = _splice("chelsea")
    hm = cfa_map(_png(tmp_path, img))
    assert hm.applicable, hm.note
    assert hm.params["phase"] == PHASES[1] == "G at (0,1),(1,0) (RGGB/BGGR)"  # green where row + column is odd
    m = evaluate_map(hm.values, mask)
    assert m.f1_best >= 0.8 and m.auc > 0.95, (m.f1_best, m.auc)
    assert hm.values.shape == mask.shape and hm.values.dtype == np.float32
    assert 0.0 <= hm.values.min() and hm.values.max() <= 1.0


def test_not_demosaiced_region_and_phase_from_data(tmp_path):
    img, mask = _splice("coffee", not_demosaiced=True)
    hm = cfa_map(img)
    assert hm.applicable and evaluate_map(hm.values, mask).f1_best >= 0.8
    shifted = bayer_bilinear(sample_image("coffee"), shift=1)  # GRBG
    assert cfa_map(shifted).params["phase"] == PHASES[0] == "G at (0,0),(1,1) (GRBG/GBRG)"


def test_bayer_splice_jpeg95(tmp_path):
    img, mask = _splice("chelsea")
    hm = cfa_map(_jpeg(tmp_path, img, 95))
    assert hm.applicable, hm.note
    m = evaluate_map(hm.values, mask)
    assert m.f1_best >= 0.8, m.f1_best


@pytest.mark.parametrize(("quality", "f1_min", "auc_min"), [(None, 0.9, 0.95), (95, 0.75, 0.9), (90, 0.5, 0.75)])
def test_shifted_grid_splice(tmp_path, quality, f1_min, auc_min):
    """A region demosaiced on a grid shifted by one column: its L has the opposite sign."""
    img, mask = _splice("astronaut", shifted=True)
    inp = img if quality is None else _jpeg(tmp_path, img, quality)
    hm = cfa_map(inp)
    assert hm.params["trace_found"] and hm.params["phase"] == PHASES[1]
    m = evaluate_map(hm.values, mask)
    assert m.f1_best >= f1_min and m.auc > auc_min, (m.f1_best, m.auc)


def test_bayer_region_in_host_without_trace():
    """A camera-original region in a resampled host: the map shows it, with low values (trace present)."""
    img, mask = _splice("coffee", reverse=True)
    hm = cfa_map(img)
    m = evaluate_map(hm.values, mask)
    assert m.auc < 0.1 and evaluate_map(1.0 - hm.values, mask).f1_best >= 0.8, (m.auc, m.f1_best)


# ---------------------------------------------------------------- refusals and bad inputs


def test_not_applicable_inputs(tmp_path):
    bayer = bayer_bilinear(sample_image("chelsea"))
    for inp, why in [
        (bayer[:, :, 1], "grayscale"),
        (np.repeat(bayer[:, :, 1:2], 3, axis=2), "grayscale"),
        (_jpeg(tmp_path, bayer, 70), "JPEG quality 70"),
        (bayer[:10, :40], "smaller than two blocks"),
    ]:
        hm = cfa_map(inp)
        assert not hm.applicable and why in hm.note, hm.note
        expected = np.asarray(inp).shape[:2] if isinstance(inp, np.ndarray) else bayer.shape[:2]
        assert hm.values.shape == expected and not hm.values.any()


def test_no_trace_map_with_statistic(tmp_path):
    """Without a trace the map is still made; trace_strength says the trace is weak (or refused on request)."""
    photo = _downscaled(sample_image("coffee"))
    hm = cfa_map(photo)
    assert hm.applicable and "NO demosaicing trace" in hm.note
    assert hm.params["trace_found"] is False and 0.0 <= hm.params["trace_strength"] < 0.3
    assert hm.values.shape == (400, 600) and hm.values.any()
    bayer = cfa_map(bayer_bilinear(sample_image("coffee")))
    assert bayer.params["trace_found"] is True and bayer.params["trace_strength"] > 2.0
    q95 = cfa_map(_jpeg(tmp_path, bayer_bilinear(sample_image("coffee")), 95))
    assert q95.params["trace_found"] is True and 0.3 <= q95.params["trace_strength"] < bayer.params["trace_strength"]
    refused = cfa_map(_png(tmp_path, photo, "orig.png"), require_trace=True)
    assert not refused.applicable and "no demosaicing trace" in refused.note and not refused.values.any()


def test_16bit_png_matches_8bit(tmp_path):
    bayer = bayer_bilinear(sample_image("chelsea"))[:128, :160]
    p16 = tmp_path / "x16.png"
    cv2.imwrite(str(p16), (bayer[:, :, ::-1].astype(np.uint16) * 257))
    hm8, hm16 = cfa_map(bayer), cfa_map(p16)
    assert hm16.applicable
    np.testing.assert_allclose(hm16.values, hm8.values, atol=1e-5)


def test_bad_parameters():
    img = np.zeros((32, 32, 3), np.uint8)
    for kw, err in [({"block": 7}, ValueError), ({"window": 6}, ValueError), ({"smooth": 2}, ValueError),
                    ({"sigma": 0.0}, ValueError), ({"require_trace": "yes"}, TypeError), ({"block": "8"}, TypeError)]:
        with pytest.raises(err):
            cfa_map(img, **kw)


def test_deterministic():
    img, _ = _splice("coffee")
    a = cfa_map(img)
    b = cfa_map(img)
    np.testing.assert_array_equal(a.values, b.values)
    old, old_cv = numba.get_num_threads(), cv2.getNumThreads()
    try:
        numba.set_num_threads(1)
        cv2.setNumThreads(1)  # the local variance uses OpenCV's row-parallel filters
        c = cfa_map(img)
    finally:
        numba.set_num_threads(old)
        cv2.setNumThreads(old_cv)
    np.testing.assert_array_equal(a.values, c.values)
    assert a.params == c.params
