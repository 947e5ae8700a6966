"""Numba kernels of :mod:`noisestat.blocks.recompress`: a baseline gray JPEG
round trip done block by block in libjpeg's integer arithmetic.

Private module; callers pass C-contiguous arrays.

A baseline JPEG encode + decode of a gray image transforms every complete
8x8 block on its own: level shift, forward DCT, quantisation, dequantisation,
inverse DCT, range limit. libjpeg's default DCT (``JDCT_ISLOW``, the one
OpenCV and Pillow use) is the Loeffler-Ligtenberg-Moschytz algorithm in
13-bit fixed point (``CONST_BITS = 13``, ``PASS1_BITS = 2``), so the decoded
block is an integer function of the block and the table alone. The forward
transform does not depend on the quality: :func:`islow_fdct` computes it once
(output scaled by 8, as libjpeg's), :func:`requantised_block_mse` then
quantises (rounding half away from zero, divisor ``8 q``), dequantises,
inverts and compares, once per table. Partial blocks at the right and bottom
edges are left out (the callers use complete blocks only).

References
----------
C. Loeffler, A. Ligtenberg, G. S. Moschytz, "Practical fast 1-D DCT algorithms
with 11 multiplications", Proc. ICASSP 1989, pp. 988-991.
https://doi.org/10.1109/ICASSP.1989.266596
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["islow_fdct", "requantised_block_mse"]

# 13-bit fixed-point constants of the LL&M rotations (round(c * 2**13))
_C0298 = 2446
_C0390 = 3196
_C0541 = 4433
_C0765 = 6270
_C0899 = 7373
_C1175 = 9633
_C1501 = 12299
_C1847 = 15137
_C1961 = 16069
_C2053 = 16819
_C2562 = 20995
_C3072 = 25172


@jit
def _descale(x, n):  # pragma: no cover - compiled
    """Round ``x / 2**n`` half up (arithmetic shift)."""
    return (x + (1 << (n - 1))) >> n


@jit
def _fdct_1d(v, r, step, b, pass1):  # pragma: no cover - compiled
    """One 1-D forward pass, in place, over ``v[r + step * i, b]``, i = 0..7.

    ``pass1``: the row pass (outputs scaled up by 2**PASS1_BITS); else the column
    pass (descaled by PASS1_BITS, the 2-D output scaled by 8 overall).
    """
    d0, d1, d2, d3 = v[r, b], v[r + step, b], v[r + 2 * step, b], v[r + 3 * step, b]
    d4, d5, d6, d7 = v[r + 4 * step, b], v[r + 5 * step, b], v[r + 6 * step, b], v[r + 7 * step, b]
    t0, t7 = d0 + d7, d0 - d7
    t1, t6 = d1 + d6, d1 - d6
    t2, t5 = d2 + d5, d2 - d5
    t3, t4 = d3 + d4, d3 - d4
    t10, t13 = t0 + t3, t0 - t3
    t11, t12 = t1 + t2, t1 - t2
    sh = 11 if pass1 else 15  # CONST_BITS -/+ PASS1_BITS
    if pass1:
        v[r, b] = (t10 + t11) << 2
        v[r + 4 * step, b] = (t10 - t11) << 2
    else:
        v[r, b] = _descale(t10 + t11, 2)
        v[r + 4 * step, b] = _descale(t10 - t11, 2)
    z1 = (t12 + t13) * _C0541
    v[r + 2 * step, b] = _descale(z1 + t13 * _C0765, sh)
    v[r + 6 * step, b] = _descale(z1 - t12 * _C1847, sh)
    z5 = (t4 + t6 + t5 + t7) * _C1175
    z1 = -(t4 + t7) * _C0899
    z2 = -(t5 + t6) * _C2562
    z3 = -(t4 + t6) * _C1961 + z5
    z4 = -(t5 + t7) * _C0390 + z5
    v[r + 7 * step, b] = _descale(t4 * _C0298 + z1 + z3, sh)
    v[r + 5 * step, b] = _descale(t5 * _C2053 + z2 + z4, sh)
    v[r + 3 * step, b] = _descale(t6 * _C3072 + z2 + z3, sh)
    v[r + step, b] = _descale(t7 * _C1501 + z1 + z4, sh)


@jit
def _idct_1d(v, r, step, b, first):  # pragma: no cover - compiled
    """One 1-D inverse pass, in place, over ``v[r + step * i, b]``; ``first``: the column pass
    (descaled by CONST_BITS - PASS1_BITS), else the row pass (by CONST_BITS + PASS1_BITS + 3)."""
    sh = 11 if first else 18
    z2, z3 = v[r + 2 * step, b], v[r + 6 * step, b]
    z1 = (z2 + z3) * _C0541
    t2 = z1 - z3 * _C1847
    t3 = z1 + z2 * _C0765
    t0 = (v[r, b] + v[r + 4 * step, b]) << 13
    t1 = (v[r, b] - v[r + 4 * step, b]) << 13
    t10, t13 = t0 + t3, t0 - t3
    t11, t12 = t1 + t2, t1 - t2
    t0, t1, t2, t3 = v[r + 7 * step, b], v[r + 5 * step, b], v[r + 3 * step, b], v[r + step, b]
    z5 = (t0 + t2 + t1 + t3) * _C1175
    z1 = -(t0 + t3) * _C0899
    z2 = -(t1 + t2) * _C2562
    z3 = -(t0 + t2) * _C1961 + z5
    z4 = -(t1 + t3) * _C0390 + z5
    t0 = t0 * _C0298 + z1 + z3
    t1 = t1 * _C2053 + z2 + z4
    t2 = t2 * _C3072 + z2 + z3
    t3 = t3 * _C1501 + z1 + z4
    v[r, b] = _descale(t10 + t3, sh)
    v[r + 7 * step, b] = _descale(t10 - t3, sh)
    v[r + step, b] = _descale(t11 + t2, sh)
    v[r + 6 * step, b] = _descale(t11 - t2, sh)
    v[r + 2 * step, b] = _descale(t12 + t1, sh)
    v[r + 5 * step, b] = _descale(t12 - t1, sh)
    v[r + 3 * step, b] = _descale(t13 + t0, sh)
    v[r + 4 * step, b] = _descale(t13 - t0, sh)


@jit
def islow_fdct(src):  # pragma: no cover - compiled
    """libjpeg's integer forward DCT of every complete 8x8 block of a uint8 plane.

    Returns (hb, 64, wb) int32: ``out[a, 8 u + v, b]`` is coefficient (u, v) of
    block (a, b), scaled by 8 like libjpeg's (the quantiser divides by ``8 q``).
    The blocks of one block row are transformed side by side (the innermost loop
    runs over them, so it vectorises).
    """
    hb, wb = src.shape[0] // 8, src.shape[1] // 8
    out = np.empty((hb, 64, wb), np.int32)
    v = np.empty((64, wb), np.int64)
    for a in range(hb):
        for i in range(8):
            for j in range(8):
                row = src[8 * a + i]
                for b in range(wb):
                    v[8 * i + j, b] = np.int64(row[8 * b + j]) - 128
        for i in range(8):
            for b in range(wb):
                _fdct_1d(v, 8 * i, 1, b, True)
        for j in range(8):
            for b in range(wb):
                _fdct_1d(v, j, 8, b, False)
        for k in range(64):
            for b in range(wb):
                out[a, k, b] = v[k, b]
    return out


@jit
def _range_limit(x):  # pragma: no cover - compiled
    """libjpeg's post-IDCT range limit of a descaled output ``x``: ``x + 128`` clamped
    to 0-255 for ``|x| <= 512``, the table's wrap-around (``x & 1023``) beyond."""
    m = x & 1023
    if m < 128:
        return m + 128
    if m < 512:
        return 255
    if m < 896:
        return 0
    return m - 896


@jit
def requantised_block_mse(coef, src, table):  # pragma: no cover - compiled
    """(hb, wb) float32: per block, the mean of ``(src - decoded)^2`` after quantising ``coef``
    (from :func:`islow_fdct`) with ``table`` (8, 8) int64 and decoding with the integer IDCT.

    Quantisation rounds half away from zero, ``sign(t) floor((|t| + 4 q) / (8 q))``, computed
    as a float64 product with ``1 / (8 q)`` plus 1e-9: the exact quotient is an integer or at
    least ``1 / (8 q) >= 1/2040`` from one, far above the product's rounding error (< 2^-36).
    The block's sum of squares is an integer below 2^24: ``float32(sum) / 64`` is exact.
    """
    hb, wb = coef.shape[0], coef.shape[2]
    out = np.empty((hb, wb), np.float32)
    qv = np.empty(64, np.int64)
    half = np.empty(64)
    inv = np.empty(64)
    for k in range(64):
        qv[k] = table[k // 8, k % 8]
        half[k] = 4.0 * qv[k]
        inv[k] = 1.0 / (8.0 * qv[k])
    v = np.empty((64, wb), np.int64)
    acc = np.empty(wb, np.int64)
    for a in range(hb):
        for k in range(64):
            q, h, r = qv[k], half[k], inv[k]
            for b in range(wb):
                t = np.float64(coef[a, k, b])
                m = np.int64((abs(t) + h) * r + 1e-9)
                v[k, b] = (m if t >= 0 else -m) * q
        for j in range(8):
            for b in range(wb):
                _idct_1d(v, j, 8, b, True)
        for i in range(8):
            for b in range(wb):
                _idct_1d(v, 8 * i, 1, b, False)
        acc[:] = 0
        for i in range(8):
            row = src[8 * a + i]
            for j in range(8):
                for b in range(wb):
                    e = np.int64(row[8 * b + j]) - _range_limit(v[8 * i + j, b])
                    acc[b] += e * e
        for b in range(wb):
            out[a, b] = np.float32(acc[b]) / np.float32(64.0)
    return out


@register_warmup
def _warmup() -> None:
    z8 = np.zeros((8, 8), np.uint8)
    requantised_block_mse(islow_fdct(z8), z8, np.ones((8, 8), np.int64))
