"""Content-aware JPEG grid map (CAGI): profiles against a naive reference, a shifted-grid splice, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from jpegtools import decode, jpeg_bytes, write
from PIL import Image

import noisestat
from noisestat.jpeg.grid_content import EPS, block_profiles, grid_content_map
from noisestat.metrics import evaluate_map
from noisestat.synth import sample_image


def _splice(host_q: int = 60, donor_q: int = 70, final_q: int = 85, offset=(3, 5)):
    """A region cut from a JPEG at ``offset`` (off its grid), pasted block-aligned into another JPEG."""
    host = decode(jpeg_bytes(sample_image("chelsea")[:256, :384], host_q)).copy()
    donor = decode(jpeg_bytes(sample_image("astronaut"), donor_q))
    y0, x0, hh, ww = 64, 96, 128, 192
    sy, sx = 96 + offset[0], 96 + offset[1]
    host[y0 : y0 + hh, x0 : x0 + ww] = donor[sy : sy + hh, sx : sx + ww]
    mask = np.zeros(host.shape[:2], bool)
    mask[y0 : y0 + hh, x0 : x0 + ww] = True
    return jpeg_bytes(host, final_q), mask


def _naive_profiles(y: np.ndarray):
    h, w = y.shape
    hb, wb = (h - 1) // 8, (w - 1) // 8
    rows = np.zeros((hb, wb, 8))
    cols = np.zeros((hb, wb, 8))
    level = np.zeros((hb, wb))
    for i in range(hb):
        for j in range(wb):
            for p in range(8):
                for q in range(8):
                    a, b = 8 * i + p, 8 * j + q
                    z = abs(y[a, b] - y[a, b + 1] - y[a + 1, b] + y[a + 1, b + 1])
                    rows[i, j, p] += z / 8
                    cols[i, j, q] += z / 8
                    level[i, j] += z / 64
    return rows, cols, level


def test_profiles_match_naive_reference(rng):
    y = rng.normal(128, 20, (29, 42))
    got = block_profiles(y)
    for g, ref in zip(got, _naive_profiles(y)):
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-12)


def test_prominence_of_a_pure_grid(tmp_path):
    # blocky checkerboard: the grid lines carry all of Z, so the grid is found at the origin
    y = np.kron(np.random.default_rng(3).integers(0, 2, (12, 12)) * 40 + 100, np.ones((8, 8)))
    img = np.repeat(y[:, :, None], 3, axis=2).astype(np.uint8)
    hm = grid_content_map(img, force=True)
    assert hm.params["grid_origin"] == (0, 0)
    assert hm.params["grid_prominence"] > np.log((1 + EPS) / EPS)  # both lines far above the rest


def test_shifted_grid_splice_is_found(tmp_path):
    b, mask = _splice()
    img = noisestat.load_image(write(tmp_path, "splice.jpg", b))
    hm = grid_content_map(img)
    assert hm.applicable and hm.values.shape == mask.shape and hm.values.dtype == np.float32
    assert 0.0 <= hm.values.min() <= hm.values.max() <= 1.0
    assert hm.params["grid_origin"] == (0, 0)
    m = evaluate_map(hm.values, mask)
    assert m.f1_best >= 0.8 and m.auc >= 0.9
    assert hm.raw[mask].mean() > hm.raw[~mask].mean()
    inv = grid_content_map(img, inverse=True)
    np.testing.assert_array_equal(inv.raw, -hm.raw)
    assert noisestat.localize(img, method="grid_content").heatmap.values.shape == mask.shape


def test_deterministic(tmp_path):
    import numba

    b, _ = _splice()
    path = write(tmp_path, "splice.jpg", b)
    a = grid_content_map(path)
    default = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        c = grid_content_map(path)
    finally:
        numba.set_num_threads(default)
    np.testing.assert_array_equal(a.values, c.values)
    np.testing.assert_array_equal(a.raw, c.raw)
    assert a.params == c.params


def test_not_applicable_inputs(tmp_path):
    rgb = sample_image("chelsea")[:128, :128]
    png = tmp_path / "x.png"
    Image.fromarray(rgb).save(png)
    for src in (rgb, png):
        hm = grid_content_map(src)
        assert not hm.applicable and "JPEG" in hm.note and not hm.values.any()
    small = write(tmp_path, "small.jpg", jpeg_bytes(rgb[:40, :40], 80))
    hm = grid_content_map(small)
    assert not hm.applicable and "smaller" in hm.note and hm.values.shape == (40, 40)
    assert not grid_content_map(np.zeros((1, 1), np.uint8), force=True).applicable


def test_other_inputs_give_a_map(tmp_path):
    gray = write(tmp_path, "g.jpg", jpeg_bytes(sample_image("camera")[:160, :200], 75))
    hm = grid_content_map(gray)
    assert hm.applicable and hm.values.shape == (160, 200) and hm.params["grid_origin"] == (0, 0)
    p16 = tmp_path / "deep.png"
    import cv2

    deep = (sample_image("chelsea")[:128, :160].astype(np.uint16) * 257)
    cv2.imwrite(str(p16), deep[:, :, ::-1])
    hm = grid_content_map(p16, force=True)
    assert hm.applicable and np.isfinite(hm.raw).all()
    flat = grid_content_map(np.full((96, 96, 3), 128, np.uint8), force=True)
    assert flat.applicable and np.isfinite(flat.raw).all() and flat.params["blocks_used"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [({"region": -1}, ValueError), ({"region": 1.5}, TypeError), ({"smooth": 0}, ValueError),
     ({"inverse": 1}, TypeError), ({"force": "yes"}, TypeError)],
)
def test_bad_parameters(kwargs, exc):
    with pytest.raises(exc):
        grid_content_map(np.zeros((64, 64), np.uint8), **kwargs)
