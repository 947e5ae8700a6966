"""Kernel of :func:`noisestat.localizers.fusion._map_stats`: every per-object pooling in one pass.

Callers pass clean flat arrays of one length: ``z`` float32, ``bins`` int64 in
0..nbins-1, ``lab`` int32 labels 0..n (others are skipped).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["pool_z"]


@jit(fastmath=False)  # float64 sums in raster order: the very values of np.bincount(lab, weights=z)
def pool_z(z, bins, lab, n, tail, nbins):  # pragma: no cover - compiled
    """Per label 0..n: sum of ``z``, counts of ``z > tail`` and ``z < -tail``, histogram of ``bins``."""
    total = np.zeros(n + 1, np.float64)
    hi = np.zeros(n + 1, np.int64)
    lo = np.zeros(n + 1, np.int64)
    hist = np.zeros((n + 1, nbins), np.int64)
    neg = -tail
    for i in range(z.shape[0]):
        k = lab[i]
        if k < 0 or k > n:
            continue
        x = z[i]
        total[k] += np.float64(x)
        if x > tail:
            hi[k] += 1
        if x < neg:
            lo[k] += 1
        hist[k, bins[i]] += 1
    return total, hi, lo, hist


@register_warmup
def _warmup() -> None:
    pool_z(np.zeros(2, np.float32), np.zeros(2, np.int64), np.zeros(2, np.int32), 0, np.float32(2.0), 3)
