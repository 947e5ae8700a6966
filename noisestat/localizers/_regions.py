"""Additive statistics over objects and their bounding-box backgrounds.

Foreground sums are per-label sums in raster order; background sums (bounding
box minus the object) come from the summed-area table evaluated at the four
corners of every box, so that every object costs O(1) after one O(HW) pass,
however much the boxes overlap. The pass
(:func:`~noisestat.localizers._regions_kernels.fg_and_corners`) keeps one row
of column sums, not the whole table: memory O(W) instead of O(HW) float64 per
value, time linear in the pixels. Pixel counts (``None`` among the values) are
exact integers: ``np.bincount`` of the labels and the boxes' areas.
"""

from __future__ import annotations

import numpy as np

from ._regions_kernels import fg_and_corners

__all__ = ["region_sums"]


def _corners(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 4n box corners sorted by (row, column), and where each (box, corner) went."""
    r0, c0, r1, c1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    rows = np.concatenate([r1, r0, r1, r0])
    cols = np.concatenate([c1, c1, c0, c0])
    order = np.lexsort((cols, rows))
    where = np.empty_like(order)
    where[order] = np.arange(order.size)
    return np.ascontiguousarray(rows[order]), np.ascontiguousarray(cols[order]), where


def region_sums(
    values: list[np.ndarray | None], labels: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum each value image over every object's foreground and background.

    Parameters
    ----------
    values : list of (ndarray, shape (H, W)) or None
        Per-pixel quantities to sum (e.g. weights, weighted squares); None
        stands for the pixel count (summed exactly, as integers).
    labels : ndarray of int, shape (H, W)
        Object labels 1..n (0 = unassigned, counted in no foreground).
    boxes : ndarray of int, shape (n, 4)
        ``(row0, col0, row1, col1)`` end-exclusive box of object i at row i-1.

    Returns
    -------
    fg, bg : ndarray, shape (n, len(values)), float64
        ``fg[i-1, k]`` = sum of ``values[k]`` over object i; ``bg[i-1, k]`` =
        sum over its box minus the object. The same float64 values as
        ``np.bincount(labels, weights)`` and the box sums of
        ``cumsum(cumsum(v, 0), 1)``.
    """
    n = int(boxes.shape[0])
    lab = np.ascontiguousarray(labels, dtype=np.int32)
    fg = np.empty((n, len(values)), np.float64)
    bg = np.empty((n, len(values)), np.float64)
    b = np.asarray(boxes, dtype=np.int64)
    qrow, qcol, where = _corners(b)
    counts = None
    for k, v in enumerate(values):
        if v is None:
            if counts is None:
                counts = np.bincount(lab.ravel(), minlength=n + 1)[1 : n + 1]
            fg[:, k] = counts
            bg[:, k] = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - counts
            continue
        arr = np.asarray(v)
        if arr.dtype != np.float32:
            arr = arr.astype(np.float64, copy=False)
        sums, corner = fg_and_corners(np.ascontiguousarray(arr), lab, n, qrow, qcol)
        s = corner[where].reshape(4, n)  # S[r1, c1], S[r0, c1], S[r1, c0], S[r0, c0]
        fg[:, k] = sums[1 : n + 1]
        bg[:, k] = s[0] - s[1] - s[2] + s[3] - fg[:, k]
    return fg, bg
