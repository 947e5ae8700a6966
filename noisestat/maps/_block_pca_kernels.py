"""Numba kernels of the block PCA noise map (Pyatykh, Hesser & Zheng 2013).

Private module: the public wrapper (:mod:`noisestat.maps.block_pca`)
validates its inputs; the kernels here only ever see C-contiguous float arrays
on the 0-255 scale. :func:`phz_variance` / :func:`phz_blocks` estimate the
noise variance of one region / of every block of the tiling of
:mod:`noisestat.blocks.tiling`.

Parallel kernels write one output element (a block) per iteration and never
reduce across threads, so results do not depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup
from ..blocks.tiling import block_starts

__all__ = [
    "PHZ_LEVEL_STEP",
    "PHZ_MIN_LEVEL",
    "PHZ_UPPER_LEVEL",
    "PHZ_UPPER_FACTOR",
    "PHZ_EIG_COUNT",
    "PHZ_DIFF_THRESHOLD",
    "PHZ_MAX_ITER",
    "PHZ_TOL",
    "PHZ_ZERO",
    "phz_levels",
    "phz_variance",
    "phz_blocks",
    "stable_argsort",
]

# Pyatykh, Hesser & Zheng (2013): constants of the published method (paper and authors' program)
PHZ_LEVEL_STEP = 0.05  # Delta p between quantile levels
PHZ_MIN_LEVEL = 0.06  # smallest quantile level p_min
PHZ_UPPER_LEVEL = 0.0005  # p0 of the upper bound sigma^2_ub = C0 * Q(p0)
PHZ_UPPER_FACTOR = 3.1  # C0
PHZ_EIG_COUNT = 7  # m: number of smallest eigenvalues that must agree
PHZ_DIFF_THRESHOLD = 49.0  # T of the check lambda_m - lambda_1 < T sigma^2 / sqrt(|B|)
PHZ_MAX_ITER = 10  # fixed-point iterations on sigma^2
PHZ_TOL = 1e-6  # convergence tolerance on sigma^2 (0-255 scale)
PHZ_ZERO = 1e-6  # an eigenvalue below this (0-255 scale) means "no noise"

RADIX_BITS = (8, 11)  # digits of :func:`stable_argsort`: short arrays, long arrays
RADIX_LONG = 2048  # arrays of at least this many keys take the longer digit


@jit
def phz_levels(n: int, min_count: int) -> np.ndarray:
    """Sizes ``|B(p_k)|`` of the quantile subsets, p_k = 1, 1 - dp, ... >= p_min.

    ``|B(p)| = floor(p n + 1/2)`` clamped to [1, n]; levels whose subset is
    smaller than ``min_count`` are dropped (always keeping p = 1).
    """
    kmax = 0
    while 1.0 - kmax * PHZ_LEVEL_STEP >= PHZ_MIN_LEVEL - 1e-9:
        kmax += 1
    out = np.empty(kmax, np.int64)
    k_used = 0
    for k in range(kmax):
        p = 1.0 - k * PHZ_LEVEL_STEP
        c = int(math.floor(p * n + 0.5))
        c = min(max(c, 1), n)
        if k > 0 and c < min_count:
            break
        out[k_used] = c
        k_used += 1
    return out[:k_used]


def phz_variance(region, clipped, m, max_clipped, min_count):
    """Noise variance of one region by Pyatykh, Hesser & Zheng (2013).

    Parameters
    ----------
    region : ndarray, shape (h, w), float32
        Pixel values on the 0-255 scale.
    clipped : ndarray, shape (h, w), uint8
        1 where the pixel is clipped (saturated or black).
    m : int
        Side of the square patches ("blocks" in the paper); d = m * m.
    max_clipped : int
        Patches with more clipped pixels than this are left out.
    min_count : int
        Fewest usable patches (and fewest patches in a quantile subset).

    Returns
    -------
    var : float
        Estimated noise variance (>= 0), NaN when fewer than ``min_count``
        patches are usable.
    n : int
        Number of usable patches.

    Notes
    -----
    All m x m patches (stride 1) fully inside the region are vectorised.
    Patches are sorted by their sample variance (ties in raster order);
    B(p) holds the ``|B(p)|`` lowest-variance ones. With S(p) the
    (1/|B|-normalised) sample covariance of B(p) and lambda_1 <= ... <=
    lambda_d its eigenvalues, one update of the estimate from the previous
    value s^2 is: for p = 1, 1 - dp, ..., take lambda_1(S(p)); stop at the
    first p where lambda_m - lambda_1 < T s^2 / sqrt(|B(p)|) and lambda_1 <
    sigma^2_ub (or where lambda_1 ~ 0); return min(lambda_1, sigma^2_ub). The
    upper bound is sigma^2_ub = C0 Q(p0), Q the p0-quantile of the patch
    variances. Starting from s^2 = sigma^2_ub the update is iterated until it
    changes by less than ``PHZ_TOL`` (at most ``PHZ_MAX_ITER`` times).
    """
    img = np.ascontiguousarray(np.asarray(region, dtype=np.float32))
    clip = np.ascontiguousarray(np.asarray(clipped, dtype=np.uint8))
    if img.ndim != 2 or clip.shape != img.shape:
        raise ValueError("phz_variance: region and clipped must be 2-D arrays of the same shape")
    h, w = img.shape
    return _phz_core(img, clip, 0, 0, h, w, int(m), int(max_clipped), int(min_count))


@jit
def stable_argsort(x):  # pragma: no cover - compiled
    """``np.argsort(x, kind="stable")`` of finite float64 ``x``: ascending, equal values in index order.

    LSD radix sort (8-bit digits, 11-bit from :data:`RADIX_LONG` keys) of the IEEE bit patterns mapped to an
    order-preserving integer (-0.0 counts as 0.0); only the digits in which
    the keys differ are sorted.
    """
    n = x.size
    order = np.arange(n)
    if n < 2:
        return order
    keys = np.empty(n, np.uint64)
    bits = x.view(np.int64)
    kmin = np.int64(0x7FFFFFFFFFFFFFFF)
    kmax = -kmin - 1
    for i in range(n):
        b = bits[i] if x[i] != 0.0 else np.int64(0)
        k = b ^ ((b >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))  # two's-complement order = numeric order
        kmin = min(kmin, k)
        kmax = max(kmax, k)
        keys[i] = np.uint64(k)
    base = np.uint64(kmin)
    span = np.uint64(kmax) - base
    for i in range(n):
        keys[i] -= base
    nxt_k = np.empty(n, np.uint64)
    nxt_o = np.empty(n, np.int64)
    nbits = RADIX_BITS[1] if n >= RADIX_LONG else RADIX_BITS[0]
    nbucket = 1 << nbits
    count = np.empty(nbucket, np.int64)
    mask = np.uint64(nbucket - 1)
    shift = np.uint64(0)
    while shift < 64 and (span >> shift) > 0:
        count[:] = 0
        for i in range(n):
            count[np.int64((keys[i] >> shift) & mask)] += 1
        tot = 0
        for b in range(nbucket):
            c = count[b]
            count[b] = tot
            tot += c
        for i in range(n):
            b = np.int64((keys[i] >> shift) & mask)
            j = count[b]
            count[b] = j + 1
            nxt_k[j] = keys[i]
            nxt_o[j] = order[i]
        keys, nxt_k = nxt_k, keys
        order, nxt_o = nxt_o, order
        shift += np.uint64(nbits)
    return order


@jit
def _phz_core(img, clip, r0, c0, bh, bw, m, max_clipped, min_count):
    """:func:`phz_variance` of ``img[r0:r0+bh, c0:c0+bw]`` (img, clip C-contiguous)."""
    width = img.shape[1]
    flat = img.ravel()
    fclip = clip.ravel()
    ny = bh - m + 1
    nx = bw - m + 1
    d = m * m
    if ny < 1 or nx < 1:
        return np.nan, 0
    # centre the region on an integer (covariances are shift invariant): the
    # float64 sums stay small, and for integer-valued pixels they are exact, so
    # that equal patch variances compare equal and ties keep raster order
    c = 0.0
    for y in range(r0, r0 + bh):
        for x in range(c0, c0 + bw):
            c += flat[y * width + x]
    c = math.floor(c / (bh * bw) + 0.5)
    # patch sums: per patch row, column sums over m rows, then m of them
    npos = ny * nx
    pvar = np.empty(npos)
    ppos = np.empty(npos, np.int64)
    col1 = np.empty(bw)
    col2 = np.empty(bw)
    colc = np.empty(bw, np.int64)
    n = 0
    for y in range(ny):
        for x in range(bw):
            col1[x] = 0.0
            col2[x] = 0.0
            colc[x] = 0
        for i in range(m):
            base = (r0 + y + i) * width + c0
            for x in range(bw):
                v = flat[base + x] - c
                col1[x] += v
                col2[x] += v * v
                colc[x] += fclip[base + x]
        for x in range(nx):
            s1 = 0.0
            s2 = 0.0
            nc = 0
            for j in range(m):
                s1 += col1[x + j]
                s2 += col2[x + j]
                nc += colc[x + j]
            if nc <= max_clipped:
                pvar[n] = (d * s2 - s1 * s1) / (d * d)
                ppos[n] = (r0 + y) * width + c0 + x  # flat offset of the patch's corner
                n += 1
    if n < min_count:
        return np.nan, n
    pvar = pvar[:n]
    # stable order: equal variances in raster order (ppos increases with the index)
    order = stable_argsort(pvar)
    counts = phz_levels(n, min_count)
    nlev = counts.size
    # cumulative first and second moments over the sorted patches, one level
    # segment at a time: the segment's patches are gathered as the columns of
    # ``buf`` so that every second moment is a contiguous dot product
    maxseg = counts[nlev - 1]
    for k in range(nlev - 1):
        maxseg = max(maxseg, counts[k] - counts[k + 1])
    buf = np.empty((d, maxseg))
    offs = np.empty(maxseg, np.int64)
    s1k = np.zeros((nlev, d))
    s2k = np.zeros((nlev, d, d))
    a1 = np.zeros(d)
    a2 = np.zeros((d, d))
    lo = 0
    for k in range(nlev - 1, -1, -1):
        hi = counts[k]
        seg = hi - lo
        for t in range(seg):
            offs[t] = ppos[order[lo + t]]
        for i in range(m):
            for j in range(m):
                row = buf[i * m + j]
                delta = i * width + j
                for t in range(seg):
                    row[t] = flat[offs[t] + delta] - c
        for i in range(d):
            bi = buf[i]
            acc = 0.0
            for t in range(seg):
                acc += bi[t]
            a1[i] += acc
            for j in range(i, d):
                bj = buf[j]
                acc = 0.0
                for t in range(seg):
                    acc += bi[t] * bj[t]
                a2[i, j] += acc
        s1k[k] = a1
        s2k[k] = a2
        lo = hi
    qi = int(math.floor(PHZ_UPPER_LEVEL * (n - 1) + 0.5))
    upper = PHZ_UPPER_FACTOR * pvar[order[qi]]
    ev = np.empty((nlev, d))
    have = np.zeros(nlev, np.bool_)
    cov = np.empty((d, d))
    me = min(PHZ_EIG_COUNT, d)
    prev = 0.0
    var = upper
    for _ in range(PHZ_MAX_ITER):
        if abs(prev - var) < PHZ_TOL:
            break
        prev = var
        est = 0.0
        for k in range(nlev):
            if not have[k]:
                nk = counts[k]
                for i in range(d):
                    mi = s1k[k, i] / nk
                    for j in range(i, d):
                        cij = s2k[k, i, j] / nk - mi * (s1k[k, j] / nk)
                        cov[i, j] = cij
                        cov[j, i] = cij
                ev[k] = np.linalg.eigvalsh(cov)
                have[k] = True
            est = ev[k, 0]
            if est < PHZ_ZERO:
                break
            if ev[k, me - 1] - est < PHZ_DIFF_THRESHOLD * prev / math.sqrt(counts[k]) and est < upper:
                break
        var = est if est < upper else upper
    return max(var, 0.0), n


@pjit
def phz_blocks(img, clipped, rstarts, cstarts, bh, bw, m, max_clipped, min_count):
    """:func:`phz_variance` of every block ``img[r:r+bh, c:c+bw]``.

    ``img`` (float32) and ``clipped`` (uint8) must be C-contiguous.

    Returns
    -------
    var : ndarray, shape (len(rstarts), len(cstarts)), float64
    count : ndarray, same shape, int64
        Usable patches per block.
    """
    nr = rstarts.size
    nc = cstarts.size
    nt = nr * nc
    var = np.empty((nr, nc))
    cnt = np.zeros((nr, nc), np.int64)
    # visit the blocks in a scattered order (t -> t * stride mod nt, a bijection), so that each
    # thread's share of the loop mixes cheap (flat) and costly (textured) areas of the image
    stride = max(1, int(0.618 * nt))
    while math.gcd(stride, nt) != 1:
        stride += 1
    for t in prange(nt):
        b = (t * stride) % nt
        i = b // nc
        j = b - i * nc
        v, k = _phz_core(img, clipped, rstarts[i], cstarts[j], bh, bw, m, max_clipped, min_count)
        var[i, j] = v
        cnt[i, j] = k
    return var, cnt


@register_warmup
def _warmup() -> None:
    rng = np.random.default_rng(0)
    img = np.ascontiguousarray(rng.normal(128.0, 3.0, (24, 20)).astype(np.float32))
    clip = np.zeros(img.shape, np.uint8)
    phz_blocks(img, clip, block_starts(24, 16), block_starts(20, 16), 16, 16, 5, 2, 50)
    phz_variance(img, clip, 5, 2, 50)
