"""Fixed mapping from a raw statistic to a heatmap in [0, 1].

Heatmap values are comparable across images: they are never min-max
normalised per image. The mapping is a robust z-score of the raw statistic
(median and MAD over the image, or over a reference region) passed through a
logistic function:

.. math::

    z = \\frac{x - \\operatorname{median}(x)}{1.4826\\,\\operatorname{MAD}(x)}, \\qquad
    h = \\frac{1}{1 + \\exp(-(z' - z_0)/s)}

with :math:`z' = |z|` for two-sided statistics (a noise level that is either
higher or lower than the rest of the image is suspicious) and :math:`z' = z`
for one-sided ones. Defaults :math:`z_0 = 2.5`, :math:`s = 0.5`: a pixel 2.5
robust standard deviations away from the image's typical value maps to 0.5.
"""

from __future__ import annotations

import numpy as np

from . import _heatmap_kernels as _k

__all__ = ["expand_grid", "map_quantile", "robust_logistic", "robust_logistic_blocks", "robust_logistic_grid", "robust_z",
           "robust_centre_scale", "Z_CENTER", "Z_SCALE", "LOG_MIN_SCALE"]

#: ``expand_grid(grid, ridx, cidx)``: ``out[y, x] = grid[ridx[y], cidx[x]]`` as float32, block values at
#: full resolution (the one definition; :mod:`noisestat.blocks.tiling` re-exports it)
expand_grid = _k.expand

Z_CENTER = 2.5
Z_SCALE = 0.5
#: Smallest spread used for the z-score of a log noise level: a 5 % change in
#: noise level is at most one robust SD. On an image with one uniform noise
#: level, estimation scatter alone would otherwise push pixels past 0.5.
LOG_MIN_SCALE = 0.05


def _median(x: np.ndarray) -> float:
    """``np.median`` of the finite values of a C-contiguous 1-D float32 array (exact selection, no copy).

    NaN when there are none.
    """
    n, a, b = _k.rank_pair(x.view(np.uint32), -1.0)
    if n == 0:
        return float("nan")
    ab = np.array([a, b], np.uint32).view(np.float32)
    return float(ab[1]) if n % 2 else float((ab[0] + ab[1]) / 2)


def _center_scale(x: np.ndarray, reference: np.ndarray | None, min_scale: float,
                  scratch: np.ndarray | None = None) -> tuple[float, float] | None:
    """(median, spread) of the robust z-score of float32 ``x`` (None when no finite reference value).

    ``scratch``: an optional 1-D float32 array of ``x.size`` elements (not ``x``) that holds the
    absolute deviations when there is no reference (saves an allocation; overwritten).
    """
    # the reference values as one contiguous float32 vector (the map itself when there is no reference);
    # the kernels skip non-finite values
    flat = np.ascontiguousarray(x).reshape(-1) if reference is None else np.ascontiguousarray(x[reference]).reshape(-1)
    med = _median(flat)
    if med != med:
        return None
    dev = scratch if reference is None and scratch is not None else np.empty(flat.size, np.float32)
    m = _k.abs_dev(flat, np.float32(med), dev)
    mad = _median(dev[:m]) * 1.4826
    if not mad > 0:
        # more than half the values equal the median: fall back on the mean
        # absolute deviation, then on an absolute floor
        ref = flat[np.isfinite(flat)]
        mad = float(np.mean(np.abs(ref - med))) * 1.2533
    floor = 1e-6 * max(abs(med), 1.0)
    return med, max(mad, floor, float(min_scale))


def robust_centre_scale(raw: np.ndarray, *, reference: np.ndarray | None = None,
                        min_scale: float = 0.0) -> tuple[float, float] | None:
    """The median and spread of :func:`robust_z` (float32 ``raw``, statistics over ``raw[reference]``).

    Parameters
    ----------
    raw : ndarray
        The statistic (cast to float32); non-finite values are skipped.
    reference : ndarray of bool or None, default None
        Pixels the statistics are taken over (None: all).
    min_scale : float, default 0.0
        Lower bound on the spread (in the units of ``raw``).

    Returns
    -------
    tuple of float or None
        ``(median, spread)``, spread = ``max(1.4826 MAD, 1e-6 max(|median|, 1), min_scale)``
        (the mean absolute deviation times 1.2533 when the MAD is 0); None when
        there is no finite reference value (:func:`robust_z` is then 0 everywhere).
        ``robust_z(raw)`` is ``(raw - float32(median)) / float32(spread)`` in
        float32, 0 where not finite.

    Examples
    --------
    >>> robust_centre_scale(np.array([1.0, 2.0, 4.0, np.nan]))
    (2.0, 1.4826)
    """
    return _center_scale(np.asarray(raw, dtype=np.float32), reference, min_scale)


def robust_z(raw: np.ndarray, *, reference: np.ndarray | None = None, min_scale: float = 0.0) -> np.ndarray:
    """Robust z-score of ``raw`` (float32), using ``raw[reference]`` for the statistics.

    ``min_scale`` is a lower bound on the spread (in the units of ``raw``).
    """
    x = np.asarray(raw, dtype=np.float32)
    cs = robust_centre_scale(x, reference=reference, min_scale=min_scale)
    if cs is None:
        return np.zeros_like(x)
    med, scale = cs
    z = (x - np.float32(med)) / np.float32(scale)
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def robust_logistic(
    raw: np.ndarray,
    *,
    two_sided: bool = True,
    center: float = Z_CENTER,
    scale: float = Z_SCALE,
    reference: np.ndarray | None = None,
    min_scale: float = 0.0,
) -> np.ndarray:
    """Map ``raw`` to [0, 1] by the package's fixed robust-z logistic (see module doc).

    Maps of log noise levels pass ``min_scale=LOG_MIN_SCALE``.
    """
    x = np.ascontiguousarray(raw, dtype=np.float32)
    out = np.empty(x.shape, np.float32)  # also the scratch of the deviations (written only afterwards)
    cs = _center_scale(x, reference, min_scale, out.reshape(-1))
    med, spread = cs if cs is not None else (0.0, 1.0)  # no finite value: z = 0 everywhere
    if cs is None:
        x = np.zeros_like(x)
    _k.logistic_arg(x.reshape(-1), np.float32(med), np.float32(spread), bool(two_sided), np.float32(center),
                    np.float32(scale), out.reshape(-1))
    np.exp(out, out=out)  # 1 / (1 + exp(-t)), float32 as before
    out += np.float32(1.0)
    return np.divide(np.float32(1.0), out, out=out)


def _weighted_middle(x: np.ndarray, counts: np.ndarray) -> float:
    """``np.median`` of ``x`` with value ``x[i]`` repeated ``counts[i]`` times (finite x only; NaN if none)."""
    ok = np.isfinite(x) & (counts > 0)
    v, c = x[ok], counts[ok]
    n = int(c.sum())
    if n == 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(c[order])
    a, b = (v[order[np.searchsorted(cum, k, side="right")]] for k in ((n - 1) // 2, n // 2))
    return float(b) if n % 2 else float((np.float32(a) + np.float32(b)) / 2)


def robust_logistic_blocks(
    grid: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    two_sided: bool = True,
    center: float = Z_CENTER,
    scale: float = Z_SCALE,
    min_scale: float = 0.0,
) -> np.ndarray | None:
    """The block values of :func:`robust_logistic_grid` before expansion, or None.

    ``expand_grid(robust_logistic_blocks(grid, rows, cols, ...), rows, cols)``
    is ``robust_logistic_grid(grid, rows, cols, ...)``. None when the
    statistics need the full-resolution map (no finite value, or a zero MAD:
    the mean-deviation fallback sums over pixels); the caller then uses
    :func:`robust_logistic_grid`.

    Returns
    -------
    ndarray, shape (Hb, Wb), float32, or None
    """
    g = np.ascontiguousarray(grid, dtype=np.float32)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    counts = np.outer(np.bincount(rows, minlength=g.shape[0]), np.bincount(cols, minlength=g.shape[1])).ravel()
    x = g.ravel()
    med = _weighted_middle(x, counts)
    if med != med:
        return None
    dev = np.abs(x - np.float32(med))
    mad = _weighted_middle(dev, counts) * 1.4826
    if not mad > 0:  # the mean-deviation fallback sums over pixels: done at full resolution
        return None
    spread = max(mad, 1e-6 * max(abs(med), 1.0), float(min_scale))
    out = np.empty(x.shape, np.float32)
    _k.logistic_arg(x, np.float32(med), np.float32(spread), bool(two_sided), np.float32(center),
                    np.float32(scale), out)
    np.exp(out, out=out)
    out += np.float32(1.0)
    np.divide(np.float32(1.0), out, out=out)
    return out.reshape(g.shape)


def robust_logistic_grid(
    grid: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    two_sided: bool = True,
    center: float = Z_CENTER,
    scale: float = Z_SCALE,
    min_scale: float = 0.0,
) -> np.ndarray:
    """:func:`robust_logistic` of a block map at full resolution, computed on the blocks.

    Equal to ``robust_logistic(expand_grid(grid, rows, cols), ...)`` (the
    same float32 values): the median and MAD of the expanded map are the
    pixel-count-weighted order statistics of the blocks, and the logistic is
    elementwise, so it is applied per block and then expanded.

    Parameters
    ----------
    grid : ndarray, shape (Hb, Wb)
        Block values (cast to float32).
    rows, cols : ndarray of int
        Block row of every image row and block column of every image column
        (:func:`noisestat.blocks.tiling.block_index`).
    two_sided, center, scale, min_scale
        As in :func:`robust_logistic`.

    Returns
    -------
    ndarray, shape (rows.size, cols.size), float32
    """
    g = np.ascontiguousarray(grid, dtype=np.float32)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    blocks = robust_logistic_blocks(g, rows, cols, two_sided=two_sided, center=center, scale=scale,
                                    min_scale=min_scale)
    if blocks is None:
        return robust_logistic(expand_grid(g, rows, cols), two_sided=two_sided, center=center, scale=scale,
                               min_scale=min_scale)
    return expand_grid(blocks, rows, cols)


def map_quantile(values: np.ndarray, q: float) -> float:
    """``float(np.quantile(values, q))`` (linear interpolation) of a float32 map, without a sort or copy.

    The two order statistics come from an exact selection; the interpolation
    repeats numpy's arithmetic (``a + (b - a) * g``, or ``b - (b - a) * (1 - g)``
    for ``g >= 0.5``). Maps with non-finite values or another dtype go to
    ``np.quantile`` itself.

    Examples
    --------
    >>> x = np.arange(101, dtype=np.float32)
    >>> map_quantile(x, 0.99) == float(np.quantile(x, 0.99))
    True
    """
    x = np.asarray(values)
    if x.dtype != np.float32 or x.size == 0 or not 0.0 <= q <= 1.0:
        return float(np.quantile(x, q))
    flat = np.ascontiguousarray(x).reshape(-1)
    n, a_bits, b_bits = _k.rank_pair(flat.view(np.uint32), float(q))
    if n != flat.size:  # NaN or inf present: numpy's own rules
        return float(np.quantile(x, q))
    a, b = np.array([a_bits, b_bits], np.uint32).view(np.float32)
    vi = n * q + (1 + q * (1 - 1 - 1)) - 1
    if vi >= n - 1:
        return float(b)  # numpy takes the last order statistic
    gamma = float(vi - np.floor(vi))  # a Python float: numpy's weak promotion keeps float32 arithmetic
    diff = b - a
    lerp = b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
    return float(lerp)
