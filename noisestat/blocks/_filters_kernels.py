"""Numba kernels of :mod:`noisestat.blocks.filters` (private: the wrapper validates the inputs)."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import pjit, register_warmup

__all__ = ["median_window"]


@pjit
def median_window(a, size, nearest, cval, pairs, out):  # pragma: no cover - compiled
    """``out[i, j]`` = median of the ``size x size`` window of ``a`` centred on ``(i, j)``.

    Beyond the array: the nearest element (``nearest``) or ``cval``. ``size``
    is odd; ``pairs`` (m, 2) is a comparator network whose output position
    ``size**2 // 2`` holds the middle element of the sorted window
    (:func:`noisestat.blocks.filters.median_network`). One row of outputs per
    iteration: the windows of the row side by side, each comparator a
    branchless min/max across them (it vectorises).
    """
    h, w = a.shape
    r = size // 2
    n = size * size
    mid = n // 2
    for i in prange(h):
        buf = np.empty((n, w), np.float64)
        for t in range(n):
            ii = i + t // size - r
            dj = t % size - r
            row = buf[t]
            if nearest:
                src = a[min(max(ii, 0), h - 1)]
                for j in range(w):
                    row[j] = src[min(max(j + dj, 0), w - 1)]
            elif 0 <= ii < h:
                src = a[ii]
                for j in range(w):
                    jj = j + dj
                    row[j] = src[jj] if 0 <= jj < w else cval
            else:
                for j in range(w):
                    row[j] = cval
        for c in range(pairs.shape[0]):
            lo = buf[pairs[c, 0]]
            hi = buf[pairs[c, 1]]
            for j in range(w):
                x = lo[j]
                y = hi[j]
                lo[j] = min(x, y)
                hi[j] = max(x, y)
        for j in range(w):
            out[i, j] = buf[mid, j]


@register_warmup
def _warmup() -> None:
    a = np.arange(20.0).reshape(4, 5)
    pairs = np.array([[0, 4], [4, 8]], np.int64)  # any network compiles the kernel (its types, not its values)
    for nearest in (True, False):
        median_window(a, 3, nearest, -1.0, pairs, np.empty_like(a))
