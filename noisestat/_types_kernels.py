"""Numba kernel of :meth:`noisestat.types.LoadedImage.gray` (private).

:func:`luma` is the float32 expression ``0.299 * r + 0.587 * g + 0.114 * b``
of numpy (each product and sum rounded to float32, left to right), compiled
without fast-math (no FMA contraction): the same bits as the numpy
expression, one pass and no temporaries. Rows are independent, so the result
does not depend on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

from ._numba import pjit, register_warmup

__all__ = ["luma"]


@pjit(fastmath=False)
def luma(px, out):
    """out[y, x] = BT.601 luma of the (H, W, 3) float32 pixels, float32."""
    h, w = px.shape[0], px.shape[1]
    cr = np.float32(0.299)
    cg = np.float32(0.587)
    cb = np.float32(0.114)
    for y in numba.prange(h):
        for x in range(w):
            v = np.float32(np.float32(cr * px[y, x, 0]) + np.float32(cg * px[y, x, 1]))
            out[y, x] = np.float32(v + np.float32(cb * px[y, x, 2]))


@register_warmup
def _warmup() -> None:
    px = np.zeros((2, 2, 3), np.float32)
    luma(px, np.empty((2, 2), np.float32))
    px.setflags(write=False)
    luma(px, np.empty((2, 2), np.float32))
