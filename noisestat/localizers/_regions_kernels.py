"""Kernel of :func:`noisestat.localizers._regions.region_sums`: one pass, O(W) memory.

Callers pass clean arrays: ``v`` (H, W) float32/float64 C-contiguous,
``labels`` (H, W) int32 C-contiguous with values 0..n, ``qrow``/``qcol``
(m,) int64 corner queries sorted by row, then column (rows 0..H, columns
0..W). Labels outside 0..n are counted in no foreground.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["fg_and_corners"]


@jit(fastmath=False)  # sequential float64 sums in numpy's order: bit-identical to bincount and cumsum
def fg_and_corners(v, labels, n, qrow, qcol):  # pragma: no cover - compiled
    """Per-label sums of ``v`` and the summed-area table ``S`` at the query corners.

    ``fg[k]`` = sum of ``v`` where ``labels == k`` (raster order, as
    ``np.bincount``); ``corner[q]`` = ``S[qrow[q], qcol[q]]`` with ``S[r, c]``
    = sum of ``v[:r, :c]``, computed as numpy's ``cumsum(cumsum(v, 0), 1)``
    (column sums down the rows, then a running sum along the row), but keeping
    only the current row of column sums instead of the whole table.
    """
    h, w = v.shape
    fg = np.zeros(n + 1, np.float64)
    colsum = np.zeros(w, np.float64)
    corner = np.zeros(qrow.shape[0], np.float64)
    q = 0
    m = qrow.shape[0]
    for r in range(h + 1):
        if q < m and qrow[q] == r:  # answer the corners on row r: S[r, c] = sum of colsum[:c]
            run = 0.0
            c = 0
            while q < m and qrow[q] == r:
                target = qcol[q]
                while c < target:
                    run += colsum[c]
                    c += 1
                corner[q] = run
                q += 1
        if r == h:
            break
        for c in range(w):
            x = np.float64(v[r, c])
            colsum[c] += x
            k = labels[r, c]
            if 0 <= k <= n:
                fg[k] += x
    return fg, corner


@register_warmup
def _warmup() -> None:
    labels = np.zeros((3, 4), np.int32)
    q = np.zeros(1, np.int64)
    for dtype in (np.float64, np.float32):
        fg_and_corners(np.ones((3, 4), dtype), labels, 0, q, q)
