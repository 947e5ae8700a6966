"""Numba kernel of the median-filter residual map (:mod:`noisestat.maps.median_residual`).

Private module: the public wrapper validates its inputs; the kernel only
ever sees read-only C-contiguous float32 pixels.

* :func:`channel_mean_residual` -- ``|I_c - median3x3(I_c)|`` of every
  channel and their mean, in one pass without full-size temporaries. The
  3x3 median replicates border pixels and is exact (min/max only: the
  median of the column maxima, medians and minima); the residual is the
  float32 difference, as OpenCV's ``medianBlur`` and ``absdiff``. The
  channel mean repeats the float32 arithmetic of ``cv2.transform`` with the
  matrix ``[1/3, 1/3, 1/3]`` as measured on this OpenCV build (5.1, x86-64:
  ``fma(r_2, m, fma(r_0, m, m * r_1))``, ``m = float32(1/3)``; checked by the
  tests against ``cv2.transform``). The fused multiply-adds are computed in
  float64 (the float32 products are exact there) and rounded once more to
  float32.

The median is selected with the package's fast-math flags (min and max
are exact; the sign of a zero median cannot change ``|I - median|``), the
channel mean without them (a separate function, no contraction).

Strips of ``STRIP`` rows are independent (one per iteration), so results do not
depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup

__all__ = ["channel_mean_residual", "box_mean", "BOX_STRIP", "STRIP"]


@jit(inline="always")
def _lo(a, b):
    """min(a, b) as a select (x86 minss; a NaN-free input)."""
    return a if a < b else b


@jit(inline="always")
def _hi(a, b):
    """max(a, b) as a select."""
    return a if a > b else b


@jit(fastmath=False)
def _channel_mean_row(res, out, y):
    """out[y] = the float32 channel mean of the residual rows ``res`` (C, W), as cv2.transform (no contraction)."""
    m = np.float32(1.0 / 3.0)
    md = np.float64(m)
    if res.shape[0] == 1:
        for x in range(res.shape[1]):
            out[y, x] = res[0, x]
        return
    for x in range(res.shape[1]):
        s1 = np.float32(m * res[1, x])
        s2 = np.float32(np.float64(res[0, x]) * md + np.float64(s1))
        out[y, x] = np.float32(np.float64(res[2, x]) * md + np.float64(s2))


#: output rows per parallel iteration (fixed: the split never depends on the number of threads)
STRIP = 16


@pjit
def channel_mean_residual(px, out):
    """out[y, x] = mean over channels of ``|px[y, x, c] - median3x3(px[:, :, c])[y, x]|`` (float32).

    Parameters
    ----------
    px : ndarray, shape (H, W, C), float32, C-contiguous (C = 1 or 3)
    out : ndarray, shape (H, W), float32
    """
    h, w, nc = px.shape
    nstrips = (h + STRIP - 1) // STRIP
    for s in prange(nstrips):
        y0 = s * STRIP
        y1 = min(y0 + STRIP, h)
        # the strip's rows and one replicated row either side, channels apart (contiguous rows vectorise)
        plan = np.empty((y1 - y0 + 2, nc, w), np.float32)
        for i in range(y1 - y0 + 2):
            r = min(max(y0 - 1 + i, 0), h - 1)
            if nc == 3:  # three unit-stride streams out of one interleaved row (vectorises)
                p0 = plan[i, 0]
                p1 = plan[i, 1]
                p2 = plan[i, 2]
                src = px[r]
                for x in range(w):
                    p0[x] = src[x, 0]
                    p1[x] = src[x, 1]
                    p2[x] = src[x, 2]
            else:
                for x in range(w):
                    plan[i, 0, x] = px[r, x, 0]
        lo = np.empty(w + 2, np.float32)
        mi = np.empty(w + 2, np.float32)
        hi = np.empty(w + 2, np.float32)
        res = np.empty((nc, w), np.float32)
        for y in range(y0, y1):
            i = y - y0 + 1
            for c in range(nc):
                ra = plan[i - 1, c]
                rb = plan[i, c]
                rd = plan[i + 1, c]
                for x in range(w):  # the sorted column triple of rows y - 1, y, y + 1 at column x
                    a = ra[x]
                    b = rb[x]
                    d = rd[x]
                    t0 = _lo(a, b)
                    t1 = _hi(a, b)
                    u = _lo(t1, d)
                    hi[x + 1] = _hi(t1, d)
                    lo[x + 1] = _lo(t0, u)
                    mi[x + 1] = _hi(t0, u)
                lo[0] = lo[1]
                mi[0] = mi[1]
                hi[0] = hi[1]
                lo[w + 1] = lo[w]
                mi[w + 1] = mi[w]
                hi[w + 1] = hi[w]
                rc = res[c]
                for x in range(w):
                    # median of 9 = median(max of the minima, median of the medians, min of the maxima)
                    p = _hi(_hi(lo[x], lo[x + 1]), lo[x + 2])
                    q = _lo(_lo(hi[x], hi[x + 1]), hi[x + 2])
                    m0 = mi[x]
                    m1 = mi[x + 1]
                    m2 = mi[x + 2]
                    m = _hi(_lo(m0, m1), _lo(_hi(m0, m1), m2))
                    med = _hi(_lo(p, m), _lo(_hi(p, m), q))
                    rc[x] = abs(rb[x] - med)
            _channel_mean_row(res, out, y)


#: output rows per parallel iteration of :func:`box_mean` (fixed, as ``STRIP``)
BOX_STRIP = 64


@pjit(fastmath=False)
def box_mean(src, k, rows, cols, out):
    """out = the mean of ``src`` over ``k x k`` boxes with a reflected border, float32 (cv2.blur's values).

    ``out[y, x]`` averages rows ``rows[y : y + k]`` and columns ``cols[x : x
    + k]`` (``rows[t] = refl(t - k // 2)``, likewise ``cols``). Running sums
    in float64, restarted every ``BOX_STRIP`` rows, then ``sum * (1 / k^2)``
    rounded to float32, as OpenCV's box filter on float32 data computes
    (float64 sums and scale). For 8-bit data the residual sums are exact in
    float64, so the values are OpenCV's bit for bit whatever the order.

    Parameters
    ----------
    src : ndarray, shape (H, W), float32
    k : int
    rows, cols : ndarray of int64, shapes (H + k - 1,), (W + k - 1,)
    out : ndarray, shape (H, W), float32
    """
    h, w = src.shape
    scale = 1.0 / (k * k)
    nst = (h + BOX_STRIP - 1) // BOX_STRIP
    for s in prange(nst):
        y0 = s * BOX_STRIP
        y1 = min(y0 + BOX_STRIP, h)
        col = np.zeros(w)  # column sums over the box's rows, at every image column
        for t in range(y0, y0 + k):
            r = src[rows[t]]
            for x in range(w):
                col[x] += np.float64(r[x])
        for y in range(y0, y1):
            acc = 0.0
            for t in range(k):
                acc += col[cols[t]]
            out[y, 0] = acc * scale
            for x in range(1, w):
                acc += col[cols[x + k - 1]] - col[cols[x - 1]]
                out[y, x] = acc * scale
            if y + 1 < y1:
                ra = src[rows[y + k]]
                rm = src[rows[y]]
                for x in range(w):
                    col[x] += np.float64(ra[x]) - np.float64(rm[x])


@register_warmup
def _warmup() -> None:
    for nc in (1, 3):
        px = np.zeros((4, 5, nc), np.float32)
        px.setflags(write=False)  # LoadedImage pixels are read-only
        res = np.empty((4, 5), np.float32)
        channel_mean_residual(px, res)
    t = np.arange(-1, 6, dtype=np.int64)
    box_mean(res, 3, np.abs(t[:6]), np.abs(t[:7]) % 5, np.empty((4, 5), np.float32))
