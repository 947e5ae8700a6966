"""Numba kernels of the decisions layer (reliability map, calibration mappings).

Private module: the public functions of :mod:`noisestat.decisions` validate
and shape their inputs; the kernels here see C-contiguous arrays only.

Exactness. These kernels reproduce the numpy / OpenCV expressions they
replace operation by operation, in the same precision and order, and are
compiled without fast-math (no FMA contraction, no reassociation):

* :func:`reliability` fuses the luma conversion (float32, as
  :meth:`noisestat.types.LoadedImage.gray`), the 7x7 box means of the luma,
  its square and the clipped-pixel indicator (``cv2.boxFilter`` with
  ``BORDER_REFLECT``: float64 sums scaled by ``1 / window**2`` in float64,
  rounded to float32) and the float32 products of the reliability
  components. The window sums are kept as running column sums over a strip
  of rows (O(W) memory per strip): for 8-bit data every sum is exact in
  float64 (the luma's square is a float32 with at most 52 significant bits
  between the largest sum and the smallest non-zero term), so the order of
  summation does not change a bit and the result equals OpenCV's.
* :func:`sigmoid_logit` is ``sigmoid(a * logit(clip(u, eps, 1 - eps)) + b + k)``
  in float64 per pixel, rounded to float32 once at the end.

Strips are a fixed number of rows (never the thread count), and each output
pixel depends only on its own window, so results do not depend on threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._numba import jit, pjit, register_warmup

__all__ = ["reliability", "sigmoid_logit"]

#: rows per parallel strip
STRIP = 64


@jit(inline="always", fastmath=False)
def _refl(i, n):
    """OpenCV BORDER_REFLECT index (``fedcba|abcdefgh|hgfedcb``)."""
    while i < 0 or i >= n:
        if i < 0:
            i = -i - 1
        else:
            i = 2 * n - i - 1
    return i


@jit(inline="always", fastmath=False)
def _add_row(px, r, top, sign, cg, cgg, ch):
    """Column sums += sign * (luma, luma^2, clipped) of image row ``r``."""
    w = px.shape[1]
    c = px.shape[2]
    lo = np.float32(0.5)
    hi = np.float32(top - 0.5)
    for x in range(w):
        if c == 1:
            g = px[r, x, 0]
            hit = g <= lo or g >= hi
        else:
            p0 = px[r, x, 0]
            p1 = px[r, x, 1]
            p2 = px[r, x, 2]
            g = np.float32(np.float32(np.float32(0.299) * p0) + np.float32(np.float32(0.587) * p1))
            g = np.float32(g + np.float32(np.float32(0.114) * p2))
            hit = p0 <= lo or p0 >= hi or p1 <= lo or p1 >= hi or p2 <= lo or p2 >= hi
        gg = np.float32(g * g)
        cg[x] += sign * np.float64(g)
        cgg[x] += sign * np.float64(gg)
        if hit:
            ch[x] += sign


@pjit(fastmath=False)
def reliability(px, top, window, flat_sigma, tex_sigma, use_flat, use_tex, out):
    """out[y, x] = clipping * flatness (* texture) of the (H, W, C) float32 pixels, float32."""
    h, w = px.shape[0], px.shape[1]
    rad = window // 2
    scale = 1.0 / (window * window)
    fs2 = np.float32(flat_sigma) * np.float32(flat_sigma)
    ts2 = np.float32(tex_sigma) * np.float32(tex_sigma)
    n_strips = (h + STRIP - 1) // STRIP
    for s in numba.prange(n_strips):
        y0 = s * STRIP
        y1 = min(h, y0 + STRIP)
        cg = np.zeros(w)
        cgg = np.zeros(w)
        ch = np.zeros(w)
        pg = np.zeros(w + 2 * rad)
        pgg = np.zeros(w + 2 * rad)
        ph = np.zeros(w + 2 * rad)
        for r in range(y0 - rad, y0 + rad + 1):
            _add_row(px, _refl(r, h), top, 1.0, cg, cgg, ch)
        for y in range(y0, y1):
            if y > y0:
                _add_row(px, _refl(y + rad, h), top, 1.0, cg, cgg, ch)
                _add_row(px, _refl(y - rad - 1, h), top, -1.0, cg, cgg, ch)
            for t in range(w + 2 * rad):
                jj = _refl(t - rad, w)
                pg[t] = cg[jj]
                pgg[t] = cgg[jj]
                ph[t] = ch[jj]
            sg = 0.0
            sgg = 0.0
            sh = 0.0
            for t in range(2 * rad):
                sg += pg[t]
                sgg += pgg[t]
                sh += ph[t]
            for x in range(w):
                # running window sums along the row (exact: see the module notes)
                sg += pg[x + 2 * rad]
                sgg += pgg[x + 2 * rad]
                sh += ph[x + 2 * rad]
                clip = np.float32(1.0) - np.float32(sh * scale)
                clip = min(max(clip, np.float32(0.0)), np.float32(1.0))
                rel = np.float32(1.0) * clip
                if use_flat or use_tex:
                    m = np.float32(sg * scale)
                    m2 = np.float32(sgg * scale)
                    d = np.float32(m2 - np.float32(m * m))
                    d = max(d, np.float32(0.0))
                    sd = np.float32(math.sqrt(d))
                    s2 = np.float32(sd * sd)
                    if use_flat:
                        rel = np.float32(rel * np.float32(s2 / np.float32(s2 + fs2)))
                    if use_tex:
                        rel = np.float32(rel * np.float32(ts2 / np.float32(s2 + ts2)))
                out[y, x] = min(max(rel, np.float32(0.0)), np.float32(1.0))
                sg -= pg[x]
                sgg -= pgg[x]
                sh -= ph[x]


@pjit(fastmath=False)
def sigmoid_logit(u, eps, a, b, k, out):
    """out = float32(1 / (1 + exp(-clip(a * logit(clip(u, eps, 1 - eps)) + b + k, -60, 60)))), 1-D."""
    n = u.size
    hi = 1.0 - eps
    for i in numba.prange(n):
        q = np.float64(u[i])
        if q != q:  # NaN stays NaN, as in numpy
            out[i] = np.float32(np.nan)
            continue
        q = min(max(q, eps), hi)
        t = a * math.log(q / (1.0 - q)) + b + k
        t = min(max(t, -60.0), 60.0)
        out[i] = np.float32(1.0 / (1.0 + math.exp(-t)))


@register_warmup
def _warmup() -> None:
    for c in (1, 3):
        px = np.zeros((9, 9, c), np.float32)
        reliability(px, 255.0, 7, 1.0, 24.0, True, True, np.empty((9, 9), np.float32))
    for dt in (np.float32, np.float64):
        sigmoid_logit(np.zeros(4, dt), 1e-7, 1.0, 0.0, 0.0, np.empty(4, np.float32))
