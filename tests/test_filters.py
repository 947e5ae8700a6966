"""blocks.filters.median_filter against scipy.ndimage.median_filter (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from noisestat.blocks.filters import median_filter


@pytest.mark.parametrize("shape", [(1, 1), (2, 7), (9, 4), (31, 23), (64, 80)])
@pytest.mark.parametrize("size", [1, 3, 5, 7, 9, 31])
@pytest.mark.parametrize("mode,cval", [("nearest", 0.0), ("constant", -6.9), ("constant", 3.0)])
def test_median_filter_equals_scipy(shape, size, mode, cval):
    rng = np.random.default_rng(sum(shape) * 10 + size)
    a = rng.normal(0, 2, shape)
    a[rng.random(shape) < 0.3] = 1.0  # ties
    ref = ndimage.median_filter(a, size=size, mode=mode, cval=cval)
    out = median_filter(a, size=size, mode=mode, cval=cval)
    assert out.dtype == np.float64 and np.array_equal(out, ref)


def test_median_filter_keeps_float32_and_the_input():
    a = np.random.default_rng(0).normal(0, 1, (20, 30)).astype(np.float32)
    before = a.copy()
    out = median_filter(a, size=5)
    assert out.dtype == np.float32 and np.array_equal(out, ndimage.median_filter(a, size=5, mode="nearest"))
    assert np.array_equal(a, before)
    # a known answer: one outlier vanishes, a 3x3 block of ones survives its own centre
    b = np.zeros((7, 7))
    b[0, 0] = 100.0
    b[2:5, 2:5] = 1.0
    m = median_filter(b, size=3, mode="constant")
    assert m[0, 0] == 0.0 and m[3, 3] == 1.0 and m[2, 2] == 0.0


@pytest.mark.parametrize("kw,match", [
    ({"size": 4}, "must be odd"), ({"size": 0}, "too small"), ({"size": 3, "mode": "wrap"}, "expected one of"),
])
def test_median_filter_refuses_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        median_filter(np.zeros((4, 4)), **kw)
    with pytest.raises(ValueError, match="NaN"):
        median_filter(np.array([[np.nan, 1.0]]), size=3)
    with pytest.raises(ValueError, match="2-D"):
        median_filter(np.zeros(5), size=3)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 12, 16, 25, 49, 81])
def test_median_network_puts_the_middle_element_in_the_middle(n):
    from noisestat.blocks.filters import median_network

    net = median_network(n)
    assert net.dtype == np.int64 and not net.flags.writeable
    assert np.all(net[:, 0] < net[:, 1]) and net.max(initial=0) < n
    rng = np.random.default_rng(n)
    # zero-one principle: a comparator network selects correctly iff it does so on every 0/1 input
    # (all of them up to n = 16; random ones, and random reals with ties, beyond)
    if n <= 16:
        cases = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
    else:
        cases = np.concatenate([rng.integers(0, 2, (4000, n)), rng.integers(0, 4, (500, n)),
                                rng.normal(size=(500, n))]).astype(float)
    v = cases.copy()
    for p, q in net:
        lo, hi = np.minimum(v[:, p], v[:, q]), np.maximum(v[:, p], v[:, q])
        v[:, p], v[:, q] = lo, hi
    ranked = np.sort(cases, axis=1)
    assert np.array_equal(v[:, n // 2], ranked[:, n // 2])
    assert np.array_equal(v[:, (n - 1) // 2], ranked[:, (n - 1) // 2])  # both middle ranks for even n
