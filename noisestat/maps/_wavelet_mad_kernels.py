"""Numba kernels of the block wavelet MAD noise map.

Private module: the public wrapper (:mod:`noisestat.maps.wavelet_mad`)
validates its inputs; the kernels here only ever see C-contiguous float arrays.

* :func:`hh_subband` -- the finest diagonal (HH) subband of a one-level
  orthonormal wavelet transform with half-sample symmetric extension (filters
  from :func:`noisestat.blocks.wavelets.daubechies_highpass`).
* :func:`block_mad_sigma` -- ``median(|x|) / 0.6745`` per block.
* :func:`luma_block_sigma` -- the map's whole computation in two parallel
  passes: BT.601 luma and the row filter of every image row (float32
  intermediate, as :func:`hh_subband`), then per row of blocks the column
  filter of its subband rows and the block medians (the subband is never
  stored). The same values as ``block_mad_sigma(hh_subband(gray))``.
* :func:`expand_pair` -- two block maps to full resolution in one pass.

Parallel kernels write one output element (a block, a row or a row of
blocks) per iteration and never reduce across threads, so results do not
depend on the number of threads. The filters accumulate in float64 and round
to float32 after each separable pass, as before; the row filter runs over
even and odd samples split apart so that it vectorises over outputs.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup
from ..blocks.filters import median_network
from ..blocks.tiling import block_starts, reflect_index
from ..blocks.wavelets import daubechies_highpass

__all__ = ["MAD_TO_SIGMA", "hh_subband", "block_mad_sigma", "luma_block_sigma", "expand_pair"]

#: 1 / Phi^-1(3/4): median(|x|) of N(0, s^2) samples is 0.6745 s
MAD_TO_SIGMA = 0.6745


def _tap_table(n: int, length: int) -> np.ndarray:
    """Input indices of HH taps: row ``k`` holds ``refl(2k + L/2 - i)`` for i < L."""
    ns = (n + 1) // 2
    k = np.arange(ns, dtype=np.int64)[:, None]
    i = np.arange(length, dtype=np.int64)[None, :]
    return np.ascontiguousarray(reflect_index(2 * k + length // 2 - i, n))


def _phase_tables(n: int, length: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(even, odd, pad): ``even[t] = refl(2 (t - pad))``, ``odd[t] = refl(2 (t - pad) + 1)``.

    Tap ``i`` of output ``q`` reads ``x(2q + m)``, ``m = L/2 - i``: for even
    ``m`` that is ``even[q + m // 2 + pad]``, for odd ``m`` ``odd[q + m // 2 + pad]``.
    """
    ns = (n + 1) // 2
    pad = length // 4 + 1
    t = np.arange(ns + 2 * pad, dtype=np.int64) - pad
    return reflect_index(2 * t, n), reflect_index(2 * t + 1, n), pad


def hh_subband(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Finest diagonal subband of a one-level separable wavelet transform.

    ``HH[k, l] = sum_{i,j} g[i] g[j] x(2k + L/2 - i, 2l + L/2 - j)`` with ``x``
    extended half-sample symmetrically, ``L = len(g)``. Coefficient ``(k, l)``
    is centred on image pixel ``(2k + 1/2, 2l + 1/2)``; the subband has shape
    ``((H + 1) // 2, (W + 1) // 2)``.

    Parameters
    ----------
    img : ndarray, shape (H, W), float32, C-contiguous
    g : ndarray, shape (L,), float64
        Decomposition high-pass filter.

    Returns
    -------
    ndarray, shape ((H + 1) // 2, (W + 1) // 2), float32
    """
    h, w = img.shape
    g = np.ascontiguousarray(g, dtype=np.float64)
    return _hh_kernel(img, g, _tap_table(h, g.size), _tap_table(w, g.size))


@pjit
def _hh_kernel(img, g, rtab, ctab):
    h, w = img.shape
    nt = g.size
    hs = rtab.shape[0]
    ws = ctab.shape[0]
    tmp = np.empty((h, ws), np.float32)
    for r in prange(h):
        for q in range(ws):
            acc = 0.0
            for j in range(nt):
                acc += g[j] * img[r, ctab[q, j]]
            tmp[r, q] = acc
    out = np.empty((hs, ws), np.float32)
    for k in prange(hs):
        row = np.zeros(ws)
        for i in range(nt):
            gi = g[i]
            rr = rtab[k, i]
            for q in range(ws):
                row[q] += gi * tmp[rr, q]
        for q in range(ws):
            out[k, q] = row[q]
    return out


@pjit
def block_mad_sigma(sub, rstarts, cstarts, bh, bw):
    """``median(|sub[r:r+bh, c:c+bw]|) / 0.6745`` for every block start (r, c).

    Returns
    -------
    ndarray, shape (len(rstarts), len(cstarts)), float64
    """
    nr = rstarts.size
    nc = cstarts.size
    out = np.empty((nr, nc))
    for i in prange(nr):
        buf = np.empty(bh * bw)
        r = rstarts[i]
        for j in range(nc):
            c = cstarts[j]
            t = 0
            for y in range(r, r + bh):
                for x in range(c, c + bw):
                    buf[t] = abs(sub[y, x])
                    t += 1
            out[i, j] = np.median(buf) / MAD_TO_SIGMA
    return out


@jit(fastmath=False)
def _luma(r, g, b):
    """The float32 expression ``0.299 * r + 0.587 * g + 0.114 * b`` (no contraction: LoadedImage.gray's bits)."""
    v = np.float32(np.float32(np.float32(0.299) * r) + np.float32(np.float32(0.587) * g))
    return np.float32(v + np.float32(np.float32(0.114) * b))


@pjit
def _luma_rows(px, g, even, odd, pad, tmp):
    """tmp[r, q] = float32(sum_j g[j] luma(r, refl(2q + L/2 - j))) for every image row r."""
    h = px.shape[0]
    nch = px.shape[2]
    nt = g.size
    ws = tmp.shape[1]
    ne = even.size
    half = nt // 2
    for r in prange(h):
        e = np.empty(ne, np.float32)
        o = np.empty(ne, np.float32)
        if nch == 3:
            for t in range(ne):
                c = even[t]
                e[t] = _luma(px[r, c, 0], px[r, c, 1], px[r, c, 2])
                c = odd[t]
                o[t] = _luma(px[r, c, 0], px[r, c, 1], px[r, c, 2])
        else:
            for t in range(ne):
                e[t] = px[r, even[t], 0]
                o[t] = px[r, odd[t], 0]
        acc = np.zeros(ws)
        for j in range(nt):
            gj = g[j]
            m = half - j
            off = (m >> 1) + pad
            # a slice, so that the index is a plain non-negative loop counter (vectorises)
            src = o[off:off + ws] if m & 1 else e[off:off + ws]
            for q in range(ws):
                acc[q] += gj * src[q]
        for q in range(ws):
            tmp[r, q] = acc[q]


#: blocks whose medians are selected side by side (the lanes of the sorting network)
_LANES = 16


@pjit
def _column_block_sigma(tmp, g, rtab, rstarts, cstarts, bh, bw, lo, hi, size, out):
    """Column filter of each row of blocks' subband rows, then the block medians (as block_mad_sigma).

    The medians of ``_LANES`` neighbouring blocks go through the sorting
    network ``lo, hi`` together (one block per lane, ``size`` rows), which
    vectorises; min and max are exact, so the values are np.median's.
    """
    ws = tmp.shape[1]
    nt = g.size
    nr = rstarts.size
    nc = cstarts.size
    n = bh * bw
    k = (n - 1) // 2
    even = n % 2 == 0
    for i in prange(nr):
        r0 = rstarts[i]
        sub = np.empty((bh, ws), np.float32)
        row = np.empty(ws)
        for y in range(bh):
            row[:] = 0.0
            for t in range(nt):
                gi = g[t]
                src = tmp[rtab[r0 + y, t]]
                for q in range(ws):
                    row[q] += gi * src[q]
            for q in range(ws):
                sub[y, q] = abs(np.float32(row[q]))
        buf = np.full((size, _LANES), np.inf, np.float32)
        for j0 in range(0, nc, _LANES):
            nl = min(_LANES, nc - j0)
            for lane in range(nl):
                c = cstarts[j0 + lane]
                t = 0
                for y in range(bh):
                    for x in range(c, c + bw):
                        buf[t, lane] = sub[y, x]
                        t += 1
            for m in range(lo.size):
                a = buf[lo[m]]
                b = buf[hi[m]]
                for lane in range(_LANES):
                    u = a[lane]
                    v = b[lane]
                    a[lane] = min(u, v)
                    b[lane] = max(u, v)
            for lane in range(nl):
                med = np.float64(buf[k, lane])
                if even:
                    med = (med + np.float64(buf[k + 1, lane])) / 2
                out[i, j0 + lane] = med / MAD_TO_SIGMA


def luma_block_sigma(px: np.ndarray, g: np.ndarray, block: int) -> np.ndarray:
    """Block noise levels ``median(|HH|) / 0.6745`` of the luma of ``px``.

    The same values as ``block_mad_sigma(hh_subband(gray, g), ...)`` on the
    subband tiling of :func:`noisestat.blocks.tiling.block_starts` with side
    ``min(block, subband side)``, ``gray`` the BT.601 luma of
    :meth:`noisestat.types.LoadedImage.gray` (the channel itself for one channel).

    Parameters
    ----------
    px : ndarray, shape (H, W, C), float32, C-contiguous
        C is 1 or 3.
    g : ndarray, shape (L,), float64
        Decomposition high-pass filter.
    block : int
        Block side in subband coordinates.

    Returns
    -------
    ndarray, shape (n_block_rows, n_block_cols), float64
    """
    h, w = px.shape[:2]
    g = np.ascontiguousarray(g, dtype=np.float64)
    even, odd, pad = _phase_tables(w, g.size)
    hs, ws = (h + 1) // 2, (w + 1) // 2
    tmp = np.empty((h, ws), np.float32)
    _luma_rows(px, g, even, odd, pad, tmp)
    rstarts, cstarts = block_starts(hs, block), block_starts(ws, block)
    bh, bw = min(block, hs), min(block, ws)
    net = median_network(bh * bw)  # never reads past the block's bh * bw values
    lo, hi = np.ascontiguousarray(net[:, 0]), np.ascontiguousarray(net[:, 1])
    out = np.empty((rstarts.size, cstarts.size))
    _column_block_sigma(tmp, g, _tap_table(h, g.size), rstarts, cstarts, bh, bw, lo, hi, bh * bw, out)
    return out


@pjit
def _expand_pair(a, b, ridx, cidx, ystarts, out_a, out_b):
    w = cidx.size
    for s in prange(ystarts.size - 1):
        y0 = ystarts[s]
        ra = a[ridx[y0]]
        rb = b[ridx[y0]]
        for x in range(w):
            out_a[y0, x] = ra[cidx[x]]
            out_b[y0, x] = rb[cidx[x]]
        for y in range(y0 + 1, ystarts[s + 1]):
            for x in range(w):
                out_a[y, x] = out_a[y0, x]
                out_b[y, x] = out_b[y0, x]


def expand_pair(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(expand_grid(a, rows, cols), expand_grid(b, rows, cols))`` in one pass (float32).

    Parameters
    ----------
    a : ndarray, shape (Hb, Wb), float64, C-contiguous
    b : ndarray, shape (Hb, Wb), float32, C-contiguous
    rows, cols : ndarray of int64
        Non-decreasing block index of every image row and column.

    Returns
    -------
    tuple of two ndarrays, shape (rows.size, cols.size), float32
    """
    ystarts = np.flatnonzero(np.diff(rows, prepend=-1, append=-1)).astype(np.int64)
    out_a = np.empty((rows.size, cols.size), np.float32)
    out_b = np.empty((rows.size, cols.size), np.float32)
    _expand_pair(a, b, rows, cols, ystarts, out_a, out_b)
    return out_a, out_b


@register_warmup
def _warmup() -> None:
    img = np.ascontiguousarray(np.random.default_rng(0).normal(128.0, 3.0, (24, 20)).astype(np.float32))
    sub = hh_subband(img, daubechies_highpass(1))
    block_mad_sigma(sub, block_starts(sub.shape[0], 8), block_starts(sub.shape[1], 8), 8, 8)
    for nch in (1, 3):
        px = np.repeat(img[:, :, None], nch, axis=2)
        px.setflags(write=False)  # LoadedImage pixels are read-only
        sig = luma_block_sigma(px, daubechies_highpass(1), 8)
    rows = np.repeat(np.arange(sig.shape[0]), 2)
    cols = np.repeat(np.arange(sig.shape[1]), 2)
    expand_pair(sig, sig.astype(np.float32), rows, cols)
