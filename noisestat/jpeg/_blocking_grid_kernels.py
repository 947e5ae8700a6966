"""Numba kernels of the block artifact grid map (Li, Yuan & Yu 2009).

Private module: the public wrapper (:mod:`noisestat.jpeg.blocking_grid`)
validates its inputs; the kernels only see C-contiguous float64 arrays. Both
work along axis 1 (rows are independent), with half-sample symmetric borders
(numpy ``'symmetric'``, SciPy ``'reflect'``: ``d c b a | a b c d``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import pjit, register_warmup
from ..blocks.tiling import reflect

__all__ = ["running_median", "periodic_median"]


@pjit
def running_median(x, r):
    """``out[i, j] = median(x[i, refl(j - r .. j + r)])`` (window of ``2 r + 1``)."""
    h, w = x.shape
    k = 2 * r + 1
    out = np.empty((h, w))
    for i in prange(h):
        win = np.empty(k)
        # the sorted window of j = 0
        for t in range(k):
            win[t] = x[i, reflect(t - r, w)]
        win.sort()
        out[i, 0] = win[r]
        for j in range(1, w):
            old = x[i, reflect(j - r - 1, w)]
            new = x[i, reflect(j + r, w)]
            # remove one copy of `old`
            p = 0
            while win[p] != old:
                p += 1
            while p < k - 1:
                win[p] = win[p + 1]
                p += 1
            # insert `new` into win[0 .. k - 2]
            p = k - 1
            while p > 0 and win[p - 1] > new:
                win[p] = win[p - 1]
                p -= 1
            win[p] = new
            out[i, j] = win[r]
    return out


@pjit
def periodic_median(x, step, r):
    """``out[i, j] = median(x[i, refl(j + step t)] for t = -r .. r)``."""
    h, w = x.shape
    k = 2 * r + 1
    out = np.empty((h, w))
    reach = step * r
    for i in prange(h):
        win = np.empty(k)
        for j in range(w):
            inside = j >= reach and j + reach < w
            for t in range(k):
                q = j + step * (t - r)
                v = x[i, q] if inside else x[i, reflect(q, w)]
                p = t
                while p > 0 and win[p - 1] > v:
                    win[p] = win[p - 1]
                    p -= 1
                win[p] = v
            out[i, j] = win[r]
    return out


@register_warmup
def _warmup() -> None:
    z = np.zeros((2, 5))
    running_median(z, 1)
    periodic_median(z, 2, 1)
