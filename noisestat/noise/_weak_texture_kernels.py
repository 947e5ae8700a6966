"""Numba kernels of the Liu-Tanaka-Okutomi (2013) weak-texture noise estimator.

Private module: the kernels see only clean, C-contiguous float32 single-channel
pixels of shape (H, W) and uint8 "bad pixel" maps prepared by
:mod:`noisestat.noise.weak_texture`.

All kernels are serial ``@jit`` (cached on disk); the heavy linear algebra
(BLAS ``syrk``) runs outside them.

Patch positions are indexed by their top-left pixel ``(i, j)``,
``0 <= i <= H - p``, ``0 <= j <= W - p`` (every position, stride 1). A patch
vector is the p*p block in row-major order: element ``a * p + b`` is
``img[i + a, j + b]``.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["patch_texture", "gather_patches", "select_below", "find_runs", "run_moments"]


@jit
def patch_texture(img, bad, p):  # pragma: no cover - compiled
    """Texture strength and validity of every p x p patch.

    Texture strength (Liu et al. 2013, the trace of the gradient covariance)
    is the sum of squared central differences inside the patch::

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

    Serial and cached on disk (no parallel compile on every import).
    """
    h, w = img.shape
    hp = h - p + 1
    wp = w - p + 1
    tex = np.empty((hp, wp), np.float64)
    valid = np.empty((hp, wp), np.bool_)
    for i in range(hp):
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
def select_below(tex, keep, tau, removed):  # pragma: no cover - compiled
    """In place: ``keep &= tex < tau``; ``removed`` marks the patches dropped now.

    Returns the number of kept patches.
    """
    hp, wp = tex.shape
    n = 0
    for i in range(hp):
        for j in range(wp):
            removed[i, j] = False
            if keep[i, j]:
                if tex[i, j] < tau:
                    n += 1
                else:
                    keep[i, j] = False
                    removed[i, j] = True
    return n


@jit
def find_runs(sel):  # pragma: no cover - compiled
    """Horizontal runs of True in ``sel``: (row, start, end exclusive) int64 arrays."""
    hp, wp = sel.shape
    n = 0
    for i in range(hp):
        prev = False
        for j in range(wp):
            if sel[i, j] and not prev:
                n += 1
            prev = sel[i, j]
    ri = np.empty(n, np.int64)
    rs = np.empty(n, np.int64)
    re = np.empty(n, np.int64)
    k = 0
    for i in range(hp):
        j = 0
        while j < wp:
            if sel[i, j]:
                j0 = j
                while j < wp and sel[i, j]:
                    j += 1
                ri[k] = i
                rs[k] = j0
                re[k] = j
                k += 1
            else:
                j += 1
    return ri, rs, re


@jit
def run_moments(img, ri, rs, re, run_ptr, p, offs_u, offs_v, band, out):  # pragma: no cover - compiled
    """Second moments (and sums) of the patches in the given runs, via row prefix sums.

    For offset ``o = (u, v)`` (``offs_u[o], offs_v[o]``) and shift ``(a, b)``
    with ``(a + u, b + v)`` inside the patch, ``out[o, a * p + b]`` receives
    ``sum over run patches (i, j) of img[i+a, j+b] * img[i+a+u, j+b+v]``,
    i.e. the entry ``(a p + b, (a+u) p + b+v)`` of ``sum x x^T``. For the
    extra offset index ``o = len(offs_u)`` it receives ``sum img[i+a, j+b]``
    (the patch sum).

    Runs ``(ri, rs, re)`` (patch row, first and one-past-last patch column)
    are sorted by row; ``run_ptr[i]`` is the index of the first run of patch
    row ``i`` (length Hp + 1). Each run contributes a difference of two row
    prefix sums of the product image, so the cost is ``O(H W)`` per offset
    plus ``O(1)`` per run and shift instead of ``O(p**4)`` per patch. The
    prefix sums are computed band by band (``band`` patch rows) so that they
    stay in cache. Serial: the summation order is fixed.
    """
    h, w = img.shape
    hp = run_ptr.shape[0] - 1
    no = offs_u.shape[0]
    for o in range(no + 1):
        if o < no:
            u = offs_u[o]
            v = offs_v[o]
        else:
            u = 0
            v = 0
        x0 = max(0, -v)
        x1 = min(w, w - v)
        bmin = max(0, -v)
        bmax = min(p, p - v)
        na = p - u
        c = np.zeros((band + p, w + 1), np.float64)
        acc_o = np.zeros(p * p, np.float64)
        for i0 in range(0, hp, band):
            i1 = min(hp, i0 + band)
            if run_ptr[i1] == run_ptr[i0]:
                continue
            nrows = i1 - i0 + na - 1  # image rows i0 .. i1 + na - 2
            yy = 0
            if o < no:
                # four rows at a time: independent accumulation chains overlap in the CPU
                while yy + 4 <= nrows:
                    y = i0 + yy
                    s0 = 0.0
                    s1 = 0.0
                    s2 = 0.0
                    s3 = 0.0
                    for x in range(x0, x1):
                        s0 += np.float64(img[y, x]) * np.float64(img[y + u, x + v])
                        s1 += np.float64(img[y + 1, x]) * np.float64(img[y + 1 + u, x + v])
                        s2 += np.float64(img[y + 2, x]) * np.float64(img[y + 2 + u, x + v])
                        s3 += np.float64(img[y + 3, x]) * np.float64(img[y + 3 + u, x + v])
                        c[yy, x + 1] = s0
                        c[yy + 1, x + 1] = s1
                        c[yy + 2, x + 1] = s2
                        c[yy + 3, x + 1] = s3
                    for x in range(x1 + 1, w + 1):
                        c[yy, x] = s0
                        c[yy + 1, x] = s1
                        c[yy + 2, x] = s2
                        c[yy + 3, x] = s3
                    yy += 4
            while yy < nrows:
                y = i0 + yy
                acc = 0.0
                if o < no:
                    for x in range(x0, x1):
                        acc += np.float64(img[y, x]) * np.float64(img[y + u, x + v])
                        c[yy, x + 1] = acc
                else:
                    for x in range(x0, x1):
                        acc += np.float64(img[y, x])
                        c[yy, x + 1] = acc
                for x in range(x1 + 1, w + 1):
                    c[yy, x] = acc
                yy += 1
            for r in range(run_ptr[i0], run_ptr[i1]):
                ii = ri[r] - i0
                j0 = rs[r]
                j1 = re[r]
                for a in range(na):
                    for b in range(bmin, bmax):
                        acc_o[a * p + b] += c[ii + a, j1 + b] - c[ii + a, j0 + b]
        for k in range(p * p):
            out[o, k] = acc_o[k]


@jit
def gather_patches(img, keep, p, r0, offsets, out):  # pragma: no cover - compiled
    """Copy the kept patches of patch rows ``r0 .. r0+len(offsets)-2`` into ``out``.

    ``offsets[k]`` is the output row of the first kept patch of patch row
    ``r0 + k`` (an exclusive prefix sum of the kept counts, so that
    ``offsets[-1]`` is the total). ``out`` is float64 of shape
    (>= offsets[-1], p*p).
    """
    wp = keep.shape[1]
    nrow = offsets.shape[0] - 1
    for k in range(nrow):
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
    removed = np.zeros_like(keep)
    select_below(tex, keep, 1e9, removed)
    counts = keep.sum(axis=1)
    offsets = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty((int(offsets[-1]), 9), np.float64)
    gather_patches(img, keep, 3, 0, offsets, out)
    ri, rs, re = find_runs(keep)
    ou = np.array([0, 1], np.int64)
    ov = np.array([0, -1], np.int64)
    run_ptr = np.searchsorted(ri, np.arange(keep.shape[0] + 1)).astype(np.int64)
    run_moments(img, ri, rs, re, run_ptr, 3, ou, ov, 4, np.zeros((3, 9)))
