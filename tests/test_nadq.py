"""Non-aligned double-JPEG map: kernels against naive references, a known shifted first grid, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from jpegtools import decode, jpeg_bytes
from PIL import Image

from noisestat.blocks.dct import block_dct, dct_matrix
from noisestat.jpeg import nadq as nd
from noisestat.jpeg._nadq_kernels import shift_histograms
from noisestat.metrics import evaluate_map
from noisestat.synth import sample_image


def _host(name: str = "chelsea", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = sample_image(name).astype(np.float64)
    return np.clip(np.rint(a + rng.normal(0, 1.0, a.shape)), 0, 255).astype(np.uint8)


def _write(tmp_path, name: str, b: bytes):
    p = tmp_path / name
    p.write_bytes(b)
    return p


# ---------------------------------------------------------------- kernels vs naive references


def test_shift_histograms_match_block_dct_on_every_shift(rng):
    plane = rng.integers(-128, 128, (29, 35)).astype(np.float64)
    us, vs = np.array([0, 0, 1, 2], np.int64), np.array([0, 1, 0, 3], np.int64)
    lo, width, nb = -1024.0625, 0.25, 8194
    active = rng.random((22, 28)) < 0.7
    got = shift_histograms(plane, active, np.ascontiguousarray(dct_matrix(8)), us, vs, lo, width, nb)
    for r in range(8):
        for c in range(8):
            coef = block_dct(plane[r:, c:])
            keep = active[r::8, c::8][: coef.shape[0], : coef.shape[1]].ravel()
            for q, (u, v) in enumerate(zip(us, vs)):
                b = np.floor((coef[:, :, u, v].ravel()[keep] - lo) / width).astype(int)
                ref = np.bincount(b, minlength=nb).astype(float)
                np.testing.assert_array_equal(got[8 * r + c, q], ref)


def test_active_blocks_match_loops(rng):
    y = rng.normal(0, 3.0, (20, 23)) * (rng.random((20, 23)) < 0.5)
    got = nd._active_blocks(y)
    assert got.shape == (13, 16)
    for i in range(13):
        for j in range(16):
            b = y[i:i + 8, j:j + 8]
            mean = (np.abs(np.diff(b, axis=1)).sum() + np.abs(np.diff(b, axis=0)).sum()) / 112.0
            assert got[i, j] == (mean >= nd.ACTIVITY_MIN)


def test_periodicity_matches_direct_sum(rng):
    centres = nd._centres()
    idx = rng.integers(3000, 5200, 500)
    hist = np.bincount(idx, minlength=nd.N_BINS).astype(float)
    steps = np.array([2, 7, 13, 40])
    got = nd.periodicity(hist, steps)
    y = centres[idx]
    ref = [abs(np.sum(np.exp(2j * np.pi * y / q))) ** 2 / y.size for q in steps]
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_shift_evidence_matches_loops(rng):
    e = rng.exponential(1.0, (64, 2, 5))
    e[0] += 3.0
    allowed = np.array([[True, False, True, True, True], [True, True, True, False, True]])
    ev, best = nd.shift_evidence(e, allowed)
    for s in range(64):
        tot = 0.0
        for k in range(2):
            zs = []
            for q in range(5):
                col = e[:, k, q]
                med = np.median(col)
                scale = max(1.4826 * np.median(np.abs(col - med)), nd.Z_SCALE_MIN)
                base = med if s == 0 else max(med, col[0])
                zs.append((col[s] - base) / scale if allowed[k, q] else -np.inf)
            tot += max(zs)
            assert best[s, k] == int(np.argmax(zs))
        assert ev[s] == pytest.approx(tot, rel=1e-9)


def test_lattice_density_matches_the_formula():
    c = nd._centres()
    p0 = np.exp(-np.abs(c) / 30.0)
    p0 /= p0.sum()
    step, sigma = 7, 0.85
    got = nd.lattice_density(p0, step, sigma)
    cells = np.rint(c / step)
    sub = slice(3500, 4700)  # away from the ends of the bin range
    ref = np.zeros(c.size)
    for j in range(-40, 41):
        mass = p0[cells == j].sum()
        centre = c[int(np.floor((j * step - nd.BIN_LO) / nd.BIN))]
        ref += mass * nd.BIN * np.exp(-0.5 * ((c - centre) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    np.testing.assert_allclose(got[sub], ref[sub], rtol=1e-9, atol=1e-15)


def test_lattice_likelihood_is_the_mixture_maximum(rng):
    from scipy.optimize import minimize_scalar

    p0 = rng.random(50) + 0.1
    p0 /= p0.sum()
    p1 = rng.random(50) ** 4
    p1 /= p1.sum()
    h = rng.multinomial(2000, 0.6 * p1 + 0.4 * p0).astype(float)

    def nll(a):
        return -float(np.sum(h * np.log(a * p1 + (1 - a) * p0)))

    opt = minimize_scalar(nll, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-10})
    alpha, gain = nd.lattice_likelihood(h, p0, p1, iterations=2000)
    assert alpha == pytest.approx(opt.x, abs=1e-5)
    assert gain == pytest.approx(nll(0.0) - opt.fun, rel=1e-6)


# ---------------------------------------------------------------- known truth


def _na_splice(tmp_path, crop=(3, 5), q1=60, q2=90):
    first = decode(jpeg_bytes(_host("chelsea"), q1))
    img = first[crop[0]:, crop[1]:].copy()  # the first grid is now shifted
    mask = np.zeros(img.shape[:2], bool)
    mask[80:200, 120:300] = True
    img[mask] = _host("coffee", 1)[: img.shape[0], : img.shape[1]][mask]  # never-compressed pixels
    return _write(tmp_path, "na.jpg", jpeg_bytes(img, q2)), mask


def test_shift_found_and_region_separated(tmp_path):
    path, mask = _na_splice(tmp_path)
    a = nd.analyze_nonaligned(path)
    assert a.shift == (3, 5) and a.grid_offset == (5, 3)
    assert a.best_evidence > 10 * nd.EVIDENCE_MIN
    assert a.q1[0] == 13 and len(a.informative) >= 4  # IJG quality 60: DC step 13
    hm = nd.nadq_map(path)
    assert hm.applicable and hm.values.shape == mask.shape and hm.values.dtype == np.float32
    assert hm.params["trace"] and hm.params["lattice_found"] and not hm.note.startswith("weak")
    assert hm.params["shift"] == (3, 5) and hm.params["q1"][0] == 13
    m = evaluate_map(hm.values, mask)
    assert m.f1_best >= 0.8 and m.auc > 0.95
    assert set(hm.timings) >= {"analysis", "map", "total"}
    again = nd.nadq_map(path)  # deterministic
    np.testing.assert_array_equal(again.values, hm.values)
    np.testing.assert_array_equal(again.raw, hm.raw)
    assert again.params == hm.params


def test_other_shift(tmp_path):
    path, _ = _na_splice(tmp_path, crop=(1, 0), q1=50, q2=85)
    assert nd.analyze_nonaligned(path).shift == (1, 0)


@pytest.mark.parametrize("quality", [75, 90])
def test_single_compression_has_no_trace(tmp_path, quality):
    hm = nd.nadq_map(_write(tmp_path, "s.jpg", jpeg_bytes(_host("chelsea", 2), quality)))
    assert hm.applicable and not hm.params["trace"]  # the map of the best shifted grid all the same
    assert hm.note.startswith("weak trace") and "no non-aligned" in hm.note
    assert hm.params["shift_evidence"] < nd.EVIDENCE_MIN


def test_aligned_double_compression_has_no_trace(tmp_path):
    b = jpeg_bytes(decode(jpeg_bytes(_host("chelsea", 3), 60)), 90)
    hm = nd.nadq_map(_write(tmp_path, "a.jpg", b))
    assert hm.applicable and not hm.params["trace"]
    assert hm.params["aligned_evidence"] > 10 * nd.EVIDENCE_MIN > hm.params["shift_evidence"]


@pytest.mark.parametrize("host_first", [False, True])
def test_region_pasted_off_the_grid_is_located(tmp_path, host_first):
    """Only the pasted region (from a JPEG at 60, off the grid) carries the shifted trace.

    In a never-compressed host the whole-image rule still holds; in a host compressed on the
    grid (the aligned grid's evidence dominates) it does not, and the map locates the region all
    the same (low: the region is the non-aligned double compression).
    """
    host = _host("chelsea", 0)
    if host_first:
        host = decode(jpeg_bytes(host, 75))
    donor = decode(jpeg_bytes(_host("coffee", 1), 60))[3:, 5:]
    img = host[: donor.shape[0], : donor.shape[1]].copy()
    mask = np.zeros(img.shape[:2], bool)
    mask[64:224, 96:320] = True
    img[mask] = donor[: img.shape[0], : img.shape[1]][mask]
    hm = nd.nadq_map(_write(tmp_path, "r.jpg", jpeg_bytes(img, 90)))
    assert hm.applicable and hm.params["shift"] == (3, 5) and hm.params["q1"][0] == 13
    assert hm.params["trace"] is (not host_first) and hm.params["lattice_found"]
    m = evaluate_map(1.0 - hm.values, mask)
    assert m.f1_best >= 0.8 and m.auc > 0.95


# ---------------------------------------------------------------- inputs and parameters


def test_not_jpeg_tiny_gray_and_16bit(tmp_path):
    arr = _host("chelsea")
    assert not nd.nadq_map(arr).applicable  # an array: not known to be a JPEG
    png = tmp_path / "p.png"
    Image.fromarray(arr).save(png)
    assert "not known to be JPEG" in nd.nadq_map(png).note
    png16 = tmp_path / "p16.png"
    Image.fromarray(arr[..., 0].astype(np.uint16) * 257).save(png16)
    assert not nd.nadq_map(png16).applicable
    tiny = _write(tmp_path, "t.jpg", jpeg_bytes(arr[:40, :40], 90))
    hm = nd.nadq_map(tiny)
    assert not hm.applicable and "smaller" in hm.note and hm.values.shape == (40, 40)
    gray = decode(jpeg_bytes(_host("camera")[:256, :384], 55))[2:, 6:]
    hm = nd.nadq_map(_write(tmp_path, "g.jpg", jpeg_bytes(gray, 92)))
    assert hm.applicable and hm.params["shift"] == (2, 6)
    forced = nd.nadq_map(decode(jpeg_bytes(gray, 92)), force=True)
    assert forced.params["shift"] == (2, 6)


@pytest.mark.parametrize(("kw", "exc"), [({"coefficients": 0}, ValueError), ({"coefficients": 65}, ValueError),
                                         ({"median": 4}, ValueError), ({"median": 0}, ValueError),
                                         ({"force": 1}, TypeError), ({"coefficients": 2.5}, TypeError)])
def test_bad_parameters(kw, exc):
    with pytest.raises(exc):
        nd.nadq_map(np.zeros((64, 64), np.uint8), **kw)
