"""Numba kernels of the Liu-Tanaka-Okutomi (2013) weak-texture noise estimator.

Private module: the kernels see only clean, C-contiguous float32 single-channel
pixels of shape (H, W) and uint8 "bad pixel" maps prepared by
:mod:`noisestat.noise.weak_texture`.

Patch positions are indexed by their top-left pixel ``(i, j)``,
``0 <= i <= H - p``, ``0 <= j <= W - p`` (every position, stride 1). A patch
vector is the p*p block in row-major order: element ``a * p + b`` is
``img[i + a, j + b]``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup

__all__ = ["patch_texture", "gather_patches", "select_below"]


@pjit
def patch_texture(img, bad, p):  # pragma: no cover - compiled
    """Texture strength and validity of every p x p patch.

    Texture strength (Liu et al. 2013, eq. 9 with the trace of the gradient
    covariance) is the sum of squared central differences inside the patch::

        xi = sum_{a < p, 0 < b < p-1} ((x[a, b+1] - x[a, b-1]) / 2)**2
           + sum_{0 < a < p-1, b < p} ((x[a+1, b] - x[a-1, b]) / 2)**2

    i.e. ``x^T (D_h^T D_h + D_v^T D_v) x`` with the "valid" convolution
    matrices of the kernel [-1/2, 0, 1/2]; only pixels of the patch enter.

    Parameters
    ----------
    img : float32 (H, W)
    bad : uint8 (H, W), 1 where the pixel may not be used (clipped / outside
        the region)
    p : int, patch side (>= 3)

    Returns
    -------
    tex : float64 (H-p+1, W-p+1)
    valid : bool (H-p+1, W-p+1), True when no pixel of the patch is bad

    One iteration per patch row writes only that row: results do not depend
    on the number of threads.
    """
    h, w = img.shape
    hp = h - p + 1
    wp = w - p + 1
    tex = np.empty((hp, wp), np.float64)
    valid = np.empty((hp, wp), np.bool_)
    for i in prange(hp):
        colh = np.zeros(w, np.float64)
        colv = np.zeros(w, np.float64)
        colb = np.zeros(w, np.int64)
        for a in range(p):
            y = i + a
            for x in range(1, w - 1):
                d = 0.5 * (np.float64(img[y, x + 1]) - np.float64(img[y, x - 1]))
                colh[x] += d * d
            if a >= 1 and a <= p - 2:
                for x in range(w):
                    d = 0.5 * (np.float64(img[y + 1, x]) - np.float64(img[y - 1, x]))
                    colv[x] += d * d
            for x in range(w):
                colb[x] += bad[y, x]
        for j in range(wp):
            s = 0.0
            for b in range(1, p - 1):
                s += colh[j + b]
            for b in range(p):
                s += colv[j + b]
            tex[i, j] = s
            nb = 0
            for b in range(p):
                nb += colb[j + b]
            valid[i, j] = nb == 0
    return tex, valid


@jit
def select_below(tex, keep, tau):  # pragma: no cover - compiled
    """In place: ``keep &= tex < tau``; returns the number of kept patches."""
    hp, wp = tex.shape
    n = 0
    for i in range(hp):
        for j in range(wp):
            if keep[i, j]:
                if tex[i, j] < tau:
                    n += 1
                else:
                    keep[i, j] = False
    return n


@pjit
def gather_patches(img, keep, p, r0, offsets, out):  # pragma: no cover - compiled
    """Copy the kept patches of patch rows ``r0 .. r0+len(offsets)-2`` into ``out``.

    ``offsets[k]`` is the output row of the first kept patch of patch row
    ``r0 + k`` (an exclusive prefix sum of the kept counts, so that
    ``offsets[-1]`` is the total). ``out`` is float64 of shape
    (>= offsets[-1], p*p). Each patch row writes its own slice of ``out``:
    results do not depend on the number of threads.
    """
    wp = keep.shape[1]
    nrow = offsets.shape[0] - 1
    for k in prange(nrow):
        i = r0 + k
        m = offsets[k]
        for j in range(wp):
            if keep[i, j]:
                q = 0
                for a in range(p):
                    for b in range(p):
                        out[m, q] = img[i + a, j + b]
                        q += 1
                m += 1


@register_warmup
def _warmup() -> None:
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    bad = np.zeros((8, 8), np.uint8)
    tex, valid = patch_texture(img, bad, 3)
    keep = valid.copy()
    select_below(tex, keep, 1e9)
    counts = keep.sum(axis=1)
    offsets = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty((int(offsets[-1]), 9), np.float64)
    gather_patches(img, keep, 3, 0, offsets, out)
