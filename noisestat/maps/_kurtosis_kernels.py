"""Numba kernels of the kurtosis local noise map (Lyu, Pan & Zhang 2014).

Private module: the public wrapper (:mod:`noisestat.maps.kurtosis`) validates
its inputs; the kernels here only ever see C-contiguous float arrays.

Layout of :func:`kurtosis_stats`
--------------------------------
The image is cut into horizontal strips of ``strip`` rows (a constant chosen by
the caller, never the thread count, so results do not depend on the number of
threads). Each strip is processed by one thread:

* band responses ``R_k`` of the fz x fz DCT AC filters are computed one image
  row at a time (half-sample symmetric border: ``d c b a | a b c d``) into a
  ring buffer of ``2 br + 2`` rows;
* the window sums of ``R_k^m`` (m = 1..4) are box sums over a ``(2 br + 1)^2``
  window: per column, a running vertical sum (add the row entering the window,
  subtract the row leaving it), then a running horizontal sum along the row.
  This is the summed-area (integral image) principle applied separably and
  locally: memory stays O(W) per thread (O(HW) overall for the outputs), and
  the float64 sums stay of the size of one window's sums, whereas a global
  integral image of 4th powers (up to ~1e17 on a 3 MP image) would lose the
  digits that small-noise windows need;
* per pixel, the closed-form kurtosis-concentration fit over the bands.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from noisestat._numba import jit, pjit, register_warmup

__all__ = ["dct_matrix", "dct_bank", "kurtosis_stats", "box_preblur"]


def dct_matrix(fz: int) -> np.ndarray:
    """Orthonormal 1-D DCT-II matrix: row ``u`` is ``alpha_u cos(pi (2 i + 1) u / (2 fz))``."""
    i = np.arange(fz)
    c = np.empty((fz, fz))
    for u in range(fz):
        alpha = np.sqrt((1.0 if u == 0 else 2.0) / fz)
        c[u] = alpha * np.cos(np.pi * (2 * i + 1) * u / (2 * fz))
    return c


def dct_bank(fz: int) -> np.ndarray:
    """The ``fz*fz - 1`` AC basis images of the orthonormal fz x fz DCT-II.

    Returns
    -------
    ndarray, shape (fz*fz - 1, fz, fz), float64
        Band ``k`` (row-major over frequencies ``(u, v) != (0, 0)``) is
        ``c_u[i] * c_v[j]`` with ``c_u[i] = alpha_u cos(pi (2 i + 1) u / (2 fz))``,
        ``alpha_0 = sqrt(1/fz)``, ``alpha_u = sqrt(2/fz)``. Each band has unit
        norm and zero sum, so white noise of variance s^2 has variance s^2 in
        every band.
    """
    c = dct_matrix(fz)
    bank = np.einsum("ui,vj->uvij", c, c).reshape(fz * fz, fz, fz)
    return np.ascontiguousarray(bank[1:])


@jit
def _refl(t: int, n: int) -> int:
    """Half-sample symmetric index (numpy 'symmetric', OpenCV BORDER_REFLECT)."""
    p = 2 * n
    m = t % p
    if m < 0:
        m += p
    if m >= n:
        m = p - 1 - m
    return m


@jit
def _row_filter(img, r, cmat, xtap, out):
    """Horizontal pass: out[v, x] = sum_j cmat[v, j] * img[r, refl(x + j - o)]."""
    w = img.shape[1]
    fz = cmat.shape[0]
    for x in range(w):
        for v in range(fz):
            out[v, x] = 0.0
        for j in range(fz):
            p = np.float64(img[r, xtap[x + j]])
            for v in range(fz):
                out[v, x] += cmat[v, j] * p


@jit
def _get_trow(img, r, cmat, xtap, tcache, ttag):
    """Row-filtered image row ``r`` from a small direct-mapped cache."""
    slot = r % ttag.shape[0]
    if ttag[slot] != r:
        _row_filter(img, r, cmat, xtap, tcache[slot])
        ttag[slot] = r
    return slot


@jit
def _response_row(img, cmat, ry, br, xtap, tcache, ttag, out_row):
    """Band responses of image row ``ry`` -> out_row[br + x, k]; borders reflected (Wp, K)."""
    h, w = img.shape
    fz = cmat.shape[0]
    nk = fz * fz - 1
    o = (fz - 1) // 2
    slots = np.empty(fz, np.int64)
    for i in range(fz):
        slots[i] = _get_trow(img, _refl(ry + i - o, h), cmat, xtap, tcache, ttag)
    for x in range(w):
        xp = x + br
        for k in range(nk):
            out_row[xp, k] = 0.0
        for i in range(fz):
            trow = tcache[slots[i]]
            for u in range(fz):
                cu = cmat[u, i]
                for v in range(fz):
                    k = u * fz + v - 1
                    if k >= 0:
                        out_row[xp, k] += cu * trow[v, x]
    for t in range(br):
        src_l = br + _refl(t - br, w)
        src_r = br + _refl(w + t, w)
        for k in range(nk):
            out_row[t, k] = out_row[src_l, k]
            out_row[br + w + t, k] = out_row[src_r, k]


@jit
def _add_row(col, row):
    """col[xp, m, k] += row[xp, k] ** (m + 1)."""
    wp, nk = row.shape
    for xp in range(wp):
        for k in range(nk):
            r = row[xp, k]
            r2 = r * r
            col[xp, 0, k] += r
            col[xp, 1, k] += r2
            col[xp, 2, k] += r2 * r
            col[xp, 3, k] += r2 * r2


@jit
def _swap_rows(col, row_in, row_out):
    """col[xp, m, k] += row_in[xp, k] ** (m + 1) - row_out[xp, k] ** (m + 1)."""
    wp, nk = row_in.shape
    for xp in range(wp):
        for k in range(nk):
            r = row_in[xp, k]
            q = row_out[xp, k]
            r2 = r * r
            q2 = q * q
            col[xp, 0, k] += r - q
            col[xp, 1, k] += r2 - q2
            col[xp, 2, k] += r2 * r - q2 * q
            col[xp, 3, k] += r2 * r2 - q2 * q2


@jit
def _finish_row(col, win, inv_n, var_floor, acc, sqk_row, vfit_row, vharm_row):
    """Horizontal running window sums of ``col`` and the per-pixel closed-form fit."""
    nk = col.shape[2]
    w = sqk_row.shape[0]
    inv_k = 1.0 / nk
    for m in range(4):
        for k in range(nk):
            acc[m, k] = 0.0
    for xp in range(win):
        for m in range(4):
            for k in range(nk):
                acc[m, k] += col[xp, m, k]
    for x in range(w):
        if x > 0:
            for m in range(4):
                for k in range(nk):
                    acc[m, k] += col[x + win - 1, m, k] - col[x - 1, m, k]
        a = 0.0
        b = 0.0
        c = 0.0
        d = 0.0
        for k in range(nk):
            m1 = acc[0, k] * inv_n
            m2 = acc[1, k] * inv_n
            m3 = acc[2, k] * inv_n
            m4 = acc[3, k] * inv_n
            m1s = m1 * m1
            v = m2 - m1s
            flat = v <= var_floor
            if flat:
                v = var_floor
            iv = 1.0 / v
            mu4 = m4 - 4.0 * m1 * m3 + 6.0 * m1s * m2 - 3.0 * m1s * m1s
            kurt = mu4 * iv * iv - 3.0
            if flat or kurt < 0.0:
                kurt = 0.0
            sk = np.sqrt(kurt)
            a += sk
            b += iv
            c += iv * iv
            d += sk * iv
        a *= inv_k
        b *= inv_k
        c *= inv_k
        d *= inv_k
        den = c - b * b
        vharm_row[x] = 1.0 / b
        sq = np.nan
        vf = np.nan
        if den > 1e-9 * c:
            sq = (a * c - b * d) / den
            if sq > 0.0:
                vf = (1.0 - a / sq) / b
        sqk_row[x] = sq
        vfit_row[x] = vf


@pjit
def kurtosis_stats(img, cmat, br, strip, var_floor):
    """Per-pixel kurtosis-concentration fit over the DCT AC bands.

    Parameters
    ----------
    img : ndarray (H, W), float32 or float64, C-contiguous
    cmat : ndarray (fz, fz), float64
        1-D orthonormal DCT-II matrix (see :func:`dct_matrix`); the bands are
        the separable products ``cmat[u, i] * cmat[v, j]``, ``(u, v) != (0, 0)``.
    br : int
        Window radius; windows are (2 br + 1)^2 pixels.
    strip : int
        Rows per independent strip (fixed by the caller, never the thread count).
    var_floor : float
        Band variances at or below this count as flat: variance ``var_floor``,
        kurtosis 0.

    Returns
    -------
    sqrt_kappa : ndarray (H, W), float64
        ``(a c - b d) / (c - b^2)``; NaN where the fit is undefined
        (``c - b^2 <= 1e-9 c``: all band variances equal, e.g. a flat window).
    var_fit : ndarray (H, W), float64
        ``(1 - a / sqrt_kappa) / b``; NaN where ``sqrt_kappa`` is not > 0.
    var_harm : ndarray (H, W), float64
        ``1 / b`` (harmonic mean of the band variances), the fallback.
    """
    h, w = img.shape
    fz = cmat.shape[0]
    nk = fz * fz - 1
    o = (fz - 1) // 2
    win = 2 * br + 1
    inv_n = 1.0 / (win * win)
    wp = w + 2 * br
    nring = win + 1
    xtap = np.empty(w + fz - 1, np.int64)
    for t in range(w + fz - 1):
        xtap[t] = _refl(t - o, w)
    sqk = np.empty((h, w))
    vfit = np.empty((h, w))
    vharm = np.empty((h, w))
    nstrip = (h + strip - 1) // strip
    for s in prange(nstrip):
        y0 = s * strip
        y1 = min(h, y0 + strip)
        ring = np.empty((nring, wp, nk))
        col = np.zeros((wp, 4, nk))
        acc = np.empty((4, nk))
        tcache = np.empty((2 * fz + 2, fz, w))
        ttag = np.full(2 * fz + 2, -1, np.int64)
        # rows y0 - br .. y0 + br form the first window
        for yy in range(y0 - br, y0 + br + 1):
            slot = (yy - y0 + br) % nring
            _response_row(img, cmat, _refl(yy, h), br, xtap, tcache, ttag, ring[slot])
            _add_row(col, ring[slot])
        for y in range(y0, y1):
            if y > y0:
                slot_in = (y + br - y0 + br) % nring
                slot_out = (y - 1 - y0) % nring
                _response_row(img, cmat, _refl(y + br, h), br, xtap, tcache, ttag, ring[slot_in])
                _swap_rows(col, ring[slot_in], ring[slot_out])
            _finish_row(col, win, inv_n, var_floor, acc, sqk[y], vfit[y], vharm[y])
    return sqk, vfit, vharm


@jit
def box_preblur(img, size):
    """Mean over the ``size x size`` box covering rows/cols ``t - (size-1)//2 .. t + size//2``.

    Half-sample symmetric border; MKLab's pre-blur (compatibility only).
    """
    h, w = img.shape
    o = (size - 1) // 2
    tmp = np.empty((h, w))
    out = np.empty((h, w), img.dtype)
    for y in range(h):
        for x in range(w):
            s = 0.0
            for j in range(size):
                s += img[y, _refl(x + j - o, w)]
            tmp[y, x] = s
    inv = 1.0 / (size * size)
    for y in range(h):
        for x in range(w):
            s = 0.0
            for i in range(size):
                s += tmp[_refl(y + i - o, h), x]
            out[y, x] = s * inv
    return out


@register_warmup
def _warmup() -> None:
    img = np.random.default_rng(0).normal(128.0, 5.0, (24, 20)).astype(np.float32)
    kurtosis_stats(img, dct_matrix(4), 2, 8, 1e-6)
    box_preblur(img, 4)
