"""Small exact filters on block grids (one definition for the JPEG maps).

:func:`median_filter` is the 2-D median of an odd square window, equal to
``scipy.ndimage.median_filter(a, size=size, mode=mode, cval=cval)`` for the
``"nearest"`` and ``"constant"`` modes (the same order statistic of the same
values), without importing SciPy's ndimage on the path of the JPEG maps.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_float, check_int

__all__ = ["median_filter", "MEDIAN_MODES"]

#: border modes of :func:`median_filter` (as in ``scipy.ndimage``)
MEDIAN_MODES = ("nearest", "constant")


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
    :math:`|d_i|, |d_j| \\le (s - 1)/2`. Cost: :math:`O(H W s^4)` worst case
    (insertion sort of each window); meant for the small windows (3-7) of
    the block-grid maps. Memory: the output only.

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
        median_window(x, size, mode == "nearest", cval, out)
    return out.astype(dtype, copy=False)  # a median is one of the values: exact in float32 too
