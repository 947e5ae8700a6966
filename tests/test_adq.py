"""Aligned double-JPEG map: kernels against naive references, known first tables, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from jpegtools import decode, jpeg_bytes, write
from PIL import Image

import noisestat
from noisestat.blocks.dct import ZIGZAG, block_dct
from noisestat.io import ijg_luma_table
from noisestat.jpeg.adq import adq_map, analyze_double_jpeg, dq_factor
from noisestat.metrics import evaluate_map
from noisestat.synth import sample_image


def _host(name: str = "chelsea", seed: int = 0) -> np.ndarray:
    # a never-compressed photo with a little sensor noise
    rng = np.random.default_rng(seed)
    a = sample_image(name).astype(np.float64)
    return np.clip(np.rint(a + rng.normal(0, 1.0, a.shape)), 0, 255).astype(np.uint8)


def test_zigzag_is_the_jpeg_scan():
    # ITU-T T.81 figure 5: the first coefficients of the zigzag sequence
    assert ZIGZAG[:10].tolist() == [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]
    assert ZIGZAG[-3:].tolist() == [55, 62, 63]
    assert sorted(ZIGZAG.tolist()) == list(range(64))


def test_block_dct_matches_scipy(rng):
    from scipy.fft import dctn

    x = rng.normal(0, 30, (37, 45))  # partial blocks are dropped
    c = block_dct(x)
    assert c.shape == (4, 5, 8, 8)
    for a in range(4):
        for b in range(5):
            ref = dctn(x[8 * a : 8 * a + 8, 8 * b : 8 * b + 8], norm="ortho")
            np.testing.assert_allclose(c[a, b], ref, atol=1e-9)


def _naive_dq(x: int, q1: int, q2: int) -> float:
    """(q1 / q2) * #{k : round(q1 k / q2) = x}, a half-way value counting half in each bin."""
    count = 0.0
    for k in range(-400, 401):
        num, den = 2 * q1 * k, q2  # 2 * q1 k / q2 compared with 2x - 1 and 2x + 1, in integers
        lo, hi = (2 * x - 1) * den, (2 * x + 1) * den
        if lo < num < hi:
            count += 1.0
        elif num in (lo, hi):
            count += 0.5
    return q1 / q2 * count


@pytest.mark.parametrize(("q1", "q2"), [(3, 2), (5, 3), (7, 10), (6, 4), (9, 9), (2, 8), (13, 5), (11, 16)])
def test_dq_factor_matches_enumeration(q1, q2):
    xs = np.arange(-25, 26)
    got = dq_factor(xs, q1, q2)
    np.testing.assert_allclose(got, [_naive_dq(int(x), q1, q2) for x in xs], atol=1e-12)
    period = q1 // math.gcd(q1, q2)  # n(x) repeats every q1 / gcd bins and averages to 1
    assert dq_factor(np.arange(period), q1, q2).mean() == pytest.approx(1.0)
    if q2 % q1 == 0:
        np.testing.assert_allclose(got, 1.0)


@pytest.mark.parametrize(("q_first", "q_second"), [(60, 90), (50, 80), (75, 95)])
def test_first_table_is_recovered_and_pasted_region_found(tmp_path, q_first, q_second):
    host = decode(jpeg_bytes(_host("chelsea"), q_first)).copy()
    donor = _host("coffee", 1)
    mask = np.zeros(host.shape[:2], bool)
    mask[100:220, 150:330] = True  # never-compressed content pasted before the second save
    host[mask] = donor[: host.shape[0], : host.shape[1]][mask]
    path = write(tmp_path, "dq.jpg", jpeg_bytes(host, q_second))
    a = analyze_double_jpeg(path)
    assert a.table_source == "file"
    np.testing.assert_array_equal(a.q2, ijg_luma_table(q_second))
    assert a.trace_found and a.trace > 0.015
    true_q1 = ijg_luma_table(q_first).ravel()
    inf = list(a.trace_frequencies)  # the first 15 AC: their true steps are <= Q1_MAX
    assert set(inf) <= set(a.informative)  # a trace frequency enters the map
    assert len(inf) >= 6
    hits = np.sum(a.q1.ravel()[inf] == true_q1[inf])
    assert hits >= 0.7 * len(inf), (a.q1.ravel()[inf], true_q1[inf])
    hm = adq_map(path)
    assert hm.applicable and hm.values.shape == mask.shape and hm.params["trace_found"]
    m = evaluate_map(hm.values, mask)
    assert m.auc > 0.95 and m.f1_best > 0.85
    # blocks whose analysed coefficients are all 0 (flat areas) carry no evidence: 0.5
    assert hm.values[mask].mean() > 0.8 and hm.values[~mask].mean() < 0.3


@pytest.mark.parametrize("quality", [70, 85, 95])
def test_single_compression_has_a_map_but_no_trace(tmp_path, quality):
    path = write(tmp_path, "s.jpg", jpeg_bytes(_host("chelsea", 2), quality))
    hm = adq_map(path)
    assert hm.applicable and hm.values.shape == (300, 451)
    assert not hm.params["trace_found"] and "no image-level double-compression trace" in hm.note
    assert hm.params["trace"] < 0.015


def test_finer_first_table_still_gives_a_map(tmp_path):
    # first quality 85, second 70: no image-level trace is claimed, but steps that do not
    # divide the second ones leave a pattern, and the pasted region lacks it
    host = decode(jpeg_bytes(_host("chelsea"), 85)).copy()
    donor = _host("coffee", 1)
    mask = np.zeros(host.shape[:2], bool)
    mask[100:220, 150:330] = True
    host[mask] = donor[: host.shape[0], : host.shape[1]][mask]
    hm = adq_map(write(tmp_path, "fine.jpg", jpeg_bytes(host, 70)))
    assert hm.applicable and hm.params["map_frequencies"] >= 1
    assert evaluate_map(hm.values, mask, orientation="as_is").auc > 0.7


def _naive_smoothed_dq(x: int, q1: float, q2: float, sig: float, bias: float) -> float:
    """(q1 / q2) * sum over k of P(round((q1 k + e) / q2) = x), e ~ N(bias, sig^2), by brute force."""
    s = 0.0
    for k in range(-600, 601):
        t = q1 * k + bias
        hi, lo = ((x + 0.5) * q2 - t) / sig, ((x - 0.5) * q2 - t) / sig
        s += 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2)))
    return q1 / q2 * s


@pytest.mark.parametrize(("q1", "q2", "sig", "bias"), [(3, 2, 0.3, 0.0), (5, 8, 0.6, 0.0), (7, 10, 0.4, 0.2),
                                                       (12, 9, 1.5, -0.3), (2, 8, 0.5, 0.0)])
def test_smoothed_dq_factor_matches_naive_sum(q1, q2, sig, bias):
    from noisestat.jpeg._adq_kernels import smoothed_dq_factor

    m = 30
    got = smoothed_dq_factor(m, float(q1), float(q2), sig, bias)
    ref = [_naive_smoothed_dq(x, q1, q2, sig, bias) for x in range(-m, m + 1)]
    np.testing.assert_allclose(got, ref, atol=1e-9)
    # a vanishing rounding error gives the exact factor away from half-way ties
    sharp = smoothed_dq_factor(m, float(q1), float(q2), 1e-4, 0.0)
    np.testing.assert_allclose(sharp, dq_factor(np.arange(-m, m + 1), q1, q2), atol=1e-6)


def _naive_mixture_em(h, a1, a0, steps):
    """The EM updates of the share alpha, one candidate at a time, in plain numpy."""
    alphas, gains = [], []
    for row in a1:
        a = 0.5
        for _ in range(steps):
            a = float(np.sum(h * a * row / (a * row + (1 - a) * a0)) / np.sum(h))
        alphas.append(a)
        gains.append(float(np.sum(h * np.log((a * row + (1 - a) * a0) / a0))))
    return np.array(alphas), np.array(gains)


def test_mixture_em_matches_numpy_and_recovers_a_known_share():
    from noisestat.jpeg._adq_kernels import mixture_em

    rng = np.random.default_rng(4)
    a0 = rng.random(40) + 0.1
    a0 /= a0.sum()
    a1 = rng.random((5, 40)) + 0.01
    a1 /= a1.sum(axis=1, keepdims=True)
    h = np.rint(4000 * (0.7 * a1[2] + 0.3 * a0)).astype(np.float64)  # candidate 2 at share 0.7
    wide = np.column_stack([np.full(5, 0.5), a1, np.full(5, 0.25)])  # bins 0 and 41 do not enter
    alpha, gain = mixture_em(h, wide, np.arange(1, 41), a0, 30)
    ref_alpha, ref_gain = _naive_mixture_em(h, a1, a0, 30)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-10)
    np.testing.assert_allclose(gain, ref_gain, rtol=1e-9)
    assert int(np.argmax(gain)) == 2 and abs(alpha[2] - 0.7) < 0.05
    assert mixture_em(h, a1, np.arange(40), a0, 0)[0].tolist() == [0.5] * 5  # no step: the starting share


def test_gray_jpeg_and_array_with_quality(tmp_path):
    gray = _host("camera")
    b = jpeg_bytes(decode(jpeg_bytes(gray, 55)), 85)
    hm = adq_map(write(tmp_path, "g.jpg", b))
    assert hm.applicable and hm.params["coefficient_source"] == "file" and hm.params["trace_found"]
    # the same pixels as an array: not known to be JPEG unless forced with a quality
    arr = noisestat.load_image(decode(b))
    assert not adq_map(arr).applicable
    info = arr.info.__class__(**{**arr.info.to_dict(), "jpeg_quality": 85.0})
    forced = adq_map(noisestat.types.LoadedImage(arr.pixels, info), force=True)
    assert forced.applicable and forced.params["table"] == "IJG quality 85"
    assert forced.params["coefficient_source"] == "pixels"
    # recomputed coefficients round back to the file's on a decoded grayscale JPEG
    assert np.mean(np.abs(forced.values - hm.values)) < 0.05


def _naive_double_pmf(u, q1, q2, sig, m):
    """Sum over the samples: P(round((q1 round(c / q1) + e) / q2) = x), e ~ N(0, sig^2)."""
    out = np.zeros(2 * m + 1)
    for c in u:
        t = q1 * round(c / q1)
        for i, x in enumerate(range(-m, m + 1)):
            hi, lo = ((x + 0.5) * q2 - t) / sig, ((x - 0.5) * q2 - t) / sig
            if x == m:
                hi = math.inf
            if x == -m:
                lo = -math.inf
            out[i] += 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2)))
    return out / out.sum()


@pytest.mark.parametrize(("q1", "q2", "sig"), [(6, 2, 0.3), (5, 3, 0.6), (3, 5, 0.4), (7, 1, 0.35)])
def test_double_pmf_matches_naive_sum(rng, q1, q2, sig):
    from noisestat.jpeg.adq import PSEUDO_MASS, double_pmf

    u = rng.laplace(0, 6, 400) + 0.25  # no sample on a rounding boundary
    m = 12
    got = double_pmf(u, q1, q2, sig, m)
    ref = _naive_double_pmf(u, q1, q2, sig, m)
    # double_pmf spreads PSEUDO_MASS evenly over the first-step bins: compare up to it
    assert np.abs(got - ref).sum() < 2.5 * PSEUDO_MASS
    assert got.sum() == pytest.approx(1.0)


def test_file_coefficients_find_a_trace_at_step_one(tmp_path):
    # second save at quality 100 (all steps 1): a comb of the first steps, read from the file
    host = decode(jpeg_bytes(_host("chelsea"), 70)).copy()
    donor = _host("coffee", 1)
    mask = np.zeros(host.shape[:2], bool)
    mask[100:220, 150:330] = True
    host[mask] = donor[: host.shape[0], : host.shape[1]][mask]
    path = write(tmp_path, "q100.jpg", jpeg_bytes(host, 100))
    a = analyze_double_jpeg(path)
    assert a.coefficient_source == "file" and a.lattice_misfit == 0.0
    inf = list(a.trace_frequencies)  # the first 15 AC: their true steps are <= Q1_MAX
    assert len(inf) >= 10
    assert np.mean(a.q1.ravel()[inf] == ijg_luma_table(70).ravel()[inf]) >= 0.8
    hm = adq_map(path)
    assert evaluate_map(hm.values, mask).f1_best > 0.85


def test_cmyk_jpeg_never_raises(tmp_path):
    a = _host("chelsea")
    Image.fromarray(np.dstack([a, a[:, :, :1]]), "CMYK").save(tmp_path / "c.jpg", quality=80)
    hm = adq_map(tmp_path / "c.jpg")
    assert hm.values.shape == a.shape[:2]
    assert hm.params.get("coefficient_source", "pixels") == "pixels"


def test_off_grid_pixels_are_refused(tmp_path):
    b = jpeg_bytes(decode(jpeg_bytes(_host("chelsea"), 60)), 90)
    px = decode(b)[3:, 5:]  # cropped after the last compression: the grid moved
    img = noisestat.load_image(px)
    info = img.info.__class__(**{**img.info.to_dict(), "is_jpeg": True, "jpeg_quality": 90.0})
    hm = adq_map(noisestat.types.LoadedImage(img.pixels, info))
    assert not hm.applicable and "lattice" in hm.note


def test_not_jpeg_and_bad_parameters(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    hm = adq_map(img)
    assert not hm.applicable and "not known to be JPEG" in hm.note
    with pytest.raises(ValueError, match="quantisation table"):
        analyze_double_jpeg(img)
    with pytest.raises(ValueError, match="coefficients"):
        adq_map(img, coefficients=0)
    with pytest.raises(ValueError, match="odd"):
        adq_map(img, median=4)
    with pytest.raises(TypeError, match="force"):
        adq_map(img, force="yes")
    with pytest.raises(ValueError, match="smaller"):
        adq_map(np.zeros((8, 8), np.uint8))


def test_jpeg_file_records_its_table(tmp_path):
    path = write(tmp_path, "q.jpg", jpeg_bytes(_host("chelsea"), 77))
    info = noisestat.load_image(path).info
    assert info.jpeg_luma_table == tuple(int(v) for v in ijg_luma_table(77).ravel())
    assert info.jpeg_quality == 77
    png = tmp_path / "p.png"
    Image.fromarray(_host("chelsea")).save(png)
    assert noisestat.load_image(png).info.jpeg_luma_table is None
    with pytest.raises(ValueError, match="quality"):
        ijg_luma_table(0)


@pytest.mark.parametrize(("name", "quality"), [("chelsea", 75), ("coffee", 90)])
def test_large_resampled_single_compression_has_no_trace(tmp_path, name, quality):
    # a photo upscaled to 3 MP and saved once: the shifted-grid model is off by more than
    # Poisson noise on 49k blocks; the model-error term keeps that from reading as a trace
    import cv2

    big = cv2.resize(_host(name, 3), (2048, 1536), interpolation=cv2.INTER_CUBIC)
    hm = adq_map(write(tmp_path, "big.jpg", jpeg_bytes(big, quality)))
    assert hm.applicable and not hm.params["trace_found"]
