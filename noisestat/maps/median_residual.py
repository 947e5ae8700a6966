"""Local noise level of the median-filter residual.

The simplest residual-domain noise map: the image minus its 3x3 median
filtered version isolates high-frequency content (mostly sensor noise in
smooth areas); its local robust standard deviation per block is the raw map.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import as_image, check_int
from ..heatmap import robust_logistic
from ..registry import register
from ..types import Heatmap

__all__ = ["median_residual_map"]


@register("median_residual", kind="map")
def median_residual_map(image: Any, *, block: int = 32, step: int = 8) -> Heatmap:
    """Dense map of the local noise level of the 3x3 median-filter residual.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`); colour is averaged to gray.
    block : int, default 32
        Side of the square window in which the local noise level is measured.
    step : int, default 8
        Distance between window centres; the map is interpolated back to
        full resolution.

    Returns
    -------
    Heatmap
        ``raw``: local noise level ``1.4826 * median(|r - median(r)|)`` of the
        residual ``r = I - median3x3(I)`` in gray levels of the input scale;
        ``values``: :func:`noisestat.heatmap.robust_logistic` of ``log(raw)``
        (two-sided: both noisier and cleaner regions stand out).

    Raises
    ------
    ValueError
        Image smaller than ``block``, or invalid parameters.

    Notes
    -----
    The residual of a median filter has a variance proportional to the noise
    variance in flat areas; splices with a different noise level change it
    locally. The robust scale (MAD) limits the influence of edges.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.maps.median_residual import median_residual_map
    >>> img = np.random.default_rng(0).normal(128, 4, (64, 64))
    >>> median_residual_map(img).shape
    (64, 64)
    """
    import cv2

    block = check_int(block, "block", minimum=4)
    step = check_int(step, "step", minimum=1)
    t0 = time.perf_counter()
    img = as_image(image, min_size=block)
    gray = np.ascontiguousarray(img.gray(), dtype=np.float32)
    med = cv2.medianBlur(gray, 3)
    res = gray - med
    h, w = gray.shape
    rows = np.arange(0, h - block + 1, step)
    cols = np.arange(0, w - block + 1, step)
    if rows[-1] != h - block:
        rows = np.r_[rows, h - block]
    if cols[-1] != w - block:
        cols = np.r_[cols, w - block]
    grid = np.empty((rows.size, cols.size), np.float64)
    for i, r in enumerate(rows):
        strip = res[r : r + block]
        for j, c in enumerate(cols):
            x = strip[:, c : c + block].ravel()
            m = np.median(x)
            grid[i, j] = 1.4826 * np.median(np.abs(x - m))
    scale = img.info.white_level / 255.0
    floor = 1e-3 * scale
    raw_small = np.maximum(grid, floor).astype(np.float32)
    # map block centres onto the full grid by linear interpolation
    cy = rows + (block - 1) / 2.0
    cx = cols + (block - 1) / 2.0
    yy = np.interp(np.arange(h), cy, np.arange(rows.size))
    xx = np.interp(np.arange(w), cx, np.arange(cols.size))
    raw = cv2.remap(raw_small, np.tile(xx.astype(np.float32), (h, 1)),
                    np.tile(yy.astype(np.float32)[:, None], (1, w)), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    values = robust_logistic(np.log(raw))
    return Heatmap(
        values=values,
        raw=raw,
        method="median_residual",
        params={"block": block, "step": step},
        units="sigma of median residual (input scale)",
        timings={"map": time.perf_counter() - t0},
    )
