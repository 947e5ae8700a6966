"""Kernel of the noise-floor feature (:func:`noisestat.localizers._object_features._floor_features`).

Private module; callers pass C-contiguous arrays.

:func:`tile_extremes` gives the per-tile minimum and maximum of the luma and
of the labels in one parallel pass over tile rows (minima and maxima are
exact, so the values are those of numpy's reductions over the reshaped
tiles; each tile row is written by one thread).

:func:`tile_covariance` gives the per-tile channel covariance sums of the
floor's wavelet coefficients, ``np.einsum("akbld,akble->abde", t, t)`` of the
tiles ``t`` (the same float64 products summed in the same order, rows ``k``
then columns ``l`` of the tile, so the same values), in one parallel pass
over tile rows.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import pjit, register_warmup

__all__ = ["tile_extremes", "tile_covariance"]


@pjit(fastmath=False)
def tile_extremes(gray, lab, block, hb, wb):  # pragma: no cover - compiled
    """(min, max) of ``gray`` and of ``lab`` over each ``block`` x ``block`` tile of the top-left hb x wb tiles."""
    gmin = np.empty((hb, wb), gray.dtype)
    gmax = np.empty((hb, wb), gray.dtype)
    lmin = np.empty((hb, wb), lab.dtype)
    lmax = np.empty((hb, wb), lab.dtype)
    for a in numba.prange(hb):
        for b in range(wb):
            r0, c0 = a * block, b * block
            g0 = gray[r0, c0]
            g1 = g0
            l0 = lab[r0, c0]
            l1 = l0
            for i in range(r0, r0 + block):
                for j in range(c0, c0 + block):
                    g = gray[i, j]
                    if g < g0:
                        g0 = g
                    if g > g1:
                        g1 = g
                    v = lab[i, j]
                    if v < l0:
                        l0 = v
                    if v > l1:
                        l1 = v
            gmin[a, b], gmax[a, b], lmin[a, b], lmax[a, b] = g0, g1, l0, l1
    return gmin, gmax, lmin, lmax


@pjit(fastmath=False)
def tile_covariance(d, half, hb, wb):  # pragma: no cover - compiled
    """(hb, wb, C, C) float64: per ``half`` x ``half`` tile of ``d`` (H, W, C), ``sum_kl d[., ., p] d[., ., q]``.

    Sums run over the tile's rows, then its columns (einsum's order); the
    matrix is symmetric (``x y == y x`` exactly), so the lower triangle is copied.
    """
    nc = d.shape[2]
    out = np.empty((hb, wb, nc, nc), np.float64)
    for a in numba.prange(hb):
        for b in range(wb):
            for p in range(nc):
                for q in range(p, nc):
                    s = 0.0
                    for k in range(a * half, a * half + half):
                        for j in range(b * half, b * half + half):
                            s += d[k, j, p] * d[k, j, q]
                    out[a, b, p, q] = s
                    out[a, b, q, p] = s
    return out


@register_warmup
def _warmup() -> None:
    tile_covariance(np.zeros((4, 4, 3)), 2, 2, 2)
    for dt in (np.int32, np.int64):
        tile_extremes(np.zeros((4, 4), np.float32), np.zeros((4, 4), dt), 2, 2, 2)
