"""The per-object pooling kernel of fusion against plain numpy (clip, bins, bincount)."""

import numpy as np

from noisestat.localizers import fusion
from noisestat.localizers._fusion_kernels import pool_z


def _reference(z, lab, n, clip, tail, step, nbins):
    zc = np.clip(z, -clip, clip)
    keep = (lab >= 0) & (lab <= n)
    zc, lab = zc[keep], lab[keep]
    b = np.clip(np.rint((zc + clip) / step).astype(np.int64), 0, nbins - 1)
    total = np.bincount(lab, weights=zc.astype(np.float64), minlength=n + 1)
    hi = np.bincount(lab, weights=zc > tail, minlength=n + 1).astype(np.int64)
    lo = np.bincount(lab, weights=zc < -tail, minlength=n + 1).astype(np.int64)
    hist = np.zeros((n + 1, nbins), np.int64)
    np.add.at(hist, (lab, b), 1)
    return total, hi, lo, hist


def test_pool_z_matches_numpy():
    rng = np.random.default_rng(7)
    z = (rng.standard_normal(20000) * 3.0).astype(np.float32)
    z[:50] = np.float32(0.1) * np.arange(-25, 25, dtype=np.float32)  # bin edges and exact grid values
    z[50:60] = np.float32(1e6)
    z[60:70] = np.float32(-1e6)
    lab = rng.integers(-1, 9, z.size).astype(np.int32)  # -1 and 8 are outside 0..n
    n, nbins = 7, int(round(2 * fusion.Z_CLIP / fusion.Z_BIN)) + 1
    args = (np.float32(fusion.Z_CLIP), np.float32(fusion.Z_TAIL), np.float32(fusion.Z_BIN), nbins)
    got = pool_z(z, lab, n, *args)
    ref = _reference(z, lab, n, *args)
    np.testing.assert_array_equal(got[0], ref[0])
    for g, r in zip(got[1:], ref[1:]):
        np.testing.assert_array_equal(g, r)
    assert got[3][:, 0].sum() > 0 and got[3][:, -1].sum() > 0  # the clipped values reach the end bins


def test_tile_extremes_matches_numpy():
    from noisestat.localizers._object_features_kernels import tile_extremes

    rng = np.random.default_rng(8)
    gray = rng.random((37, 53)).astype(np.float32)
    lab = rng.integers(0, 5, (37, 53)).astype(np.int32)
    block, hb, wb = 8, 4, 6
    got = tile_extremes(gray, lab, block, hb, wb)
    g = gray[:32, :48].reshape(hb, block, wb, block)
    lb = lab[:32, :48].reshape(hb, block, wb, block)
    ref = (g.min(axis=(1, 3)), g.max(axis=(1, 3)), lb.min(axis=(1, 3)), lb.max(axis=(1, 3)))
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_tile_covariance_matches_einsum():
    from noisestat.localizers._object_features_kernels import tile_covariance

    rng = np.random.default_rng(9)
    d = rng.standard_normal((18, 27, 3)) * 40.0
    d[0, :3] = np.nan  # a border tile without every coefficient
    half, hb, wb = 4, 4, 6
    t = d[: hb * half, : wb * half].reshape(hb, half, wb, half, 3)
    ref = np.einsum("akbld,akble->abde", t, t)
    got = tile_covariance(d, half, hb, wb)
    np.testing.assert_array_equal(got, ref)
    assert np.isnan(got[0, 0]).all() and np.isfinite(got[1:]).all()


def test_pool_robust_z_is_pool_of_robust_z():
    from noisestat.heatmap import robust_centre_scale, robust_z
    from noisestat.localizers._fusion_kernels import label_counts, pool_robust_z

    rng = np.random.default_rng(11)
    x = np.log(rng.gamma(2.0, 3.0, 30000)).astype(np.float32)
    x[:40] = np.nan
    x[40:45] = np.inf
    lab = np.repeat(rng.integers(-1, 9, 300), 100).astype(np.int32)  # runs of one label, some outside 0..n
    n, nbins = 7, int(round(2 * fusion.Z_CLIP / fusion.Z_BIN)) + 1
    args = (np.float32(fusion.Z_CLIP), np.float32(fusion.Z_TAIL), np.float32(fusion.Z_BIN), nbins)
    med, scale = robust_centre_scale(x)
    got = pool_robust_z(x, np.float32(med), np.float32(scale), lab, n, *args)
    ref = _reference(robust_z(x), lab, n, *args)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
    keep = (lab >= 0) & (lab <= n)
    np.testing.assert_array_equal(label_counts(lab, n), np.bincount(lab[keep], minlength=n + 1))


def test_paint_labels_matches_indexing():
    import pytest

    from noisestat.segment import paint_labels

    rng = np.random.default_rng(12)
    for dt in (np.int32, np.int64, np.uint8):
        lab = rng.integers(0, 6, (37, 53)).astype(dt)
        for table in (rng.random(6).astype(np.float32), rng.random(6) > 0.5):
            got = paint_labels(table, lab)
            assert got.dtype == table.dtype
            np.testing.assert_array_equal(got, table[lab])
    with pytest.raises(IndexError):
        paint_labels(np.zeros(3), np.array([[0, 3]]))
    with pytest.raises(IndexError):
        paint_labels(np.zeros(3), np.array([[-1, 0]]))
    with pytest.raises(TypeError):
        paint_labels(np.zeros(3), np.zeros((2, 2)))
