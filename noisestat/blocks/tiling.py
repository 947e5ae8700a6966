"""The block tiling shared by the block-wise maps, and block values back to full resolution.

Non-overlapping blocks of side ``b`` from the origin; when the side is not a
multiple of ``b`` one more block, aligned with the far edge (it overlaps its
neighbour), covers the remainder. Pixel ``t`` belongs to block
``min(t // b, n_blocks - 1)``.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup
from ..heatmap import expand_grid  # the one definition, re-exported here beside the tiling

__all__ = ["block_starts", "block_index", "reflect", "reflect_index", "expand_grid"]


def block_starts(n: int, b: int) -> np.ndarray:
    """Start offsets of the blocks of side ``b`` tiling ``n`` samples (see module doc).

    ``b`` larger than ``n`` gives a single block of side ``n`` (starting at 0).
    """
    b = min(b, n)
    q, r = divmod(n, b)
    starts = [i * b for i in range(q)]
    if r:
        starts.append(n - b)
    return np.asarray(starts, dtype=np.int64)

def block_index(n: int, b: int, *, stride: int = 1) -> np.ndarray:
    """Block index of each of ``n`` full-resolution samples.

    The blocks tile a grid of ``ceil(n / stride)`` samples (``stride = 2`` for
    a wavelet subband); full-resolution sample ``t`` lies at grid position
    ``t // stride``.
    """
    ng = -(-n // stride)
    b = min(b, ng)
    nb = block_starts(ng, b).size
    t = np.arange(n, dtype=np.int64) // stride
    return np.minimum(t // b, nb - 1)

@jit
def reflect(t: int, n: int) -> int:  # pragma: no cover - compiled
    """Half-sample symmetric index of ``t`` in ``0..n-1`` (numpy 'symmetric', OpenCV BORDER_REFLECT).

    For Numba kernels (scalar); :func:`reflect_index` is the array version.
    """
    p = 2 * n
    m = t % p
    if m < 0:
        m += p
    if m >= n:
        m = p - 1 - m
    return m


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Half-sample symmetric extension (``d c b a | a b c d``; numpy 'symmetric')."""
    p = 2 * n
    t = np.mod(idx, p)
    return np.where(t >= n, p - 1 - t, t).astype(np.int64)

@register_warmup
def _warmup() -> None:
    for dtype in (np.float64, np.float32):
        expand_grid(np.zeros((2, 2), dtype), block_index(5, 2), block_index(5, 2))
    reflect(-1, 4)
