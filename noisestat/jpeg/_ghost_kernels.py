"""Numba kernels of the JPEG ghost map (:mod:`noisestat.jpeg.ghost`).

Private module; callers pass C-contiguous arrays.

* :func:`block_sq_diff` is the gray path of ``_block_sq_diff``: the 8x8 block
  mean of ``(src - dec)^2`` for uint8 planes. The squares and their block sum
  are integers below 2^24, so the float32 result ``sum / 64`` is exactly what
  OpenCV's ``absdiff``, ``multiply`` (float32) and ``resize`` (``INTER_AREA``,
  factor 8) give.
* :func:`bilinear_rows_cols` is ``_to_pixels``'s separable interpolation with
  numpy's float32 operations in numpy's order (compiled without fast-math).
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import jit, pjit, register_warmup

__all__ = ["block_sq_diff", "bilinear_rows_cols"]


@jit(fastmath=False)
def block_sq_diff(src, dec, hb, wb):  # pragma: no cover - compiled
    """(hb, wb) float32: mean over each 8x8 block of ``(src - dec)^2``; src, dec (H, W) uint8."""
    out = np.empty((hb, wb), np.float32)
    for a in range(hb):
        for b in range(wb):
            s = 0
            for i in range(8 * a, 8 * a + 8):
                for j in range(8 * b, 8 * b + 8):
                    d = np.int64(src[i, j]) - np.int64(dec[i, j])
                    s += d * d
            out[a, b] = np.float32(s) / np.float32(64.0)
    return out


@pjit(fastmath=False)
def bilinear_rows_cols(g, r0, r1, fr, c0, c1, fc):  # pragma: no cover - compiled
    """``rows = g[r0] (1 - fr) + g[r1] fr`` then ``rows[:, c0] (1 - fc) + rows[:, c1] fc``, float32."""
    h, w = r0.size, c0.size
    out = np.empty((h, w), np.float32)
    one = np.float32(1.0)
    for y in numba.prange(h):
        a, b = r0[y], r1[y]
        wa, wb = one - fr[y], fr[y]
        for x in range(w):
            ca, cb = c0[x], c1[x]
            left = g[a, ca] * wa + g[b, ca] * wb
            right = g[a, cb] * wa + g[b, cb] * wb
            out[y, x] = left * (one - fc[x]) + right * fc[x]
    return out


@register_warmup
def _warmup() -> None:
    z8 = np.zeros((8, 8), np.uint8)
    block_sq_diff(z8, z8, 1, 1)
    i = np.zeros(2, np.int64)
    f = np.zeros(2, np.float32)
    bilinear_rows_cols(np.zeros((1, 1), np.float32), i, i, f, i, i, f)
