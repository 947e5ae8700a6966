"""Numba kernels of the local PCA map: window sums of cell Grams, covariance, eigenvalues, Chen's rule.

Private module: the public wrapper (:mod:`noisestat.maps.local_pca`) gathers
the patches and forms each cell's Gram sum with BLAS; the kernels here see
only C-contiguous arrays. Parallel kernels write one output element (an entry
of a Gram sum, or one window) per iteration and never reduce across threads,
so results do not depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup
from ..blocks.eigen import LANES, eigvalsh_lanes

__all__ = ["cell_row_sums", "window_row_sigmas", "chen_rule"]

#: Gram entries per parallel chunk of :func:`cell_row_sums`
CHUNK = 256


@pjit
def cell_row_sums(g, mx, out):  # pragma: no cover - compiled
    """Sums of ``mx`` consecutive cells along a row: ``out[j] = g[j] + ... + g[j + mx - 1]`` (float64).

    Computed as differences of the running (float64) sum over the cells, entry
    by entry: ``cs[j] = cs[j - 1] + g[j]``, ``out[0] = cs[mx - 1]``,
    ``out[j] = cs[j + mx - 1] - cs[j - 1]``. Parallel over chunks of entries.

    Parameters
    ----------
    g : ndarray (ncx, D, D), float32
        Gram sums of the cells of one cell row.
    mx : int
        Cells per window along the row.
    out : ndarray (ncx - mx + 1, D, D), float64
    """
    ncx, d1, _ = g.shape
    ne = d1 * d1
    nw = ncx - mx + 1
    gf = g.reshape(ncx, ne)
    of = out.reshape(nw, ne)
    nchunk = (ne + CHUNK - 1) // CHUNK
    for q in prange(nchunk):
        e0 = q * CHUNK
        e1 = min(ne, e0 + CHUNK)
        cs = np.empty((ncx, e1 - e0))
        for e in range(e0, e1):
            cs[0, e - e0] = np.float64(gf[0, e])
        for b in range(1, ncx):
            for e in range(e0, e1):
                cs[b, e - e0] = cs[b - 1, e - e0] + np.float64(gf[b, e])
        for e in range(e0, e1):
            of[0, e] = cs[mx - 1, e - e0]
        for b in range(1, nw):
            for e in range(e0, e1):
                of[b, e] = cs[b + mx - 1, e - e0] - cs[b - 1, e - e0]


@jit
def chen_rule(lam):  # pragma: no cover - compiled
    """Chen et al.'s rule on ascending eigenvalues ``lam`` (1-D): ``sqrt(max(tau_k, 0))`` for the largest passing k.

    ``tau_k`` is the mean of the k smallest eigenvalues; k passes when as many
    of them lie above ``tau_k`` as below (k = 1 always passes).
    """
    d = lam.shape[0]
    best = 0.0
    acc = 0.0
    for k in range(1, d + 1):
        acc += lam[k - 1]
        tau = acc / k
        above = 0
        below = 0
        for i in range(k):
            if lam[i] > tau:
                above += 1
            elif lam[i] < tau:
                below += 1
        if above == below:
            best = tau
    return math.sqrt(max(best, 0.0))


@pjit
def window_row_sigmas(rows, first, d, sigma, count):  # pragma: no cover - compiled
    """Chen sigma of every window of one window row.

    Parameters
    ----------
    rows : ndarray (my, nwx, d + 1, d + 1), float64
        Ring of the row sums (:func:`cell_row_sums`) of the window's ``my``
        cell rows; the oldest is ``rows[first]``. Entry ``[:d, :d]`` is the sum
        of ``x x^T``, row ``d`` the sum of ``x`` and ``[d, d]`` the count.
    first : int
        Ring index of the oldest cell row.
    d : int
        Patch dimension.
    sigma : ndarray (nwx,), float64
        Output; left unchanged where the window has ``<= d`` patches.
    count : ndarray (nwx,), int64
        Output: usable patches of each window.

    Notes
    -----
    Parallel over groups of :data:`~noisestat.blocks.eigen.LANES` windows,
    whose covariances are diagonalised side by side
    (:func:`noisestat.blocks.eigen.eigvalsh_lanes`); a window's eigenvalues
    do not depend on the other windows of its group.
    """
    my, nwx = rows.shape[:2]
    ngroups = (nwx + LANES - 1) // LANES
    for grp in prange(ngroups):
        j0 = grp * LANES
        nl = min(LANES, nwx - j0)
        a = np.zeros((d, d, nl))
        ev = np.empty((nl, d))
        mean = np.empty(d)
        for q in range(nl):
            j = j0 + q
            n = 0.0
            for t in range(my):  # the ring's rows oldest first, as the sums were always taken
                n += rows[(first + t) % my, j, d, d]
            count[j] = np.int64(np.rint(n))
            if not n > d:
                continue
            for i in range(d):
                si = 0.0
                for t in range(my):
                    si += rows[(first + t) % my, j, d, i]
                mean[i] = si / n
            for i in range(d):
                for k in range(i + 1):
                    sik = 0.0
                    for t in range(my):
                        sik += rows[(first + t) % my, j, i, k]
                    a[i, k, q] = sik / n - mean[i] * mean[k]
        eigvalsh_lanes(a, ev)
        for q in range(nl):
            if count[j0 + q] > d:
                sigma[j0 + q] = chen_rule(ev[q])


@register_warmup
def _warmup() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 40, 5)).astype(np.float32)
    x[:, :, 4] = 1.0
    g = np.matmul(x.transpose(0, 2, 1), x)
    out = np.empty((2, 5, 5))
    cell_row_sums(g, 2, out)
    rows = np.stack([out, out])
    sigma = np.full(2, np.nan)
    window_row_sigmas(rows, 1, 4, sigma, np.zeros(2, np.int64))
    chen_rule(np.linspace(0.0, 1.0, 4))
