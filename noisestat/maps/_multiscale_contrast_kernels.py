"""Numba kernel of the multi-scale contrast map: box means, squared differences and window energies fused.

Private module: the public wrapper (:mod:`noisestat.maps.multiscale_contrast`)
validates its inputs; the kernel sees only C-contiguous float32 pixels of
shape (H, W, C).

Layout of :func:`contrast_strips`
---------------------------------
The image is cut into horizontal strips of ``STRIP`` output rows (a constant,
never the thread count, so results do not depend on the number of threads);
``prange`` hands whole strips to the threads, and each strip writes only its
own output rows. Within a strip, with ``R = window // 2``:

* for each of its ``STRIP + 2 R`` rows (halo rows reflected, half-sample
  symmetric as OpenCV's ``BORDER_REFLECT``), the squared differences
  ``sum_c (I_c - P_s I_c)**2`` for the pooling sides 3, 7, 11 and the global
  mean go to a strip-local float64 buffer; each box mean is a vertical sum of
  the nested windows (3 within 7 within 11) followed by a horizontal sum;
* each output row then sums ``window`` buffer rows vertically and ``window``
  columns horizontally, giving the energies ``E_s``, and writes either the
  contrasts ``sqrt(E_s)`` or the log ratios ``0.5 log(E_s / E_s')``.

Memory is O(STRIP W) per thread: no full-size temporaries.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup
from ..blocks.tiling import reflect

__all__ = ["STRIP", "contrast_strips"]

#: output rows per independent strip (fixed: results never depend on the thread count)
STRIP = 128


@jit
def _pad(src, r, dst):  # pragma: no cover - compiled
    """dst[r + x] = src[x], reflected into the ``r`` samples on either side."""
    w = src.shape[0]
    for x in range(w):
        dst[r + x] = src[x]
    for t in range(r):
        dst[t] = src[reflect(t - r, w)]
        dst[r + w + t] = src[reflect(w + t, w)]


@jit
def _energy_row(planes, yy, means, vs, pad, csum, erow):  # pragma: no cover - compiled
    """erow[k, x] = sum_c (I_c[yy, x] - pool_k)**2 for pooling sides 3, 7, 11 and the global mean.

    Vertical sums of the nested windows, then horizontal sums as differences of
    the running sum of the reflected row (exact for integer-valued pixels).
    """
    nc, h, w = planes.shape
    for k in range(4):
        for x in range(w):
            erow[k, x] = 0.0
    for c in range(nc):
        pl = planes[c]
        row = pl[yy]
        for x in range(w):
            vs[x] = row[x]
        inner = 0
        for k in range(3):
            outer = 2 * k + 1  # half-sides 1, 3, 5: sides 3, 7, 11 (POOL_SIZES)
            for i in range(inner + 1, outer + 1):
                ra = pl[reflect(yy - i, h)]
                rb = pl[reflect(yy + i, h)]
                for x in range(w):
                    vs[x] += ra[x] + rb[x]
            inner = outer
            _pad(vs, outer, pad)
            acc = 0.0
            csum[0] = 0.0
            for t in range(w + 2 * outer):
                acc += pad[t]
                csum[t + 1] = acc
            side = 2 * outer + 1
            inv = 1.0 / (side * side)
            for x in range(w):
                dv = row[x] - (csum[x + side] - csum[x]) * inv
                erow[k, x] += dv * dv
        g = means[c]
        for x in range(w):
            dv = row[x] - g
            erow[3, x] += dv * dv


@jit(error_model="numpy")
def _strip(planes, means, window, eps, y0, y1, profile, out_c, out_r):  # pragma: no cover - compiled
    """Output rows ``y0 .. y1 - 1``: energies of the rows ``y0 - R .. y1 - 1 + R`` into a ring, then window sums."""
    nc, h, w = planes.shape
    r = window // 2
    inv = 1.0 / (window * window * nc)
    eps2 = eps * eps
    ring = np.empty((window, 4, w))
    vs = np.empty(w)
    pad = np.empty(w + 2 * max(r, 5))
    csum = np.empty(w + 2 * max(r, 5) + 1)
    hs = np.empty(w)
    en = np.empty((4, w))
    for t in range(y1 - y0 + 2 * r):
        _energy_row(planes, reflect(y0 - r + t, h), means, vs, pad, csum, ring[t % window])
        if t < window - 1:
            continue
        y = y0 + t - (window - 1)
        for k in range(4):
            for x in range(w):
                vs[x] = 0.0
            for i in range(window):
                src = ring[i, k]
                for x in range(w):
                    vs[x] += src[x]
            _pad(vs, r, pad)
            for x in range(w):
                hs[x] = 0.0
            for j in range(window):
                for x in range(w):
                    hs[x] += pad[x + j]
            for x in range(w):
                en[k, x] = hs[x] * inv + eps2
        if profile:
            for k in range(4):
                for x in range(w):
                    out_c[k, y, x] = math.sqrt(en[k, x])
        else:
            for k in range(3):
                for x in range(w):
                    out_r[k, y, x] = 0.5 * math.log(en[k, x] / en[k + 1, x])


@pjit
def contrast_strips(planes, means, window, eps, profile, out_c, out_r):  # pragma: no cover - compiled
    """Contrast energies of every pixel, strip by strip (see module doc).

    Parameters
    ----------
    planes : ndarray (C, H, W), float32, C-contiguous
        The image, one plane per channel.
    means : ndarray (C,), float64
        Global mean of each channel.
    window : int
        Odd side of the energy window.
    eps : float
        Added in quadrature to every contrast.
    profile : bool
        True: write ``out_c[k] = sqrt(E_k)`` (shape (4, H, W), float64);
        False: write ``out_r[k] = 0.5 log(E_k / E_{k+1})`` (shape (3, H, W), float32).
    """
    h = planes.shape[1]
    nstrip = (h + STRIP - 1) // STRIP
    for s in prange(nstrip):
        _strip(planes, means, window, eps, s * STRIP, min(h, s * STRIP + STRIP), profile, out_c, out_r)


@register_warmup
def _warmup() -> None:
    px = np.random.default_rng(0).normal(128.0, 5.0, (3, 20, 17)).astype(np.float32)
    means = px.reshape(3, -1).mean(axis=1, dtype=np.float64)
    for profile in (True, False):
        contrast_strips(px, means, 5, 1e-3, profile, np.empty((4, 20, 17)), np.empty((3, 20, 17), np.float32))
