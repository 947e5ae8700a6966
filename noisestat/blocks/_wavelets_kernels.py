"""Numba kernel of the finest diagonal wavelet subband (:mod:`noisestat.blocks.wavelets`).

Private module; callers pass C-contiguous arrays.

:func:`diagonal_grid` is :func:`~noisestat.blocks.wavelets.diagonal_coefficients`
in one parallel pass over the output rows: per channel it repeats the numpy
arithmetic of ``filter_down(filter_down(x, g, 0), g, 1)`` operation by
operation (compiled without fast-math, float64, taps summed left to right,
rows first), so the coefficients are bitwise those of
:func:`~noisestat.blocks.wavelets.diagonal_subband`; each output row is
written by one thread, whatever the thread count.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import pjit, register_warmup

__all__ = ["diagonal_grid"]


@pjit(fastmath=False)
def diagonal_grid(px, g, off):
    """(H // 2, W // 2, C) float64: HH of channel c at [off + i, off + j, c], NaN elsewhere; px (H, W, C).

    Per output row, the row pass runs over whole image rows (channels
    interleaved, contiguous) one tap at a time, so it vectorises; every
    coefficient still sums its taps left to right, as numpy does.
    """
    h, w, nc = px.shape
    n = g.size
    oh, ow = h // 2, w // 2
    kh = min((h - n) // 2 + 1, oh - off)
    kw = min((w - n) // 2 + 1, ow - off)
    out = np.full((oh, ow, nc), np.nan)
    m = w * nc
    rows = px.reshape(h, m)
    for i in numba.prange(max(kh, 0)):
        y = np.empty(m)
        src = rows[2 * i]
        g0 = g[0]
        for t in range(m):
            y[t] = g0 * np.float64(src[t])
        for k in range(1, n):
            src = rows[2 * i + k]
            gk = g[k]
            for t in range(m):
                y[t] = y[t] + gk * np.float64(src[t])
        for j in range(max(kw, 0)):
            for c in range(nc):
                acc = g0 * y[2 * j * nc + c]
                for k in range(1, n):
                    acc = acc + g[k] * y[(2 * j + k) * nc + c]
                out[off + i, off + j, c] = acc
    return out


@register_warmup
def _warmup() -> None:
    for dt in (np.float32, np.float64):
        for c in (1, 3):
            diagonal_grid(np.zeros((8, 10, c), dt), np.array([0.5, -0.5]), 0)
