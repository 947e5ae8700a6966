"""Image patches for the PCA noise estimators: gathering kernels, unusable-pixel integrals, BLAS threads.

Shared by :func:`noisestat.noise.pca.estimate_noise_pca` and the
``local_pca`` map. The kernels see only clean, C-contiguous float32 pixels of
shape (H, W, C) and int64 index arrays.

Patch vectors are stacked pixel-major with the channels interleaved: element
``(i * r + j) * C + c`` of the vector of the patch with origin ``(y, x)`` is
``pixels[y + i, x + j, c]``. Channel ``c``'s own r*r covariance is therefore
the ``[c::C, c::C]`` sub-block of the joint one.
"""

from __future__ import annotations

import contextlib
import math
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from numba import prange

from .._numba import jit, pjit, register_warmup

__all__ = ["gather_patches", "cell_row_grams", "bad_pixel_map", "unusable_integral", "channel_center",
           "single_thread_blas"]


@jit
def gather_patches(px, oy, ox, start, count, r, center, buf):  # pragma: no cover - compiled
    """Write patches ``start .. start+count-1`` into ``buf[:count]``.

    ``buf`` has shape (>= count, r*r*C + 1); each row holds the patch minus
    ``center`` (one value per channel) followed by a 1, so that ``buf.T @ buf``
    carries the patch sum in its last row and the patch count in its corner.
    Serial on purpose: the caller alternates it with multi-threaded BLAS, and
    idle OpenMP workers of a parallel kernel spin and slow BLAS down.
    """
    nc = px.shape[2]
    d = r * r * nc
    for k in range(count):
        y = oy[start + k]
        x = ox[start + k]
        m = 0
        for i in range(r):
            for j in range(r):
                for c in range(nc):
                    buf[k, m] = px[y + i, x + j, c] - center[c]
                    m += 1
        buf[k, d] = 1.0

@jit
def bad_pixel_map(px, white, allowed):  # pragma: no cover - compiled
    """uint8 map: 1 where any channel is clipped (<= 0 or >= white) or ``allowed`` is 0."""
    h, w, nc = px.shape
    out = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            if allowed[y, x] == 0:
                out[y, x] = 1
                continue
            for c in range(nc):
                v = px[y, x, c]
                if v <= 0.0 or v >= white:
                    out[y, x] = 1
                    break
    return out

@pjit
def cell_row_grams(px, valid, r, cell, a, center, g):  # pragma: no cover - compiled
    """Gram sums of the patches of every cell of cell row ``a``: ``g[b] = X_b^T X_b`` (float32).

    Patch origins ``(y, x)`` are grouped into cells of ``cell x cell``
    origins; cell ``(a, b)`` holds ``a*cell <= y < (a+1)*cell`` and
    ``b*cell <= x < (b+1)*cell``. Row ``(y - a*cell)*cell + x - b*cell`` of
    ``X_b`` is ``[patch - center, 1]`` when ``valid[y, x]`` is non-zero and
    zeros otherwise (also past the last origin), so ``g[b]`` (shape
    (d+1, d+1)) is the Gram sum of the cell's usable patches with their sums
    in row and column ``d`` and their count in the corner. Parallel over the
    cells: each gathers its patches into its own buffer (cache-resident)
    and multiplies it by BLAS (``np.dot``, float32: exact for 8-bit data,
    whose sums stay below 2**24); the caller runs BLAS single-threaded
    (:func:`single_thread_blas`).
    """
    nc = px.shape[2]
    d = r * r * nc
    vy, vx = valid.shape
    ncx = g.shape[0]
    for b in prange(ncx):
        buf = np.empty((cell * cell, d + 1), np.float32)
        for ly in range(cell):
            y = a * cell + ly
            for lx in range(cell):
                x = b * cell + lx
                row = buf[ly * cell + lx]
                if y >= vy or x >= vx or valid[y, x] == 0:
                    for m in range(d + 1):
                        row[m] = 0.0
                    continue
                m = 0
                for i in range(r):
                    for j in range(r):
                        for c in range(nc):
                            row[m] = px[y + i, x + j, c] - center[c]
                            m += 1
                row[d] = 1.0
        g[b] = np.dot(buf.T, buf)

def unusable_integral(px: np.ndarray, white: float, region: np.ndarray | None) -> np.ndarray:
    """Integral image of the unusable pixels: clipped in any channel (``<= 0`` or ``>= white``) or outside ``region``.

    Parameters
    ----------
    px : ndarray, float32, shape (H, W, C), C-contiguous
    white : float
        Saturation value of the data.
    region : ndarray of bool, shape (H, W), or None

    Returns
    -------
    ndarray, int32, shape (H + 1, W + 1)
        ``ii[y, x]`` = number of unusable pixels in ``px[:y, :x]``, so a
        patch's count is four look-ups.
    """
    h, w = px.shape[:2]
    allowed = np.ones((h, w), np.uint8) if region is None else region.view(np.uint8)
    bad = bad_pixel_map(px, np.float32(white), np.ascontiguousarray(allowed))
    ii = np.zeros((h + 1, w + 1), np.int32)
    np.cumsum(bad, axis=0, dtype=np.int32, out=ii[1:, 1:])
    np.cumsum(ii[1:, 1:], axis=1, out=ii[1:, 1:])
    return ii

def channel_center(px: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    """Rounded per-channel mean (float32): subtracting it keeps float32 products accurate.

    Any value near the mean does (the covariance does not depend on it), so
    large inputs are subsampled.
    """
    step = max(1, int(math.sqrt(px.shape[0] * px.shape[1] / 250_000)))
    if step > 1:
        px = px[::step, ::step]
        region = None if region is None else region[::step, ::step]
    sel = px if region is None else px[region]
    m = sel.reshape(-1, px.shape[2]).mean(axis=0, dtype=np.float64) if sel.size else np.zeros(px.shape[2])
    return np.round(m).astype(np.float32)

def single_thread_blas() -> AbstractContextManager[Any]:
    """Limit BLAS to one thread for a loop of many medium-sized products.

    Multi-threaded OpenBLAS, called ~100 times in a row on a machine whose
    cores are busy, was measured 10-30x slower than single-threaded (idle
    threads spin and are descheduled); single-threaded it costs ~15 % on an
    idle machine. Uses threadpoolctl (a scikit-learn dependency) when present.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")

@register_warmup
def _warmup() -> None:
    px = np.ones((6, 6, 1), np.float32)
    oy = np.zeros(1, np.int64)
    buf = np.empty((1, 5), np.float32)
    center = np.zeros(1, np.float32)
    gather_patches(px, oy, oy, 0, 1, 2, center, buf)
    cg = np.empty((1, 5, 5), np.float32)
    frozen = px.copy()
    frozen.flags.writeable = False  # local_pca passes the image's read-only pixels
    for p in (px, frozen):
        bad_pixel_map(p, np.float32(255.0), np.ones((6, 6), np.uint8))
        cell_row_grams(p, np.ones((5, 5), np.uint8), 2, 2, 0, center, cg)
