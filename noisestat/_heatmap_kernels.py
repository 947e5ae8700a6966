"""Numba kernels of the robust-z logistic (:mod:`noisestat.heatmap`).

Private module: :func:`noisestat.heatmap.robust_z` and
:func:`~noisestat.heatmap.robust_logistic` call these on C-contiguous float32
maps without a reference mask.

* :func:`rank_pair` is an exact selection (two neighbouring order statistics
  of the finite values, those ``np.partition`` would put there) by a two-level radix
  histogram on the float32 bit patterns mapped to order-preserving unsigned
  keys (16 high bits, then the 16 low bits within the bin that holds rank
  ``k``): two passes over the data, no copy, no sort (on a map made of runs
  of equal values, such as a block map at full resolution, each run is
  counted at once). ``np.median`` of the
  finite values is then the k-th value (odd count) or the float32 mean of the
  two middle values (even count), exactly as numpy computes it. A third
  pass is needed only when the two middle values fall in different bins.
* :func:`abs_dev` writes ``|x - med|`` (float32, the numpy expression) of the
  finite values for the MAD.
* :func:`logistic_arg` is the float32 arithmetic of ``robust_logistic`` up
  to the exponential, which stays numpy's float32 ``exp`` (bit-identical).
* :func:`expand` replicates block values to full resolution (as
  :func:`noisestat.blocks.tiling.expand_grid`, which sits a layer higher).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._numba import jit, pjit, register_warmup

__all__ = ["rank_pair", "abs_dev", "logistic_arg", "expand"]


@jit(inline="always", fastmath=False)
def _key(b):
    """Order-preserving unsigned key of float32 bits ``b`` (uint32 as int64)."""
    if b & 0x80000000:
        return (~b) & 0xFFFFFFFF
    return b | 0x80000000


@jit(inline="always", fastmath=False)
def _bits(key):
    """Inverse of :func:`_key`."""
    if key & 0x80000000:
        return key & 0x7FFFFFFF
    return (~key) & 0xFFFFFFFF


@jit(fastmath=False)
def _mostly_runs(bits):
    """True when most of 1024 evenly spaced neighbour pairs of ``bits`` are equal (a block map at full resolution).

    Only chooses how :func:`rank_pair` loops (a run of equal values counted once, or value by
    value); the counts, hence the result, are the same either way.
    """
    size = bits.size
    if size < 4096:
        return False
    step = (size - 1) // 1024
    eq = 0
    for t in range(1024):
        j = t * step
        if bits[j] == bits[j + 1]:
            eq += 1
    return eq > 512


@jit(fastmath=False)
def rank_pair(bits, q):
    """(n, bits of the ka-th and kb-th smallest) of the n finite float32 of ``bits`` (1-D, uint32 view).

    ``q < 0``: the two middle ranks ``ka = (n - 1) // 2``, ``kb = n // 2`` (for
    odd n both are the median). ``0 <= q <= 1``: the two ranks numpy's linear
    ``np.quantile`` interpolates between, ``ka = floor(n q + (1 - q) - 1)``
    and ``kb = ka + 1``, both clipped to ``n - 1`` as numpy does. n = 0 gives
    (0, 0, 0).
    """
    size = bits.size
    runs = _mostly_runs(bits)
    hist = np.zeros(65536, np.int64)
    n = 0
    if runs:
        prev = np.int64(-1)
        run = 0
        for i in range(size):
            b = np.int64(bits[i])
            if b == prev:
                run += 1
                continue
            if run and (prev & 0x7F800000) != 0x7F800000:  # inf and NaN are skipped
                hist[_key(prev) >> 16] += run
                n += run
            prev = b
            run = 1
        if run and (prev & 0x7F800000) != 0x7F800000:
            hist[_key(prev) >> 16] += run
            n += run
    else:
        for i in range(size):
            b = np.int64(bits[i])
            if (b & 0x7F800000) == 0x7F800000:  # inf or NaN
                continue
            hist[_key(b) >> 16] += 1
            n += 1
    if n == 0:
        return 0, np.uint32(0), np.uint32(0)
    if q < 0:
        ka = (n - 1) // 2
        kb = n // 2
    else:
        vi = n * q + (1.0 + q * -1.0) - 1.0
        if vi >= n - 1:
            ka = n - 1
            kb = n - 1
        elif vi < 0:
            ka = 0
            kb = 1
        else:
            ka = int(math.floor(vi))
            kb = min(ka + 1, n - 1)
    acc = 0
    top = 0
    for t in range(65536):
        if acc + hist[t] > ka:
            top = t
            break
        acc += hist[t]
    lo = np.zeros(65536, np.int64)
    if runs:
        prev = np.int64(-1)
        run = 0
        for i in range(size):
            b = np.int64(bits[i])
            if b == prev:
                run += 1
                continue
            if run and (prev & 0x7F800000) != 0x7F800000:
                key = _key(prev)
                if (key >> 16) == top:
                    lo[key & 0xFFFF] += run
            prev = b
            run = 1
        if run and (prev & 0x7F800000) != 0x7F800000:
            key = _key(prev)
            if (key >> 16) == top:
                lo[key & 0xFFFF] += run
    else:
        for i in range(size):
            b = np.int64(bits[i])
            if (b & 0x7F800000) == 0x7F800000:
                continue
            key = _key(b)
            if (key >> 16) == top:
                lo[key & 0xFFFF] += 1
    key_a = -1
    key_b = -1
    for t in range(65536):
        c = lo[t]
        if key_a < 0 and acc + c > ka:
            key_a = (top << 16) | t
        if acc + c > kb:
            key_b = (top << 16) | t
            break
        acc += c
    if key_b < 0:  # rank kb is the smallest value of the next non-empty high bin
        nxt = top + 1
        while hist[nxt] == 0:
            nxt += 1
        key_b = np.int64(0xFFFFFFFF)
        for i in range(size):
            b = np.int64(bits[i])
            if (b & 0x7F800000) == 0x7F800000:
                continue
            key = _key(b)
            if (key >> 16) == nxt and key < key_b:
                key_b = key
    return n, np.uint32(_bits(key_a)), np.uint32(_bits(key_b))


@jit(fastmath=False)
def abs_dev(x, med, out):
    """out[:m] = |x - med| (float32) of the m finite values of 1-D ``x``, in order; returns m."""
    m = 0
    for i in range(x.size):
        v = x[i]
        if math.isfinite(v):
            out[m] = abs(np.float32(v - med))
            m += 1
    return m


@pjit(fastmath=False)
def logistic_arg(x, med, scale, two_sided, center, slope, out):
    """out = -t of robust_logistic's float32 arithmetic (t = clip((|z| - center) / slope, -60, 60)), 1-D.

    The caller finishes ``1 / (1 + exp(out))`` with numpy's float32 ``exp``
    (the same ufunc as before, so the same bits).
    """
    lo = np.float32(-60.0)
    hi = np.float32(60.0)
    for i in numba.prange(x.size):
        z = np.float32(np.float32(x[i] - med) / scale)
        if not math.isfinite(z):
            z = np.float32(0.0)
        if two_sided:
            z = abs(z)
        t = np.float32(np.float32(z - center) / slope)
        out[i] = -min(max(t, lo), hi)


@pjit
def expand(grid, ridx, cidx):
    """out[y, x] = grid[ridx[y], cidx[x]] (float32): a block map at full resolution."""
    h = ridx.size
    w = cidx.size
    out = np.empty((h, w), np.float32)
    for y in numba.prange(h):
        row = grid[ridx[y]]
        for x in range(w):
            out[y, x] = row[cidx[x]]
    return out


@register_warmup
def _warmup() -> None:
    x = np.array([1.0, np.nan, -2.0, 3.0], np.float32)
    expand(np.zeros((2, 2), np.float32), np.zeros(3, np.int64), np.zeros(3, np.int64))
    rank_pair(x.view(np.uint32), -1.0)
    rank_pair(x.view(np.uint32), 0.99)
    out = np.empty(4, np.float32)
    abs_dev(x, np.float32(1.0), out)
    logistic_arg(x, np.float32(0.0), np.float32(1.0), True, np.float32(2.5), np.float32(0.5), out)
