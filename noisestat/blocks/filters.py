"""Small exact filters on block grids (one definition for the JPEG maps).

:func:`median_filter` is the 2-D median of an odd square window, equal to
``scipy.ndimage.median_filter(a, size=size, mode=mode, cval=cval)`` for the
``"nearest"`` and ``"constant"`` modes (the same order statistic of the same
values), without importing SciPy's ndimage on the path of the JPEG maps.
"""

from __future__ import annotations

import functools

import numpy as np

from .._validate import check_float, check_int

__all__ = ["median_filter", "median_network", "MEDIAN_MODES"]

#: border modes of :func:`median_filter` (as in ``scipy.ndimage``)
MEDIAN_MODES = ("nearest", "constant")


@functools.lru_cache(maxsize=16)
def median_network(n: int) -> np.ndarray:
    """Comparators that bring the middle order statistics of ``n`` values to positions ``(n - 1) // 2``
    and ``n // 2`` (one position for odd ``n``).

    Batcher's odd-even merge sort for the next power of two, without the
    comparators that touch the padding (it would hold +inf and never move)
    and without those that cannot reach the middle positions (a backward
    pass). Applied in order, each ``(p, q)`` puts the smaller of positions
    ``p < q`` at ``p``; positions ``n`` and above are never read, so a
    buffer may be padded with +inf or not.

    Parameters
    ----------
    n : int
        Number of values (at least 1).

    Returns
    -------
    ndarray of int64, shape (m, 2), read-only

    References
    ----------
    .. [1] K. E. Batcher, "Sorting networks and their applications", Proc.
       AFIPS Spring Joint Computer Conference 1968, 307-314.
       https://doi.org/10.1145/1468075.1468121

    Examples
    --------
    >>> v = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    >>> for p, q in median_network(5):
    ...     v[p], v[q] = min(v[p], v[q]), max(v[p], v[q])
    >>> float(v[2])
    3.0
    """
    n = check_int(n, "n", minimum=1)
    size = 1 << max(n - 1, 0).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    needed = {(n - 1) // 2, n // 2}
    kept = []
    for a, b in reversed(pairs):
        if a in needed or b in needed:
            kept.append((a, b))
            needed.update((a, b))
    out = np.array(kept[::-1], dtype=np.int64).reshape(-1, 2)
    out.setflags(write=False)
    return out


def median_filter(a: np.ndarray, *, size: int, mode: str = "nearest", cval: float = 0.0) -> np.ndarray:
    """Median of every odd ``size x size`` window of a 2-D array.

    Parameters
    ----------
    a : array_like, shape (H, W)
        Finite real values (a block grid: at most a few million entries).
    size : int
        Side of the window, odd and at least 1 (1 returns a copy).
    mode : {"nearest", "constant"}, default "nearest"
        Beyond the array: the nearest element repeated, or ``cval``.
    cval : float, default 0.0
        The value beyond the array in ``"constant"`` mode.

    Returns
    -------
    ndarray, shape (H, W)
        float32 for float32 input, else float64.

    Raises
    ------
    ValueError
        ``a`` is not 2-D or holds NaN or infinity, ``size`` is even or below
        1, or ``mode`` is not one of :data:`MEDIAN_MODES`.

    Notes
    -----
    ``out[i, j]`` is the middle value, :math:`(s^2 + 1)/2`-th smallest, of
    the :math:`s^2` window values :math:`a[i + d_i, j + d_j]`,
    :math:`|d_i|, |d_j| \\le (s - 1)/2`, selected by the comparator
    network :func:`median_network` applied to the windows of one row side by
    side (branchless, vectorised; :math:`O(H W s^2 \\log^2 s)`). Meant for
    the small windows (3-9) of the block-grid maps. Memory: the output, plus
    :math:`8 s^2 W` bytes per thread (the windows of one row).

    Examples
    --------
    >>> import numpy as np
    >>> median_filter(np.array([[0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]), size=3).tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    from ._filters_kernels import median_window

    size = check_int(size, "size", minimum=1)
    if size % 2 == 0:
        raise ValueError(f"size={size} must be odd (the window is centred on each element)")
    if mode not in MEDIAN_MODES:
        raise ValueError(f"mode={mode!r}: expected one of {MEDIAN_MODES}")
    cval = check_float(cval, "cval")
    a = np.asarray(a)
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    x = np.ascontiguousarray(a, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"a must be 2-D (a block grid), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("a holds NaN or infinity; the median of such windows is not defined here")
    out = np.empty_like(x)
    if size == 1 or x.size == 0:
        out[...] = x
    else:
        median_window(x, size, mode == "nearest", cval, median_network(size * size), out)
    return out.astype(dtype, copy=False)  # a median is one of the values: exact in float32 too
