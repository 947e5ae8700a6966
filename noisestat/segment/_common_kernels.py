"""Numba kernels of the segmentation merge step (:mod:`noisestat.segment._common`).

Private module; callers pass C-contiguous arrays.

* :func:`haar_noise_sums` gives the per-region sums of ``noise_stats`` for
  the Haar wavelet in one serial pass without full-size float64 arrays. It
  repeats the numpy arithmetic operation by operation (compiled without
  fast-math): per channel the float64 Haar HH ``g0 * (g0 a + g1 c) + g1 * (g0
  b + g1 d)`` (rows first, as ``filter_down``), the channel mean of the
  squares ``((e0 + e1) + e2) / C``, the scale factor, then the sums in raster
  order of the pixels as ``np.bincount`` adds them; pixels of an odd last row
  or column add 0.
* :func:`take2d` is ``small[ri][:, ci]`` for int32 labels.
* :func:`paint` is ``table[labels]`` (one value per label painted on a label
  image), one parallel pass over the rows; out-of-range labels are counted
  per row, not read.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import jit, pjit, register_warmup

__all__ = ["haar_noise_sums", "take2d", "paint"]


@jit(fastmath=False)
def haar_noise_sums(px, labels, g0, g1, scale2, m):
    """(sum of E over each label's pixels, pixel count) for labels 0..m-1; px (H, W, C) float32."""
    h, w, nc = px.shape
    bh, bw = h // 2, w // 2
    s = np.zeros(m)
    cnt = np.zeros(m)
    e = np.zeros(bw)
    for y in range(h):
        by = y // 2
        if y % 2 == 0:
            if by < bh:
                for bx in range(bw):
                    acc = 0.0
                    for c in range(nc):
                        a = np.float64(px[2 * by, 2 * bx, c])
                        b = np.float64(px[2 * by, 2 * bx + 1, c])
                        cc = np.float64(px[2 * by + 1, 2 * bx, c])
                        d = np.float64(px[2 * by + 1, 2 * bx + 1, c])
                        t0 = g0 * a + g1 * cc
                        t1 = g0 * b + g1 * d
                        hh = g0 * t0 + g1 * t1
                        acc = hh * hh if c == 0 else acc + hh * hh
                    e[bx] = (acc / nc) * scale2
        for x in range(w):
            lab = labels[y, x]
            if by < bh and x // 2 < bw:
                s[lab] += e[x // 2]
            else:
                s[lab] += 0.0
            cnt[lab] += 1.0
    return s, cnt


@jit
def take2d(small, ri, ci):
    """out[y, x] = small[ri[y], ci[x]] (int32)."""
    out = np.empty((ri.size, ci.size), np.int32)
    for y in range(ri.size):
        row = small[ri[y]]
        for x in range(ci.size):
            out[y, x] = row[ci[x]]
    return out


@pjit
def paint(table, labels):  # pragma: no cover - compiled
    """(out, bad): ``out[y, x] = table[labels[y, x]]`` for 2-D ``labels``; ``bad[y]`` counts the labels of
    row ``y`` outside ``0 .. table.size - 1`` (their pixels are left unset)."""
    h, w = labels.shape
    n = table.size
    out = np.empty((h, w), table.dtype)
    bad = np.zeros(h, np.int64)
    for y in numba.prange(h):
        for x in range(w):
            k = labels[y, x]
            if k < 0 or k >= n:
                bad[y] += 1
            else:
                out[y, x] = table[k]
    return out, bad


@register_warmup
def _warmup() -> None:
    for tab in (np.zeros(2, np.float32), np.zeros(2, np.bool_)):
        for dt in (np.int32, np.int64):
            paint(tab, np.zeros((2, 2), dt))
    for c in (1, 3):
        haar_noise_sums(np.zeros((4, 5, c), np.float32), np.zeros((4, 5), np.int32), 0.5, -0.5, 1.0, 1)
    for dt in (np.int32, np.int64):
        take2d(np.zeros((2, 2), dt), np.zeros(3, np.intp), np.zeros(3, np.intp))
