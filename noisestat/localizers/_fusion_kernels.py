"""Kernel of :func:`noisestat.localizers.fusion._map_stats`: every per-object pooling in one pass.

Callers pass clean flat arrays of one length: ``z`` float32 (finite), ``lab``
int32 labels 0..n (others are skipped).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["pool_z"]


@jit(fastmath=False)  # float64 sums in raster order: the very values of np.bincount(lab, weights=z)
def pool_z(z, lab, n, clip, tail, step, nbins):  # pragma: no cover - compiled
    """Per label 0..n, of ``zc = clip(z, -clip, clip)`` (float32): sum, counts of ``zc > tail`` and
    ``zc < -tail``, histogram of the bins ``clip(rint((zc + clip) / step), 0, nbins - 1)``.

    The bin arithmetic is numpy's on float32 arrays (``(zc + clip) / step`` in float32).
    """
    total = np.zeros(n + 1, np.float64)
    hi = np.zeros(n + 1, np.int64)
    lo = np.zeros(n + 1, np.int64)
    hist = np.zeros((n + 1, nbins), np.int64)
    neg = -tail
    lo_clip = -clip
    for i in range(z.shape[0]):
        k = lab[i]
        if k < 0 or k > n:
            continue
        x = z[i]
        if x < lo_clip:
            x = lo_clip
        elif x > clip:
            x = clip
        total[k] += np.float64(x)
        if x > tail:
            hi[k] += 1
        if x < neg:
            lo[k] += 1
        b = int(np.rint((x + clip) / step))
        hist[k, min(max(b, 0), nbins - 1)] += 1
    return total, hi, lo, hist


@register_warmup
def _warmup() -> None:
    pool_z(np.zeros(2, np.float32), np.zeros(2, np.int32), 0, np.float32(6.0), np.float32(2.0),
           np.float32(0.1), 3)
