"""Block-wise PCA noise map (Zeng, Zhan, Kang & Lin 2017; MKLab "NOI5").

Each non-overlapping block of the luma image gets its own noise level from
the PCA estimator of Pyatykh, Hesser & Zheng (2013); maps at two block sizes
are mixed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import check_float, check_int
from ..heatmap import LOG_MIN_SCALE, robust_logistic
from ..io import as_image
from ..registry import register
from ..types import Heatmap

__all__ = ["block_pca_map"]


@register("block_pca", kind="map")
def block_pca_map(
    image: Any,
    *,
    block: int = 64,
    fine_block: int = 32,
    mix: float = 0.8,
    patch: int = 5,
) -> Heatmap:
    """Dense map of block-wise PCA noise levels (Zeng et al. 2017, Pyatykh et al. 2013).

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`); colour is converted to
        luma (ITU-R BT.601).
    block : int, default 64
        Side of the coarse non-overlapping blocks.
    fine_block : int, default 32
        Side of the fine non-overlapping blocks. Set it equal to ``block`` (or
        ``mix=1``) for a single-scale map.
    mix : float, default 0.8
        Weight of the coarse map: ``raw = mix * sigma_block + (1 - mix) * sigma_fine``.
    patch : int, default 5
        Side ``M`` of the square patches whose covariance is analysed
        (``d = M^2`` dimensions).

    Returns
    -------
    Heatmap
        ``raw``: the mixed noise standard deviation at every pixel (the value
        of the block that contains it) on the input scale (0-255 for 8-bit
        data); ``values``: :func:`noisestat.heatmap.robust_logistic` of
        ``log(raw)``, two-sided (noisier and cleaner blocks both stand out).

    Raises
    ------
    ValueError
        Image smaller than ``2 * patch`` pixels on a side, or invalid parameters.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    *Estimator* (Pyatykh, Hesser & Zheng 2013, Sec. III-IV). Inside a block
    every ``M x M`` patch (stride 1) is a vector in R^d; patches with more than
    ``floor(d / 10)`` clipped pixels (a channel at 0 or at the white level)
    are left out. If the image content lies in a subspace of dimension < d,
    the smallest eigenvalue of the patch covariance is the noise variance.
    Patches are sorted by variance and B(p) keeps the lowest-variance
    fraction p; for p = 1, 0.95, ..., 0.1 the estimate is lambda_1 of the
    covariance of B(p), accepted at the first p where the m = 7 smallest
    eigenvalues agree, ``lambda_7 - lambda_1 < 49 s^2 / sqrt(|B(p)|)``, and
    ``lambda_1 < 3.1 Q(0.0005)`` (Q: quantile of the patch variances, the
    upper bound); the estimate ``s^2`` in the check is iterated to a fixed
    point starting from the upper bound. Levels with fewer than ``2 d``
    patches are not used (a guard against rank-deficient covariances in
    small blocks). With few patches lambda_1 is biased low (for pure noise the
    smallest sample eigenvalue tends to ``s^2 (1 - sqrt(d / n))^2``): about
    -5 to -10 % on 64 x 64 blocks, more on 32 x 32 blocks; relative
    differences between blocks, which splicing detection needs, are kept.

    *Map* (Zeng et al. 2017). The luma image is tiled with non-overlapping
    blocks of side ``block`` from the top-left corner; a remainder strip is
    covered by one more block aligned with the image edge. The same is done
    with ``fine_block``, and the two block-constant maps of sigma are mixed
    with weights ``mix`` and ``1 - mix`` (0.8 / 0.2 in the paper). Blocks
    without enough usable patches (e.g. saturated areas) get the median sigma
    of the other blocks at that scale, so they read as typical; ``note``
    counts them. Zeng et al. then binarise the map by two-means clustering
    and remove small components; that step belongs to a localizer and is not
    part of this map. Blocks larger than the image are shrunk to it.

    References
    ----------
    .. [1] S. Pyatykh, J. Hesser and L. Zheng, "Image noise level estimation by
       principal component analysis", IEEE Trans. Image Process. 22(2),
       687-699, 2013. DOI 10.1109/TIP.2012.2221728
    .. [2] H. Zeng, Y. Zhan, X. Kang and X. Lin, "Image splicing localization
       using PCA-based noise level estimation", Multimedia Tools and
       Applications 76(4), 4783-4799, 2017. DOI 10.1007/s11042-016-3712-8

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.maps.block_pca import block_pca_map
    >>> rng = np.random.default_rng(0)
    >>> img = 128 + rng.normal(0, 2, (128, 128))
    >>> img[:, 64:] += rng.normal(0, 6, (128, 64))
    >>> hm = block_pca_map(img)
    >>> hm.shape
    (128, 128)
    >>> bool(np.median(hm.raw[:, 64:]) > 2 * np.median(hm.raw[:, :64]))
    True
    """
    from ..blocks.tiling import block_index, block_starts, expand_grid
    from ._block_pca_kernels import phz_blocks

    block = check_int(block, "block", minimum=8)
    fine_block = check_int(fine_block, "fine_block", minimum=8)
    mix = check_float(mix, "mix", minimum=0.0, maximum=1.0)
    patch = check_int(patch, "patch", minimum=2, maximum=16)
    t0 = time.perf_counter()
    img = as_image(image, min_size=2 * patch)
    h, w = img.shape
    scale = img.info.white_level / 255.0
    gray = img.gray()
    if scale != 1.0:
        gray = gray * np.float32(1.0 / scale)
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    if not gray.flags.writeable:  # one compiled kernel variant (numba types read-only arrays apart)
        gray = gray.copy()
    clipped = _clipped_mask(img.pixels, img.info.white_level)
    d = patch * patch
    max_clipped = d // 10
    min_count = 2 * d
    t1 = time.perf_counter()

    sides = (block, fine_block)
    weights = (mix, 1.0 - mix)
    raw = np.zeros((h, w), np.float32)
    n_missing = 0
    n_blocks = 0
    for side, wgt in zip(sides, weights, strict=True):
        if wgt == 0.0:
            continue
        bh, bw = min(side, h), min(side, w)
        rs = block_starts(h, bh)
        cs = block_starts(w, bw)
        var, _ = phz_blocks(gray, clipped, rs, cs, bh, bw, patch, max_clipped, min_count)
        sigma = np.sqrt(var)
        ok = np.isfinite(sigma)
        n_blocks += sigma.size
        n_missing += int(sigma.size - ok.sum())
        if not ok.any():
            return _not_applicable(img.shape, sides, weights, patch, t0,
                                   "no block has enough unclipped patches for a PCA noise estimate")
        sigma = np.where(ok, sigma, np.median(sigma[ok])) * scale
        raw += np.float32(wgt) * expand_grid(sigma, block_index(h, bh), block_index(w, bw))
    t2 = time.perf_counter()
    floor = 1e-3 * scale
    values = robust_logistic(np.log(np.maximum(raw, np.float32(floor))), min_scale=LOG_MIN_SCALE)
    note = ""
    if n_missing:
        note = (f"{n_missing} of {n_blocks} blocks had fewer than {min_count} usable {patch}x{patch} "
                f"patches (clipped pixels); they were given the median sigma of their scale")
    return Heatmap(
        values=values,
        raw=raw,
        method="block_pca",
        params=_params(block, fine_block, mix, patch),
        units="sigma (input scale)",
        timings={"prepare": t1 - t0, "pca": t2 - t1, "expand": (t3 := time.perf_counter()) - t2, "total": t3 - t0},
        note=note,
    )


def _clipped_mask(px: np.ndarray, white: float) -> np.ndarray:
    """1 where any channel is <= 0 or >= ``white`` (uint8, C-contiguous)."""
    import cv2

    nc = px.shape[2]
    hi = float(np.nextafter(np.float32(white), np.float32(0.0)))
    inside = cv2.inRange(px, (1e-30,) * nc, (hi,) * nc)  # 255 where 0 < x < white in every channel
    return np.ascontiguousarray(inside == 0).view(np.uint8)


def _params(block: int, fine_block: int, mix: float, patch: int) -> dict[str, Any]:
    return {"block": block, "fine_block": fine_block, "mix": mix, "patch": patch,
            "estimator": "pyatykh2013", "max_clipped": (patch * patch) // 10}


def _not_applicable(shape, sides, weights, patch, t0, why: str) -> Heatmap:
    return Heatmap.not_applicable(shape, method="block_pca", note=f"block_pca is not applicable: {why}",
                                  params=_params(sides[0], sides[1], weights[0], patch),
                                  units="sigma (input scale)", timings={"total": time.perf_counter() - t0})
