"""Numba kernel of the non-aligned double-JPEG map: 8x8 DCT coefficients of every grid shift, binned.

Private module: :mod:`noisestat.jpeg.nadq` validates the inputs; the kernel
only sees C-contiguous float64 arrays.

:func:`shift_histograms` computes, at every pixel position ``(i, j)`` that is
the top-left corner of a full 8x8 block, the orthonormal DCT coefficients
``(u_k, v_k)`` of that block (separably: a row pass with the rows ``v_k`` of
the DCT matrix, then a column pass with the rows ``u_k``), and adds one count
to the histogram of the grid shift ``(i % 8, j % 8)``. The blocks of shift
``(r, c)`` are exactly those of ``block_dct(plane[r:, c:])``, so one pass over
the image gives the coefficient histograms of all 64 grids.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup
from ..blocks.dct import dct_matrix

__all__ = ["shift_histograms"]


@jit
def shift_histograms(plane, active, d, us, vs, lo, width, nbins):
    """Histograms ``(64, K, nbins)`` of the coefficients ``(us[k], vs[k])`` on every 8x8 grid shift.

    ``plane``: float64 (H, W); ``d``: the 8x8 DCT matrix; bin ``b`` holds the
    values in ``[lo + b width, lo + (b + 1) width)``; values outside the range
    are dropped; so are the blocks whose top-left ``(i, j)`` has ``active[i, j]`` False
    (``active``: bool (H - 7, W - 7)). Shift index ``8 r + c``.
    """
    h, w = plane.shape
    k = us.shape[0]
    hist = np.zeros((64, k, nbins), np.float64)
    if h < 8 or w < 8:
        return hist
    wo = w - 7
    # one row pass per distinct v
    slot = np.full(8, -1, np.int64)
    nv = 0
    for q in range(k):
        if slot[vs[q]] < 0:
            slot[vs[q]] = nv
            nv += 1
    rows = np.zeros((h, nv, wo), np.float64)
    for i in range(h):
        for v in range(8):
            p = slot[v]
            if p < 0:
                continue
            for j in range(wo):
                s = 0.0
                for t in range(8):
                    s += d[v, t] * plane[i, j + t]
                rows[i, p, j] = s
    inv = 1.0 / width
    for i in range(h - 7):
        r8 = (i % 8) * 8
        for q in range(k):
            u = us[q]
            p = slot[vs[q]]
            for j in range(wo):
                if not active[i, j]:
                    continue
                s = 0.0
                for t in range(8):
                    s += d[u, t] * rows[i + t, p, j]
                b = int(np.floor((s - lo) * inv))
                if 0 <= b < nbins:
                    hist[r8 + j % 8, q, b] += 1.0
    return hist


@register_warmup
def _warmup():
    us = np.zeros(1, np.int64)
    shift_histograms(np.zeros((9, 9)), np.ones((2, 2), np.bool_), np.ascontiguousarray(dct_matrix(8)), us, us, -8.0, 1.0, 16)
