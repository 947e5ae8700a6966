"""Kernels of :func:`noisestat.localizers.fusion._map_stats`: every per-object pooling in one pass.

Callers pass clean flat arrays of one length: ``z`` / ``x`` float32, ``lab``
int32 labels 0..n (others are skipped).

* :func:`pool_z` pools a robust z that is already computed (finite).
* :func:`pool_robust_z` computes it on the fly from the transformed map ``x``
  and its robust centre and spread, with the float32 arithmetic of
  :func:`noisestat.heatmap.robust_z` (``(x - med) / scale``, 0 where not
  finite): the same sums as ``pool_z(robust_z(x))`` without the full-size z.
* :func:`label_counts` is ``np.bincount(lab, minlength=n + 1)`` of the labels 0..n.

The float64 sum of an object accumulates in a register while consecutive
pixels belong to it: the same additions in the same raster order as
``np.bincount(lab, weights=z)``, without a store and reload per pixel.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["pool_z", "pool_robust_z", "label_counts"]


@jit(fastmath=False)
def _pool(x, lab, n, med, scale, centre, clip, tail, step, nbins):  # pragma: no cover - compiled
    """Shared loop of :func:`pool_z` (``centre=False``: ``x`` is z) and :func:`pool_robust_z`."""
    total = np.zeros(n + 1, np.float64)
    hi = np.zeros(n + 1, np.int64)
    lo = np.zeros(n + 1, np.int64)
    hist = np.zeros((n + 1, nbins), np.int64)
    neg = -tail
    lo_clip = -clip
    cur = -1  # label whose running sum is in ``acc``
    acc = 0.0
    for i in range(x.shape[0]):
        k = lab[i]
        if k < 0 or k > n:
            continue
        v = x[i]
        if centre:
            v = np.float32(np.float32(v - med) / scale)
            if not math.isfinite(v):
                v = np.float32(0.0)
        v = min(max(v, lo_clip), clip)
        if k != cur:
            if cur >= 0:
                total[cur] = acc
            cur = k
            acc = total[k]
        acc += np.float64(v)
        hi[k] += v > tail
        lo[k] += v < neg
        hist[k, min(max(int(np.rint((v + clip) / step)), 0), nbins - 1)] += 1
    if cur >= 0:
        total[cur] = acc
    return total, hi, lo, hist


@jit(fastmath=False)  # float64 sums in raster order: the very values of np.bincount(lab, weights=z)
def pool_z(z, lab, n, clip, tail, step, nbins):  # pragma: no cover - compiled
    """Per label 0..n, of ``zc = clip(z, -clip, clip)`` (float32): sum, counts of ``zc > tail`` and
    ``zc < -tail``, histogram of the bins ``clip(rint((zc + clip) / step), 0, nbins - 1)``.

    The bin arithmetic is numpy's on float32 arrays (``(zc + clip) / step`` in float32).
    """
    return _pool(z, lab, n, np.float32(0.0), np.float32(1.0), False, clip, tail, step, nbins)


@jit(fastmath=False)
def pool_robust_z(x, med, scale, lab, n, clip, tail, step, nbins):  # pragma: no cover - compiled
    """:func:`pool_z` of ``z = (x - med) / scale`` (float32; 0 where not finite), computed per pixel."""
    return _pool(x, lab, n, med, scale, True, clip, tail, step, nbins)


@jit
def label_counts(lab, n):  # pragma: no cover - compiled
    """Number of pixels of every label 0..n (int64, others skipped)."""
    out = np.zeros(n + 1, np.int64)
    for i in range(lab.shape[0]):
        k = lab[i]
        if 0 <= k <= n:
            out[k] += 1
    return out


@register_warmup
def _warmup() -> None:
    z = np.zeros(2, np.float32)
    lab = np.zeros(2, np.int32)
    args = (np.float32(6.0), np.float32(2.0), np.float32(0.1), 3)
    pool_z(z, lab, 0, *args)
    pool_robust_z(z, np.float32(0.0), np.float32(1.0), lab, 0, *args)
    label_counts(lab, 0)
