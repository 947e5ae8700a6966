"""Numba kernels of the block wavelet MAD noise map.

Private module: the public wrapper (:mod:`noisestat.maps.wavelet_mad`)
validates its inputs; the kernels here only ever see C-contiguous float arrays.

* :func:`hh_subband` -- the finest diagonal (HH) subband of a one-level
  orthonormal wavelet transform with half-sample symmetric extension (filters
  from :func:`noisestat.blocks.wavelets.daubechies_highpass`).
* :func:`block_mad_sigma` -- ``median(|x|) / 0.6745`` per block.

Parallel kernels write one output element (a block or a row) per iteration
and never reduce across threads, so results do not depend on the number of
threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import pjit, register_warmup
from ..blocks.tiling import block_starts, reflect_index
from ..blocks.wavelets import daubechies_highpass

__all__ = ["MAD_TO_SIGMA", "hh_subband", "block_mad_sigma"]

#: 1 / Phi^-1(3/4): median(|x|) of N(0, s^2) samples is 0.6745 s
MAD_TO_SIGMA = 0.6745


def _tap_table(n: int, length: int) -> np.ndarray:
    """Input indices of HH taps: row ``k`` holds ``refl(2k + L/2 - i)`` for i < L."""
    ns = (n + 1) // 2
    k = np.arange(ns, dtype=np.int64)[:, None]
    i = np.arange(length, dtype=np.int64)[None, :]
    return np.ascontiguousarray(reflect_index(2 * k + length // 2 - i, n))


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


@register_warmup
def _warmup() -> None:
    img = np.ascontiguousarray(np.random.default_rng(0).normal(128.0, 3.0, (24, 20)).astype(np.float32))
    sub = hh_subband(img, daubechies_highpass(1))
    block_mad_sigma(sub, block_starts(sub.shape[0], 8), block_starts(sub.shape[1], 8), 8, 8)
