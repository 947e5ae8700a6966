from __future__ import annotations

import numpy as np
import pytest

from noisestat.localizers._dissimilarity import algorithm1, cosine_dissimilarity, standardize_features
from noisestat.localizers._regions import region_sums


def _naive_dm(f):
    n = len(f)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            ni, nj = np.linalg.norm(f[i]), np.linalg.norm(f[j])
            if ni == 0 and nj == 0:
                d[i, j] = 0.0
            elif ni == 0 or nj == 0:
                d[i, j] = 1.0
            else:
                d[i, j] = 1.0 - float(np.dot(f[i], f[j])) / (ni * nj)
    return d


@pytest.mark.parametrize("seed", range(5))
def test_cosine_matches_naive(seed):
    rng = np.random.default_rng(seed)
    f = rng.random((7, 4)) * rng.choice([1.0, 100.0])
    f[3] = 0.0  # a zero vector
    if seed % 2:
        f[5] = 0.0
        f[1] = -f[2]  # signed features: opposite directions give 2
    dm = cosine_dissimilarity(f)
    np.testing.assert_allclose(dm, _naive_dm(f), atol=1e-12)
    assert np.all(dm >= 0) and np.all(dm <= 2 + 1e-12)
    np.testing.assert_array_equal(dm, dm.T)
    with pytest.raises(ValueError, match="NaN"):
        cosine_dissimilarity(np.array([[1.0, np.nan], [1.0, 2.0]]))


def test_algorithm1_hand_computed_4x4():
    # S = (1,0), (0,1), (1,1), (2,0): DM by hand
    s = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    c = 1 - 1 / np.sqrt(2)
    expected = np.array([[0, 1, c, 0], [1, 0, c, 1], [c, c, 0, c], [0, 1, c, 0]])
    dm = cosine_dissimilarity(s)
    np.testing.assert_allclose(dm, expected, atol=1e-12)
    spliced, pair, totals = algorithm1(dm)
    # the first maximum pair is (0, 1); object 1 has the larger total (2 + c vs 1 + c)
    assert pair == (0, 1) and spliced == 1
    np.testing.assert_allclose(totals, [1 + c, 2 + c, 3 * c, 1 + c])
    dm2 = np.array([[0, .1, .2, .3], [.1, 0, .4, .5], [.2, .4, 0, .6], [.3, .5, .6, 0]])
    assert algorithm1(dm2)[:2] == (3, (2, 3))
    with pytest.raises(ValueError):
        algorithm1(np.zeros((1, 1)))


def test_paper_form_blind_to_scale_standardized_form_is_not():
    host = np.array([3.0, 2.0, 3.0, 2.0])
    feats = np.array([host, host * 1.02, host * 0.98, host * 1.01, host * 2.0])  # object 4: twice as noisy
    dm_paper = cosine_dissimilarity(feats)
    assert np.max(dm_paper) < 1e-12  # cosine cannot see a pure scale difference
    z = standardize_features(np.log(feats))
    dm_std = cosine_dissimilarity(z)
    spliced, _, totals = algorithm1(dm_std)
    assert spliced == 4 and totals[4] > 2 * np.sort(totals)[-2]


def test_standardize_floor_and_reference():
    x = np.log(np.array([[2.0], [2.0], [2.0]]))
    z = standardize_features(x)
    np.testing.assert_array_equal(z, [[1, 0], [1, 0], [1, 0]])
    z2 = standardize_features(np.log([[2.0], [4.0]]), reference=np.log([2.0]))
    np.testing.assert_allclose(z2[:, 1], [0.0, np.log(2) / 0.1])


def test_region_sums_match_naive(rng):
    h, w = 23, 31
    labels = rng.integers(1, 5, (h, w)).astype(np.int32)
    labels[:3, :3] = 0
    n = 4
    boxes = []
    for k in range(1, n + 1):
        rr, cc = np.nonzero(labels == k)
        boxes.append((rr.min(), cc.min(), rr.max() + 1, cc.max() + 1))
    boxes = np.array(boxes)
    v1, v2 = rng.random((h, w)), rng.random((h, w))
    fg, bg = region_sums([v1, v2], labels, boxes)
    for k in range(1, n + 1):
        r0, c0, r1, c1 = boxes[k - 1]
        box = np.zeros((h, w), bool)
        box[r0:r1, c0:c1] = True
        for j, v in enumerate((v1, v2)):
            assert fg[k - 1, j] == pytest.approx(v[labels == k].sum())
            assert bg[k - 1, j] == pytest.approx(v[box & (labels != k)].sum())


def test_region_sums_pixel_counts_and_summed_area_table_bit_for_bit(rng):
    """None = exact pixel counts; value sums are the very float64 values of bincount and cumsum tables."""
    h, w = 41, 37
    labels = rng.integers(0, 7, (h, w)).astype(np.int32)
    n = 6
    boxes = np.array([(r.min(), c.min(), r.max() + 1, c.max() + 1)
                      for r, c in (np.nonzero(labels == k) for k in range(1, n + 1))])
    boxes[2] = (0, 0, h, w)  # a box touching every border
    v32 = (rng.random((h, w)) * 255).astype(np.float32)
    v64 = rng.normal(0, 1e3, (h, w))
    fg, bg = region_sums([None, v32, v64], labels, boxes)
    for k, v in enumerate((np.ones((h, w)), v32.astype(np.float64), v64)):
        ref_fg = np.bincount(labels.ravel(), weights=v.ravel(), minlength=n + 1)[1:]
        sat = np.zeros((h + 1, w + 1))
        sat[1:, 1:] = np.cumsum(np.cumsum(v, axis=0), axis=1)
        r0, c0, r1, c1 = boxes.T
        ref_bg = sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0] - ref_fg
        np.testing.assert_array_equal(fg[:, k], ref_fg)
        np.testing.assert_array_equal(bg[:, k], ref_bg)
    assert bg[2, 0] == h * w - np.count_nonzero(labels == 3)
