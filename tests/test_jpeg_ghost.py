"""JPEG ghost map: the differences and the criterion against slow references, known splices, refusals."""

from __future__ import annotations

import io

import numba
import numpy as np
import pytest
from jpegtools import decode, jpeg_bytes, write
from PIL import Image

import noisestat
from noisestat.jpeg.ghost import EPS, MIN_CLASS, ghost_differences, jpeg_ghost_map
from noisestat.metrics import evaluate_map
from noisestat.synth import sample_image


def _photo(name: str = "astronaut", seed: int = 0, shape=(256, 384)) -> np.ndarray:
    """A never-compressed photo crop with a little sensor noise."""
    a = sample_image(name)[: shape[0], : shape[1]].astype(np.float64)
    a = a + np.random.default_rng(seed).normal(0, 1.0, a.shape)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


MASK = np.zeros((256, 384), bool)
MASK[72:168, 120:264] = True


@pytest.fixture(scope="module")
def splice_path(tmp_path_factory):
    """Farid's case: a region saved at q1 = 60 pasted into a never-compressed host, all saved at 90."""
    host = _photo()
    spliced = host.copy()
    spliced[MASK] = decode(jpeg_bytes(host, 60))[MASK]
    return write(tmp_path_factory.mktemp("ghost"), "splice.jpg", jpeg_bytes(spliced, 90))


# --------------------------------------------------------------------------- #
# slow references written from the paper's equations
# --------------------------------------------------------------------------- #


def _cv2_roundtrip(px: np.ndarray, q: int) -> np.ndarray:
    """The fixed encoder (OpenCV, baseline, 4:2:0) on RGB or gray uint8, back as float64."""
    import cv2

    opts = [cv2.IMWRITE_JPEG_QUALITY, q, cv2.IMWRITE_JPEG_OPTIMIZE, 0, cv2.IMWRITE_JPEG_PROGRESSIVE, 0]
    if px.ndim == 3:
        opts += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
        ok, buf = cv2.imencode(".jpg", px[:, :, ::-1].copy(), opts)
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float64)
    ok, buf = cv2.imencode(".jpg", px, opts)
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float64)[:, :, None]


def ref_luma(px: np.ndarray) -> np.ndarray:
    """BT.601 luma rounded to 8 bits (the gray image the luma mode re-compresses)."""
    if px.ndim == 2:
        return px
    p = px.astype(np.float32)  # in float32, as LoadedImage.gray computes it
    y = (0.299 * p[:, :, 0] + 0.587 * p[:, :, 1] + 0.114 * p[:, :, 2]).astype(np.float32)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def ref_delta(px: np.ndarray, qualities, b: int) -> np.ndarray:
    """delta(x, y, q) = (1/C) sum_c (1/b^2) sum over the window of (f_c - f_{q,c})^2, windows every 8 px."""
    f = px.astype(np.float64) if px.ndim == 3 else px.astype(np.float64)[:, :, None]
    h, w = px.shape[:2]
    nr, nc = h // 8 - b // 8 + 1, w // 8 - b // 8 + 1
    out = np.zeros((len(qualities), nr, nc))
    for i, q in enumerate(qualities):
        d = ((f - _cv2_roundtrip(px, q)) ** 2).mean(axis=2)
        for r in range(nr):
            for c in range(nc):
                out[i, r, c] = d[8 * r : 8 * r + b, 8 * c : 8 * c + b].mean()
    return out


def ref_depth(delta: np.ndarray, qualities) -> np.ndarray:
    """log(delta + EPS) minus its least-squares line in q, window by window (np.polyfit)."""
    lg = np.log(delta + EPS)
    out = np.empty_like(lg)
    for r in range(lg.shape[1]):
        for c in range(lg.shape[2]):
            a1, a0 = np.polyfit(np.asarray(qualities, float), lg[:, r, c], 1)
            out[:, r, c] = lg[:, r, c] - (a0 + a1 * np.asarray(qualities, float))
    return out


def ref_normalised(delta: np.ndarray) -> np.ndarray:
    """Farid's per-window normalisation over q, window by window (0.5 where the span is below EPS)."""
    out = np.empty_like(delta)
    for r in range(delta.shape[1]):
        for c in range(delta.shape[2]):
            d = delta[:, r, c]
            span = d.max() - d.min()
            out[:, r, c] = (d - d.min()) / span if span > EPS else 0.5
    return out


def write_tmp(b: bytes):
    import tempfile
    from pathlib import Path

    p = Path(tempfile.mkdtemp()) / "x.jpg"
    p.write_bytes(b)
    return p


def ref_fisher(v: np.ndarray) -> tuple[float, float]:
    """Brute force over every split of the sorted values: the Otsu split's Fisher ratio and low share."""
    x = np.sort(v.ravel())
    n = x.size
    lo = max(1, int(np.ceil(MIN_CLASS * n)))
    best = max(range(lo, n - lo + 1), key=lambda k: k * (n - k) * (x[k:].mean() - x[:k].mean()) ** 2)
    a, b = x[:best], x[best:]
    if b.mean() - a.mean() <= 0:  # no split (a constant map)
        return 0.0, 0.5
    return (b.mean() - a.mean()) / np.sqrt(0.5 * (a.var() + b.var())), best / n


@pytest.mark.parametrize(("shape", "window"), [((40, 56, 3), 16), ((48, 40), 8), ((64, 72, 3), 24)])
def test_differences_match_reference(shape, window, rng):
    px = np.clip(rng.normal(120, 40, shape), 0, 255).astype(np.uint8)
    qs = [55, 70, 90]
    got = ghost_differences(px, qualities=qs, window=window, channels="rgb")
    np.testing.assert_allclose(got, ref_delta(px, qs, window), rtol=1e-5, atol=1e-4)
    luma = ghost_differences(px, qualities=qs, window=window)  # default: the luma as a gray JPEG
    np.testing.assert_allclose(luma, ref_delta(ref_luma(px), qs, window), rtol=1e-5, atol=1e-4)


def test_depth_and_criterion_match_reference(rng):
    px = np.clip(rng.normal(120, 30, (48, 64, 3)), 0, 255).astype(np.uint8)
    path_bytes = jpeg_bytes(px, 80)
    img = noisestat.load_image(decode(path_bytes))
    hm = jpeg_ghost_map(img, force=True, q_min=50, step=5, quality=65)
    assert hm.params["qualities"] == list(range(50, 100, 5)) and hm.params["quality"] == 65
    allq = hm.params["qualities"]
    delta = ref_delta(ref_luma(img.pixels.astype(np.uint8)), allq, 16)
    depth = ref_depth(delta, allq)
    g = depth[allq.index(65)]
    # linear between window centres 8 r + 7.5 (16-pixel windows), constant beyond the outer ones
    ys, xs = np.arange(48), np.arange(64)
    cy, cx = 8 * np.arange(g.shape[0]) + 7.5, 8 * np.arange(g.shape[1]) + 7.5
    cols = np.stack([np.interp(ys, cy, g[:, c]) for c in range(g.shape[1])], axis=1)
    full = np.stack([np.interp(xs, cx, cols[y]) for y in range(48)])
    np.testing.assert_allclose(hm.raw, full, rtol=1e-4, atol=1e-4)
    fisher, share = ref_fisher(ref_normalised(delta)[allq.index(65)])
    assert hm.params["fisher"] == pytest.approx(fisher, rel=1e-5)
    assert hm.params["ghost_share"] == pytest.approx(share)
    assert hm.params["candidates"] == [65]


def test_choice_matches_reference():
    """Unforced: the local minima of the mean curve, then the largest Fisher ratio of d_q among them."""
    # a region saved at q1 in a never-compressed host (no local minimum: every quality is a
    # candidate), and a host saved at 66 around a never-compressed region (minima at 66 and 74)
    for name, seed, q1, host_first in (("chelsea", 0, 70, False), ("chelsea", 1, 62, False),
                                       ("coffee", 0, 66, True)):
        host = _photo(name, seed, shape=(64, 96))
        first = decode(jpeg_bytes(host, q1))
        px = first.copy() if host_first else host.copy()
        px[16:48, 24:64] = (host if host_first else first)[16:48, 24:64]
        img = noisestat.load_image(write_tmp(jpeg_bytes(px, 92)))
        hm = jpeg_ghost_map(img, q_min=56, step=2)
        allq = hm.params["qualities"]
        delta = ref_delta(ref_luma(img.pixels.astype(np.uint8)), allq, 16)
        mean = delta.reshape(len(allq), -1).mean(axis=1)
        cand = [i for i in range(1, len(allq) - 1) if mean[i] < mean[i - 1] and mean[i] < mean[i + 1]]
        cand = cand or list(range(len(allq)))
        norm = ref_normalised(delta)
        fis = [ref_fisher(norm[i])[0] for i in cand]
        best = cand[int(np.argmax(fis))]
        assert hm.params["candidates"] == [allq[i] for i in cand]
        assert hm.params["quality"] == allq[best]
        assert hm.params["fisher"] == pytest.approx(max(fis), rel=1e-4)
        assert (len(cand) == 2) == host_first


# --------------------------------------------------------------------------- #
# known truth
# --------------------------------------------------------------------------- #


def test_ghost_of_a_region_saved_at_60_is_found(splice_path):
    hm = jpeg_ghost_map(splice_path)
    assert hm.applicable and hm.note == ""
    assert hm.params["qualities"] == list(range(50, 90))  # below the file's own quality 90
    assert abs(hm.params["quality"] - 60) <= 5
    assert hm.params["orientation"] == "ghost" and hm.params["ghost_share"] < 0.5
    m = evaluate_map(hm.values, MASK)
    assert m.f1_best >= 0.8 and m.auc > 0.9
    assert hm.values.dtype == np.float32 and hm.raw.dtype == np.float32
    assert 0.0 <= hm.values.min() and hm.values.max() <= 1.0
    assert hm.raw[MASK].mean() < hm.raw[~MASK].mean()  # the ghost: lower difference at q
    assert set(hm.timings) == {"prepare", "recompress", "choose", "total"}


def test_colour_mode_and_file_subsampling(tmp_path, splice_path):
    hm = jpeg_ghost_map(splice_path, channels="rgb")  # Farid's mean over R, G, B; PIL saved 4:2:0
    assert hm.params["channels"] == "rgb" and hm.params["subsampling"] == "4:2:0"
    assert abs(hm.params["quality"] - 60) <= 5 and evaluate_map(hm.values, MASK).f1_best >= 0.8
    b = io.BytesIO()
    Image.fromarray(_photo(shape=(64, 96))).save(b, format="JPEG", quality=90, subsampling=0)
    p444 = write(tmp_path, "s444.jpg", b.getvalue())
    assert jpeg_ghost_map(p444, channels="rgb", subsampling="auto").params["subsampling"] == "4:4:4"
    assert jpeg_ghost_map(p444).params["subsampling"] == "n/a (gray)"  # luma: no chroma


def test_forced_quality(splice_path):
    hm = jpeg_ghost_map(splice_path, quality=75)
    assert hm.params["quality"] == 75
    hm = jpeg_ghost_map(splice_path, quality=61, step=4)  # added to the range when not on it
    assert hm.params["quality"] == 61 and 61 in hm.params["qualities"]


def test_host_ghost_flags_the_content_without_it(tmp_path):
    # both parts from JPEG photos (as in CASIA): host saved at 70 first, the pasted part never.
    # Whichever quality splits the image best (70: the host is the ghost; for this photo 94, just
    # below the last quality, where the pasted part is), the map flags the smaller class.
    for name, other in (("astronaut", "coffee"), ("chelsea", "astronaut")):
        host = decode(jpeg_bytes(_photo(name), 70)).copy()
        host[MASK] = _photo(other, 1)[MASK]
        hm = jpeg_ghost_map(write(tmp_path, "h.jpg", jpeg_bytes(host, 95)))
        share = hm.params["ghost_share"]
        assert hm.params["orientation"] == ("ghost" if share <= 0.5 else "non-ghost")
        assert evaluate_map(hm.values, MASK).f1_best >= 0.8, (name, hm.params["quality"])
        if hm.params["orientation"] == "non-ghost":
            assert abs(hm.params["quality"] - 70) <= 5


def test_single_compression_has_no_strong_ghost(tmp_path, splice_path):
    hm = jpeg_ghost_map(write(tmp_path, "s.jpg", jpeg_bytes(_photo(), 90)))
    assert hm.applicable
    spliced = jpeg_ghost_map(splice_path)
    assert hm.params["fisher"] < spliced.params["fisher"] - 1.0
    # the map then shows texture differences, with few pixels above 0.5
    assert (hm.values > 0.5).mean() < 0.02


# --------------------------------------------------------------------------- #
# inputs of the wrong kind, parameters, determinism
# --------------------------------------------------------------------------- #


def test_not_applicable_inputs(tmp_path):
    px = _photo(shape=(64, 80))
    png = tmp_path / "a.png"
    Image.fromarray(px).save(png)
    for src in (px, png):
        hm = jpeg_ghost_map(src)
        assert not hm.applicable and "not known to be JPEG" in hm.note
        assert not hm.values.any() and not hm.raw.any() and hm.shape == (64, 80)
    tiny = jpeg_ghost_map(write(tmp_path, "t.jpg", jpeg_bytes(px[:12, :40], 90)))
    assert not tiny.applicable and "fewer than two" in tiny.note
    low = jpeg_ghost_map(write(tmp_path, "l.jpg", jpeg_bytes(px, 52)))  # nothing below to try
    assert not low.applicable and "three qualities" in low.note


def test_gray_jpeg_and_16bit_png(tmp_path):
    gray = _photo("camera", shape=(96, 128))
    hm = jpeg_ghost_map(write(tmp_path, "g.jpg", jpeg_bytes(gray, 85)), step=5)
    assert hm.applicable and hm.params["subsampling"] == "n/a (gray)" and hm.shape == (96, 128)
    png16 = tmp_path / "p16.png"
    Image.fromarray(gray.astype(np.uint16) * 257).save(png16)
    hm16 = jpeg_ghost_map(png16, force=True, step=5)
    assert hm16.applicable and np.isfinite(hm16.values).all()
    np.testing.assert_allclose(hm16.raw, jpeg_ghost_map(gray, force=True, step=5).raw, atol=1e-5)


def test_parameter_errors():
    px = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="quality"):
        jpeg_ghost_map(px, quality=0)
    with pytest.raises(TypeError, match="quality"):
        jpeg_ghost_map(px, quality=60.0)
    with pytest.raises(ValueError, match="window"):
        jpeg_ghost_map(px, window=12)
    with pytest.raises(ValueError, match="step"):
        jpeg_ghost_map(px, step=0)
    with pytest.raises(ValueError, match="q_min"):
        jpeg_ghost_map(px, q_min=100)
    with pytest.raises(ValueError, match="subsampling"):
        jpeg_ghost_map(px, subsampling="4:1:1")
    with pytest.raises(TypeError, match="force"):
        jpeg_ghost_map(px, force=1)
    with pytest.raises(ValueError, match="channels"):
        jpeg_ghost_map(px, channels="lab")
    with pytest.raises(ValueError, match="qualities"):
        ghost_differences(px, qualities=[])
    with pytest.raises(ValueError, match="qualities"):
        ghost_differences(px, qualities=[50, 101])


def test_deterministic_and_thread_independent(splice_path):
    a = jpeg_ghost_map(splice_path, step=4)
    b = jpeg_ghost_map(splice_path, step=4)
    np.testing.assert_array_equal(a.values, b.values)
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        c = jpeg_ghost_map(splice_path, step=4)
    finally:
        numba.set_num_threads(n)
    np.testing.assert_array_equal(a.values, c.values)
    np.testing.assert_array_equal(a.raw, c.raw)


def test_registered():
    spec = noisestat.registry.get_method("jpeg_ghost")
    assert spec.kind == "map" and spec.params["quality"] is None and spec.params["window"] == 16
