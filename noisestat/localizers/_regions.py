"""Additive statistics over objects and their bounding-box backgrounds.

Foreground sums come from ``np.bincount`` over the label image; background
sums (bounding box minus the object) from summed-area tables, so that every
object costs O(1) after one O(HW) pass, however much the boxes overlap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["region_sums"]


def _box_sum(sat: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    r0, c0, r1, c1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]


def region_sums(
    values: list[np.ndarray], labels: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum each value image over every object's foreground and background.

    Parameters
    ----------
    values : list of ndarray, each shape (H, W)
        Per-pixel quantities to sum (e.g. weights, weighted squares).
    labels : ndarray of int, shape (H, W)
        Object labels 1..n (0 = unassigned, counted in no foreground).
    boxes : ndarray of int, shape (n, 4)
        ``(row0, col0, row1, col1)`` end-exclusive box of object i at row i-1.

    Returns
    -------
    fg, bg : ndarray, shape (n, len(values)), float64
        ``fg[i-1, k]`` = sum of ``values[k]`` over object i; ``bg[i-1, k]`` =
        sum over its box minus the object.
    """
    n = int(boxes.shape[0])
    lab = labels.ravel()
    fg = np.empty((n, len(values)), np.float64)
    bg = np.empty((n, len(values)), np.float64)
    b = np.asarray(boxes, dtype=np.int64)
    for k, v in enumerate(values):
        v64 = np.asarray(v, dtype=np.float64)
        fg[:, k] = np.bincount(lab, weights=v64.ravel(), minlength=n + 1)[1 : n + 1]
        sat = np.zeros((v64.shape[0] + 1, v64.shape[1] + 1), np.float64)
        np.cumsum(np.cumsum(v64, axis=0), axis=1, out=sat[1:, 1:])
        bg[:, k] = _box_sum(sat, b) - fg[:, k]
    return fg, bg
