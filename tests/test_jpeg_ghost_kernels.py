"""The JPEG ghost kernels against plain numpy (block mean of squared differences, bilinear expansion)."""

import numpy as np

from noisestat.jpeg import ghost
from noisestat.jpeg._ghost_kernels import bilinear_rows_cols, block_sq_diff


def test_block_sq_diff_matches_numpy():
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (43, 70), dtype=np.uint8)
    dec = rng.integers(0, 256, (43, 70), dtype=np.uint8)
    hb, wb = 5, 8
    d = src[:40, :64].astype(np.float64) - dec[:40, :64]
    ref = (d * d).reshape(hb, 8, wb, 8).mean(axis=(1, 3)).astype(np.float32)
    got = block_sq_diff(src, dec, hb, wb)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
    # the gray path of _block_sq_diff is the kernel; the colour path (OpenCV) agrees on a gray image
    np.testing.assert_array_equal(ghost._block_sq_diff(src, dec, hb, wb), ref)
    rgb = ghost._block_sq_diff(np.repeat(src[:, :, None], 3, 2), np.repeat(dec[:, :, None], 3, 2), hb, wb)
    np.testing.assert_allclose(rgb, ref, rtol=1e-6)


def test_bilinear_rows_cols_matches_numpy():
    rng = np.random.default_rng(2)
    g = rng.random((6, 9)).astype(np.float32)
    h, w = 37, 61
    r0 = np.minimum(np.arange(h) // 7, 5)
    r1 = np.minimum(r0 + 1, 5)
    fr = rng.random(h).astype(np.float32)
    c0 = np.minimum(np.arange(w) // 7, 8)
    c1 = np.minimum(c0 + 1, 8)
    fc = rng.random(w).astype(np.float32)
    rows = g[r0] * (1 - fr)[:, None] + g[r1] * fr[:, None]
    ref = rows[:, c0] * (1 - fc)[None] + rows[:, c1] * fc[None]
    got = bilinear_rows_cols(g, r0, r1, fr, c0, c1, fc)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
