"""Local level of the median-filter residual (MKLab "NOI4" style)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import check_int
from ..heatmap import LOG_MIN_SCALE, robust_logistic
from ..io import as_image
from ..registry import register
from ..types import Heatmap

__all__ = ["median_residual_map"]


@register("median_residual", kind="map")
def median_residual_map(image: Any, *, block: int = 32) -> Heatmap:
    """Dense map of the local mean of ``|I - median3x3(I)|``.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`).
    block : int, default 32
        Side of the square box over which the residual is averaged.

    Returns
    -------
    Heatmap
        ``raw``: box mean over ``block x block`` pixels of the channel-mean
        absolute residual ``|I_c - median3x3(I_c)|``, on the input scale (gray
        levels for 8-bit data); ``values``:
        :func:`noisestat.heatmap.robust_logistic` of ``log(raw)``, two-sided
        (both noisier and cleaner regions stand out).

    Raises
    ------
    ValueError
        Invalid ``block``, or an image smaller than 8 pixels on a side (too
        few pixels for a local level; refused like the other methods' minimum sizes).
    TypeError
        ``block`` is not an integer.

    Notes
    -----
    The 3x3 median filter removes most noise but keeps edges, so the residual
    ``r_c = I_c - median3x3(I_c)`` of each channel ``c`` is mostly noise; in
    flat areas ``E|r|`` is proportional to the noise standard deviation
    (about 0.73 sigma for Gaussian noise), so splices with another noise
    level change it locally. MKLab's NOI4 shows ``10 |r|`` averaged over
    channels per pixel; here the residual is averaged over a ``block x block``
    box (``raw[y, x]`` is the mean over rows ``y - block//2 ... y - block//2 +
    block - 1`` and likewise columns) to turn it into a local level. The
    median filter replicates border pixels (MATLAB's zero padding makes
    border artefacts); the box uses a reflected border (``d c b a | a b c d``).
    Both are Numba kernels with the values of OpenCV's ``medianBlur``,
    ``absdiff`` and ``transform`` (one pass) and ``blur`` (float64 box sums).

    Changed in 0.1: the map is dense (a sliding box mean, formerly a robust
    MAD on a grid of windows every ``step`` pixels, now removed) and uses
    every channel instead of luma.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.maps.median_residual import median_residual_map
    >>> rng = np.random.default_rng(0)
    >>> img = 128 + rng.normal(0, 2, (64, 128))
    >>> img[:, 64:] += rng.normal(0, 6, (64, 64))
    >>> hm = median_residual_map(img)
    >>> hm.shape
    (64, 128)
    >>> bool(hm.raw[:, 96].mean() > 2.5 * hm.raw[:, 16].mean())
    True
    """
    from ..blocks.tiling import reflect_index
    from ._median_residual_kernels import box_mean, channel_mean_residual

    block = check_int(block, "block", minimum=1)
    t0 = time.perf_counter()
    img = as_image(image, min_size=8)
    px = img.pixels
    if px.dtype != np.float32 or not px.flags.c_contiguous or px.flags.writeable:
        # one compiled kernel variant: read-only C-contiguous float32, as LoadedImage holds its pixels
        px = np.ascontiguousarray(px, dtype=np.float32).copy()
        px.setflags(write=False)
    # median, residual and channel mean in one pass: the values of medianBlur, absdiff and transform
    res = np.empty(px.shape[:2], np.float32)
    channel_mean_residual(px, res)
    h, w = res.shape
    o = block // 2  # OpenCV's anchor of an even box: raw[y] averages rows y - block // 2 ... y - block // 2 + block - 1
    raw = np.empty((h, w), np.float32)
    box_mean(res, block, reflect_index(np.arange(h + block - 1) - o, h), reflect_index(np.arange(w + block - 1) - o, w),
             raw)
    t1 = time.perf_counter()
    floor = 1e-3 * img.info.white_level / 255.0
    logs = np.maximum(raw, np.float32(floor), out=res)  # res is free again: the log map goes there
    np.log(logs, out=logs)
    values = robust_logistic(logs, min_scale=LOG_MIN_SCALE)
    return Heatmap(
        values=values,
        raw=raw,
        method="median_residual",
        params={"block": block, "median": "3x3 per channel, replicated border"},
        units="mean |I - median3x3(I)| (input scale)",
        timings={"residual": t1 - t0, "normalize": (t2 := time.perf_counter()) - t1, "total": t2 - t0},
    )
