"""Numba kernels of the kurtosis local noise map (Lyu, Pan & Zhang 2014).

Private module: the public wrapper (:mod:`noisestat.maps.kurtosis`) validates
its inputs; the kernels here only ever see C-contiguous float arrays.

Layout of :func:`kurtosis_stats`
--------------------------------
The image is cut into horizontal strips of ``strip`` rows (a constant chosen by
the caller, never the thread count, so results do not depend on the number of
threads). Strips are handed to worker threads, each running the serial,
GIL-free kernel :func:`_strips` (cached on disk: no parallel kernel to compile
in every new process). Within a strip:

* band responses ``R_k`` of the fz x fz DCT AC filters are computed separably
  (a row pass per image row, cached; then a column pass) one output row at a
  time (half-sample symmetric border: ``d c b a | a b c d``) into a ring
  buffer of ``2 br + 2`` rows;
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

import math

import numba
import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup
from ..blocks.dct import dct_matrix
from ..blocks.tiling import reflect

__all__ = ["kurtosis_stats", "box_preblur", "valid_sqrt_kappa", "fallback_rule"]


@jit
def _row_filter(img, r, cmat, xtap, prow, out):
    """Horizontal pass: out[v, x] = sum_j cmat[v, j] * img[r, refl(x + j - o)]."""
    w = img.shape[1]
    fz = cmat.shape[0]
    for t in range(w + fz - 1):
        prow[t] = img[r, xtap[t]]
    for v in range(fz):
        o = out[v]
        for x in range(w):
            o[x] = 0.0
        for j in range(fz):
            cj = cmat[v, j]
            for x in range(w):
                o[x] += cj * prow[x + j]


@jit
def _response_row(img, cmat, ry, br, xtap, prow, tcache, ttag, tmp, out_row):
    """Band responses of image row ``ry`` -> out_row[br + x, k], borders reflected; (Wp, Kp).

    ``tcache``/``ttag``: a small direct-mapped cache of row-filtered image rows
    (each image row is filtered once per strip in the interior).
    """
    h, w = img.shape
    fz = cmat.shape[0]
    nk = fz * fz - 1
    o = (fz - 1) // 2
    ncache = ttag.shape[0]
    slots = np.empty(fz, np.int64)
    for i in range(fz):
        r = reflect(ry + i - o, h)
        slot = r % ncache
        if ttag[slot] != r:
            _row_filter(img, r, cmat, xtap, prow, tcache[slot])
            ttag[slot] = r
        slots[i] = slot
    for k in range(nk):
        u = (k + 1) // fz
        v = (k + 1) % fz
        dst = tmp[k]
        for x in range(w):
            dst[x] = 0.0
        for i in range(fz):
            cu = cmat[u, i]
            src = tcache[slots[i], v]
            for x in range(w):
                dst[x] += cu * src[x]
    for x in range(w):
        xp = x + br
        for k in range(nk):
            out_row[xp, k] = tmp[k, x]
    for t in range(br):
        src_l = br + reflect(t - br, w)
        src_r = br + reflect(w + t, w)
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


@jit(error_model="numpy")  # no ZeroDivisionError checks: they stop the band loop vectorising
def _window_fit(acc, inv_n, var_floor, wk, inv_k):
    """The closed-form fit of one window from its band moment sums ``acc`` (4, nkp):
    ``(sqrt(kurtosis) fit, noise variance fit, harmonic mean variance)`` (NaN where undefined)."""
    a = 0.0
    b = 0.0
    c = 0.0
    d = 0.0
    for k in range(acc.shape[1]):
        m1 = acc[0, k] * inv_n
        m2 = acc[1, k] * inv_n
        m3 = acc[2, k] * inv_n
        m4 = acc[3, k] * inv_n
        m1s = m1 * m1
        v = m2 - m1s
        flat = v <= var_floor
        iv = 1.0 / max(v, var_floor)
        mu4 = m4 - 4.0 * m1 * m3 + 6.0 * m1s * m2 - 3.0 * m1s * m1s
        kurt = max(mu4 * iv * iv - 3.0, 0.0)
        kurt = 0.0 if flat else kurt
        sk = np.sqrt(kurt) * wk[k]
        ivw = iv * wk[k]
        a += sk
        b += ivw
        c += ivw * iv
        d += sk * iv
    a *= inv_k
    b *= inv_k
    c *= inv_k
    d *= inv_k
    den = c - b * b
    sq = np.nan
    vf = np.nan
    if den > 1e-9 * c:
        sq = (a * c - b * d) / den
        if sq > 0.0:
            vf = (1.0 - a / sq) / b
    return sq, vf, 1.0 / b


@jit(error_model="numpy")  # no ZeroDivisionError checks: they stop the band loop vectorising
def _finish_row(col, win, inv_n, var_floor, wk, acc, sqk_row, vfit_row, vharm_row):
    """Horizontal running window sums of ``col`` and the per-pixel closed-form fit.

    ``wk[k]`` is 1 for a real band, 0 for the padding bands that make the band
    count a multiple of 4 (so the band loop vectorises).
    """
    nkp = col.shape[2]
    w = sqk_row.shape[0]
    inv_k = 1.0 / wk.sum()
    for m in range(4):
        for k in range(nkp):
            acc[m, k] = 0.0
    for xp in range(win):
        for m in range(4):
            for k in range(nkp):
                acc[m, k] += col[xp, m, k]
    for x in range(w):
        if x > 0:
            for m in range(4):
                for k in range(nkp):
                    acc[m, k] += col[x + win - 1, m, k] - col[x - 1, m, k]
        sqk_row[x], vfit_row[x], vharm_row[x] = _window_fit(acc, inv_n, var_floor, wk, inv_k)


@jit(inline="always")  # inlined into the per-pixel loop (numba IR): a call per pixel cost about a third of the kernel
def _swap_column(col, xp, row_in, row_out):
    """col[xp, m, k] += row_in[xp, k] ** (m + 1) - row_out[xp, k] ** (m + 1): the row entering the
    vertical window replaces the row leaving it, in column ``xp``."""
    nk = row_in.shape[1]
    for k in range(nk):
        r = row_in[xp, k]
        q = row_out[xp, k]
        r2 = r * r
        q2 = q * q
        col[xp, 0, k] += r - q
        col[xp, 1, k] += r2 - q2
        col[xp, 2, k] += r2 * r - q2 * q
        col[xp, 3, k] += r2 * r2 - q2 * q2


@jit(error_model="numpy")  # no ZeroDivisionError checks: they stop the band loop vectorising
def _swap_finish_row(col, row_in, row_out, win, inv_n, var_floor, wk, acc, sqk_row, vfit_row, vharm_row):
    """The vertical window moves one row (:func:`_swap_column`), then :func:`_finish_row`, in one pass
    over the columns (same arithmetic).

    Column ``x + win - 1`` of ``col`` is updated just before the running
    horizontal sum reads it, so ``col`` is swept once per row instead of twice
    (the column leaving the window, ``x - 1``, is still in the L1 cache).
    """
    nkp = col.shape[2]
    w = sqk_row.shape[0]
    inv_k = 1.0 / wk.sum()
    for m in range(4):
        for k in range(nkp):
            acc[m, k] = 0.0
    for xp in range(win):
        _swap_column(col, xp, row_in, row_out)
        for m in range(4):
            for k in range(nkp):
                acc[m, k] += col[xp, m, k]
    for x in range(w):
        if x > 0:
            _swap_column(col, x + win - 1, row_in, row_out)
            for m in range(4):
                for k in range(nkp):
                    acc[m, k] += col[x + win - 1, m, k] - col[x - 1, m, k]
        sqk_row[x], vfit_row[x], vharm_row[x] = _window_fit(acc, inv_n, var_floor, wk, inv_k)


@jit
def _strips(img, cmat, br, strip, var_floor, s0, s1, sqk, vfit, vharm):
    """Process strips ``s0 .. s1 - 1`` (rows ``s * strip`` onwards) into the output arrays."""
    h, w = img.shape
    fz = cmat.shape[0]
    nk = fz * fz - 1
    nkp = (nk + 3) // 4 * 4
    wk = np.zeros(nkp)
    wk[:nk] = 1.0
    o = (fz - 1) // 2
    win = 2 * br + 1
    inv_n = 1.0 / (win * win)
    wp = w + 2 * br
    nring = win + 1
    ncache = 2 * fz + 2
    xtap = np.empty(w + fz - 1, np.int64)
    for t in range(w + fz - 1):
        xtap[t] = reflect(t - o, w)
    ring = np.zeros((nring, wp, nkp))
    col = np.zeros((wp, 4, nkp))
    acc = np.empty((4, nkp))
    tcache = np.empty((ncache, fz, w))
    ttag = np.full(ncache, -1, np.int64)
    prow = np.empty(w + fz - 1)
    tmp = np.empty((nk, w))
    for s in range(s0, s1):
        y0 = s * strip
        y1 = min(h, y0 + strip)
        col[:] = 0.0
        # rows y0 - br .. y0 + br form the first window
        for yy in range(y0 - br, y0 + br + 1):
            slot = (yy - y0 + br) % nring
            _response_row(img, cmat, reflect(yy, h), br, xtap, prow, tcache, ttag, tmp, ring[slot])
            _add_row(col, ring[slot])
        for y in range(y0, y1):
            if y > y0:
                slot_in = (y + br - y0 + br) % nring
                slot_out = (y - 1 - y0) % nring
                _response_row(img, cmat, reflect(y + br, h), br, xtap, prow, tcache, ttag, tmp, ring[slot_in])
                _swap_finish_row(col, ring[slot_in], ring[slot_out], win, inv_n, var_floor, wk, acc,
                                 sqk[y], vfit[y], vharm[y])
            else:
                _finish_row(col, win, inv_n, var_floor, wk, acc, sqk[y], vfit[y], vharm[y])


def kurtosis_stats(
    img: np.ndarray, cmat: np.ndarray, br: int, strip: int, var_floor: float, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel kurtosis-concentration fit over the DCT AC bands.

    The strips are independent: they are handed to ``threads`` worker threads
    (default: ``numba.get_num_threads()``) running the cached, GIL-free serial
    kernel, so the result does not depend on the thread count and no parallel
    kernel has to be JIT-compiled in every new process.

    Parameters
    ----------
    img : ndarray (H, W)
        Image plane; converted to a writable C-contiguous float32 array.
    cmat : ndarray (fz, fz), float64
        1-D orthonormal DCT-II matrix (see :func:`dct_matrix`); the bands are
        the separable products ``cmat[u, i] * cmat[v, j]``, ``(u, v) != (0, 0)``,
        in the order of :func:`dct_bank`.
    br : int
        Window radius; windows are (2 br + 1)^2 pixels.
    strip : int
        Rows per independent strip (fixed by the caller, never the thread count).
    var_floor : float
        Band variances at or below this count as flat: variance ``var_floor``,
        kurtosis 0.
    threads : int, optional
        Worker threads.

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
    img = np.require(img, np.float32, ["C", "W"])
    cmat = np.require(cmat, np.float64, ["C", "W"])
    h, w = img.shape
    br = int(br)
    strip = int(strip)
    var_floor = float(var_floor)
    sqk = np.empty((h, w))
    vfit = np.empty((h, w))
    vharm = np.empty((h, w))
    nstrip = (h + strip - 1) // strip
    n = numba.get_num_threads() if threads is None else int(threads)
    n = max(1, min(n, nstrip))
    if n == 1:
        _strips(img, cmat, br, strip, var_floor, 0, nstrip, sqk, vfit, vharm)
    else:
        from concurrent.futures import ThreadPoolExecutor

        def run(s: int) -> None:
            _strips(img, cmat, br, strip, var_floor, s, s + 1, sqk, vfit, vharm)

        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(run, range(nstrip)))
    return sqk, vfit, vharm


@jit
def valid_sqrt_kappa(sqk, vharm, flat_below):  # pragma: no cover - compiled
    """The finite ``sqk`` values of the windows that are not flat (``vharm > flat_below``), in raster order."""
    h, w = sqk.shape
    out = np.empty(h * w)
    n = 0
    for y in range(h):
        for x in range(w):
            v = sqk[y, x]
            if math.isfinite(v) and not vharm[y, x] <= flat_below:
                out[n] = v
                n += 1
    return out[:n]


@pjit
def fallback_rule(sqk, vfit, vharm, flat_below, med, variance, fallback, flat):  # pragma: no cover - compiled
    """Per pixel: ``flat = vharm <= flat_below``; fall back on ``vharm`` where the window is flat, the fit is
    undefined, ``sqk < med`` or ``vfit < 0`` (NaN counts as failing), else ``vfit`` (one row per iteration)."""
    h, w = sqk.shape
    for y in prange(h):
        for x in range(w):
            fl = vharm[y, x] <= flat_below
            s = sqk[y, x]
            valid = math.isfinite(s) and not fl
            fb = (not valid) or (not s >= med) or (not vfit[y, x] >= 0.0)
            flat[y, x] = fl
            fallback[y, x] = fb
            variance[y, x] = vharm[y, x] if fb else vfit[y, x]


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
                s += img[y, reflect(x + j - o, w)]
            tmp[y, x] = s
    inv = 1.0 / (size * size)
    for y in range(h):
        for x in range(w):
            s = 0.0
            for i in range(size):
                s += tmp[reflect(y + i - o, h), x]
            out[y, x] = s * inv
    return out


@register_warmup
def _warmup() -> None:
    img = np.random.default_rng(0).normal(128.0, 5.0, (24, 20)).astype(np.float32)
    sqk, vfit, vharm = kurtosis_stats(img, dct_matrix(4), 2, 8, 1e-6)
    box_preblur(img, 4)
    valid_sqrt_kappa(sqk, vharm, 1e-6)
    fallback_rule(sqk, vfit, vharm, 1e-6, 0.5, np.empty(sqk.shape), np.empty(sqk.shape, np.bool_),
                  np.empty(sqk.shape, np.bool_))
