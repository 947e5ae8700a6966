"""Numba kernels of :mod:`noisestat.blocks.filters` (private: the wrapper validates the inputs)."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import pjit, register_warmup

__all__ = ["median_window", "INSERTION_MAX"]

#: windows of at most this many values are sorted by insertion while they are gathered
INSERTION_MAX = 49


@pjit
def median_window(a, size, nearest, cval, out):  # pragma: no cover - compiled
    """``out[i, j]`` = median of the ``size x size`` window of ``a`` centred on ``(i, j)``.

    Beyond the array: the nearest element (``nearest``) or ``cval``. ``size``
    is odd; the median is the middle element of the sorted window (insertion
    sort up to :data:`INSERTION_MAX` values, else a full sort; one row of
    outputs per iteration).
    """
    h, w = a.shape
    r = size // 2
    n = size * size
    mid = n // 2
    small = n <= INSERTION_MAX
    for i in prange(h):
        buf = np.empty(n, np.float64)
        for j in range(w):
            k = 0
            for di in range(-r, r + 1):
                ii = i + di
                inside_row = 0 <= ii < h
                if nearest:
                    ii = min(max(ii, 0), h - 1)
                for dj in range(-r, r + 1):
                    jj = j + dj
                    if nearest:
                        v = a[ii, min(max(jj, 0), w - 1)]
                    elif inside_row and 0 <= jj < w:
                        v = a[ii, jj]
                    else:
                        v = cval
                    t = k
                    if small:  # insertion into the sorted prefix buf[:k]
                        while t > 0 and buf[t - 1] > v:
                            buf[t] = buf[t - 1]
                            t -= 1
                    buf[t] = v
                    k += 1
            if not small:
                buf.sort()
            out[i, j] = buf[mid]


@register_warmup
def _warmup() -> None:
    a = np.arange(20.0).reshape(4, 5)
    median_window(a, 3, True, 0.0, np.empty_like(a))
    median_window(a, 3, False, -1.0, np.empty_like(a))
    median_window(a, 9, True, 0.0, np.empty_like(a))
