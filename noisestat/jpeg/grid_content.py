"""Content-aware JPEG grid inconsistency map (CAGI, Iakovidou et al. 2018).

Every JPEG compression leaves a faint discontinuity on the lines of its 8x8
block grid. A region pasted from another JPEG carries the grid of its own
compression, usually shifted with respect to the host's; after the final
save its blocks show the host's grid less (and another grid more) than the
rest of the image. The map measures, per region, how prominent the image's
dominant grid is against the other seven line phases, on the corner
statistic of Fan & de Queiroz, with the blocks in which content, not
compression, decides that contrast left out or down-weighted.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from .._validate import check_bool, check_int
from ..blocks.dct import JPEG_BLOCK
from ..blocks.jpeg import not_jpeg_reason
from ..blocks.tiling import expand_grid
from ..heatmap import robust_logistic
from ..io import as_image
from ..registry import register
from ..types import Heatmap, LoadedImage

__all__ = ["grid_content_map", "block_profiles", "GridProfiles"]

#: Offset added to the line means of a block before their ratio is taken (gray levels of
#: ``|A - B - C + D|``): keeps the log ratio finite and quiet in near-flat blocks.
EPS = 0.5
#: Blocks whose mean ``|A - B - C + D|`` is at most this are homogeneous: no grid can show.
FLAT_LEVEL = 0.3
#: Texture level at which a block's weight is halved (``1 / (1 + (level / TEXTURE_LEVEL)^2)``):
#: in busy texture the grid's contrast is drowned by the content's.
TEXTURE_LEVEL = 20.0
#: A block whose strongest non-grid line is this many times the mean of its other
#: non-grid lines holds a straight content edge along a block line: left out.
EDGE_RATIO = 4.0
#: Blocks whose mean brightness (HSV value, max of the channels) is at least / below these
#: are over- / under-exposed (clipping flattens the grid): left out.
BRIGHT, DARK = 245.0, 15.0
#: Weight (in full-weight blocks) of the image-wide mean prominence added to every region's
#: box-smoothed sums: a region with few usable blocks stays near the image's level.
PRIOR_BLOCKS = 0.5
#: Fewest regions a side (images smaller than that are not analysed).
MIN_REGIONS = 3


class GridProfiles(NamedTuple):
    """Per 8x8 block line profiles of the corner statistic (see :func:`block_profiles`)."""

    rows: np.ndarray  # (Hb, Wb, 8) mean |A - B - C + D| on each of the 8 row phases
    cols: np.ndarray  # (Hb, Wb, 8) ... on each of the 8 column phases
    level: np.ndarray  # (Hb, Wb) mean over the 64 positions


def block_profiles(luma: np.ndarray) -> GridProfiles:
    """Line profiles of the 2x2 cross difference ``|A - B - C + D|`` in each 8x8 block.

    ``Z[y, x] = |Y[y, x] - Y[y, x+1] - Y[y+1, x] + Y[y+1, x+1]|`` (Fan & de
    Queiroz's corner statistic) is large where a block corner or a block line
    separates the four pixels. Block ``(i, j)`` covers ``Z[8i:8i+8, 8j:8j+8]``;
    ``rows[i, j, p]`` is the mean of its row ``p`` (the row phase ``p``: a
    horizontal grid line between pixel rows ``8i+p`` and ``8i+p+1``),
    ``cols[i, j, q]`` of its column ``q``, ``level[i, j]`` of all 64 values.

    Parameters
    ----------
    luma : ndarray, shape (H, W)
        Gray image, at least 9 x 9.

    Returns
    -------
    GridProfiles
        float64 arrays with ``Hb = (H - 1) // 8`` and ``Wb = (W - 1) // 8``.

    Examples
    --------
    >>> y = np.zeros((17, 17)); y[8:, 8:] = 10.0  # one corner at pixel (8, 8)
    >>> p = block_profiles(y)
    >>> p.rows.shape, float(p.rows[0, 0, 7]), float(p.cols[0, 0, 7])
    ((2, 2, 8), 1.25, 1.25)
    """
    y = np.asarray(luma, dtype=np.float64)
    z = np.abs(y[:-1, :-1] - y[:-1, 1:] - y[1:, :-1] + y[1:, 1:])
    hb, wb = z.shape[0] // JPEG_BLOCK, z.shape[1] // JPEG_BLOCK
    b = z[: hb * 8, : wb * 8].reshape(hb, 8, wb, 8)
    rows = b.mean(axis=3).transpose(0, 2, 1)
    cols = b.mean(axis=1)
    return GridProfiles(np.ascontiguousarray(rows), np.ascontiguousarray(cols), rows.mean(axis=2))


def _line_contrast(prof: np.ndarray, phase: int) -> np.ndarray:
    """``log((m_g + EPS) / (mean of the other 7 + EPS))`` for the line phase ``phase``."""
    grid = prof[..., phase]
    others = (prof.sum(axis=-1) - grid) / 7.0
    return np.log((grid + EPS) / (others + EPS))


def _edge_peak(prof: np.ndarray, phase: int) -> np.ndarray:
    """Strongest non-grid line over the mean of the other non-grid lines."""
    o = np.delete(prof, phase, axis=-1)
    top = o.max(axis=-1)
    return (top + EPS) / ((o.sum(axis=-1) - top) / 6.0 + EPS)


def _content_weights(p: GridProfiles, value: np.ndarray) -> np.ndarray:
    """Block weights before the grid is known: homogeneous, clipped and busy blocks count less."""
    w = (p.level > FLAT_LEVEL) & (value < BRIGHT) & (value >= DARK)
    return w / (1.0 + (p.level / TEXTURE_LEVEL) ** 2)


def _block_means(plane: np.ndarray, hb: int, wb: int) -> np.ndarray:
    """Mean of ``plane`` over the 8x8 blocks of the profiles' tiling."""
    return plane[: hb * 8, : wb * 8].reshape(hb, 8, wb, 8).mean(axis=(1, 3))


def _region_sum(a: np.ndarray, r: int, smooth: int) -> np.ndarray:
    """Sums over ``r x r`` blocks, then the ``smooth x smooth`` box mean over regions."""
    from scipy.ndimage import uniform_filter

    kx, ky = a.shape[0] // r, a.shape[1] // r
    s = a[: kx * r, : ky * r].reshape(kx, r, ky, r).sum(axis=(1, 3))
    return uniform_filter(s, size=smooth, mode="nearest") if smooth > 1 else s


def _analyse(img: LoadedImage, r: int, smooth: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Region grid deficit ``-(weighted mean prominence)`` and what was found."""
    scale = 255.0 / img.info.white_level
    p = block_profiles(img.gray() * np.float32(scale))
    hb, wb = p.level.shape
    value = _block_means(img.pixels.max(axis=2) * np.float32(scale), hb, wb)
    w = _content_weights(p, value)
    gr = int(np.argmax((p.rows * w[..., None]).sum(axis=(0, 1))))
    gc = int(np.argmax((p.cols * w[..., None]).sum(axis=(0, 1))))
    edge = np.maximum(_edge_peak(p.rows, gr), _edge_peak(p.cols, gc)) >= EDGE_RATIO
    w = np.where(edge, 0.0, w)
    t = _line_contrast(p.rows, gr) + _line_contrast(p.cols, gc)
    total = float(w.sum())
    t_image = float((t * w).sum() / total) if total > 0 else 0.0
    num = _region_sum(t * w, r, smooth)
    den = _region_sum(w, r, smooth)
    prominence = (num + PRIOR_BLOCKS * t_image) / (den + PRIOR_BLOCKS)
    found = {"grid_origin": ((gr + 1) % 8, (gc + 1) % 8), "grid_prominence": round(t_image, 4),
             "blocks_used": round(float((w > 0).mean()), 4), "content_edges": round(float(edge.mean()), 4)}
    return -prominence, found


def _auto_region(h: int, w: int) -> int:
    """CAGI's region side in blocks: 2 below 640 x 480 pixels, else 3."""
    return 2 if h * w < 640 * 480 else 3


@register("grid_content", kind="map",
          applies="JPEG input, at least 3 regions a side")
def grid_content_map(
    image: Any,
    *,
    region: int = 0,
    smooth: int = 5,
    inverse: bool = False,
    force: bool = False,
) -> Heatmap:
    """Content-aware JPEG grid inconsistency (CAGI): where the image's 8x8 grid fades.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`).
    region : int, default 0
        Side, in 8x8 blocks, of the regions the map is computed on; 0 =
        CAGI's choice (2 below 640 x 480 pixels, else 3).
    smooth : int, default 5
        Side, in regions, of the box mean over the region grid (1 = none).
    inverse : bool, default False
        Return CAGI's inverse map instead: high where the image's grid is
        *more* prominent than elsewhere (a pasted region that kept a strong
        grid in an image whose own grid is weak).
    force : bool, default False
        Compute the map even when the input is not known to be
        JPEG-compressed (e.g. an array decoded from a JPEG elsewhere).

    Returns
    -------
    Heatmap
        ``raw``: per region, the grid deficit ``-t_R`` (``+t_R`` when
        ``inverse``) in log units, where ``t_R`` is the content-weighted mean
        over the region's neighbourhood of the block grid prominence ``t``
        (Notes); pixels past the last region take the nearest one.
        ``values``: :func:`noisestat.heatmap.robust_logistic` of ``raw``,
        one-sided (a grid weaker than in the rest of the image is suspicious).
        ``params`` also record the grid found (``grid_origin``, the first
        row and column of the blocks, (0, 0) for an uncropped JPEG), its
        image-wide prominence and the share of blocks used. Not applicable
        (zeros and a ``note``) for input not known to be JPEG (unless
        ``force``) and for images smaller than 3 regions a side.

    Raises
    ------
    ValueError
        Invalid parameters.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    With luma ``Y`` (BT.601, 0-255 scale), Fan & de Queiroz's corner
    statistic ``Z(y, x) = |Y(y, x) - Y(y, x+1) - Y(y+1, x) + Y(y+1, x+1)|``
    is large where a block boundary separates the four pixels. In each 8x8
    block ``b`` (tiled from the origin) let ``m_b(p)`` be the mean of ``Z``
    on its row ``p`` and ``n_b(q)`` on its column ``q``. The image's grid is
    the row and column phase of largest weighted mean,
    ``g = argmax_p sum_b w_b m_b(p)`` (likewise ``h`` for columns), and the
    block's grid prominence is

        t_b = log((m_b(g) + e) / (mbar_b + e)) + log((n_b(h) + e) / (nbar_b + e)),

    ``mbar_b`` the mean of the 7 other rows, ``e`` = :data:`EPS`. CAGI's
    map is, per region of ``region x region`` blocks, the mean over the
    candidate grids minus the best grid's score, box-filtered 5 x 5; here
    that difference is ``-t`` and the region value is the weighted mean
    ``t_R = (S(w t) + k t_img) / (S(w) + k)``, ``S`` the region sum box-
    averaged over ``smooth x smooth`` regions, ``t_img`` the image's
    weighted mean and ``k`` = :data:`PRIOR_BLOCKS`.

    Content awareness (as in CAGI, blocks whose content decides the
    contrast do not vote): weight 0 for homogeneous blocks (mean ``Z`` <=
    :data:`FLAT_LEVEL`), over- or under-exposed ones (mean HSV value >=
    :data:`BRIGHT` or < :data:`DARK`) and blocks holding a straight content
    edge along a block line (a non-grid line ``EDGE_RATIO`` times the other
    non-grid lines); the others weigh ``1 / (1 + (level / TEXTURE_LEVEL)^2)``
    so that busy texture, whose own 2x2 contrast hides the grid, counts less.

    What differs from the paper: CAGI compares the histograms of ``Z`` at
    the corner and at the block centre (Fan & de Queiroz's ``K``) for 64
    offsets and picks the grid by a vote over 16 candidate pairs; here the
    grid is the argmax of the row and column line means. CAGI finds content
    edges by matching 10 x 10 tiles of a 600 x 600 resized copy against 58
    binary edge patterns and excludes blocks by hand-set thresholds;
    here the block's own line profile, level and brightness decide (no
    resizing, no pattern bank), with a soft texture weight. CAGI normalises
    each map by min-max; this one keeps log units and maps them by the
    package's fixed robust logistic. The inverse map is the same statistic
    with the opposite sign instead of CAGI's second grid candidate.

    The trace needs an earlier compression at least as coarse as the last
    one: pasted content saved at a lower quality than the host, then the
    whole image saved again. A final save much coarser than the earlier ones
    imposes its own (aligned) grid everywhere and hides the rest.

    References
    ----------
    .. [1] C. Iakovidou, M. Zampoglou, S. Papadopoulos and Y. Kompatsiaris,
       "Content-aware detection of JPEG grid inconsistencies for intuitive
       image forensics", Journal of Visual Communication and Image
       Representation 54, 155-170, 2018. DOI 10.1016/j.jvcir.2018.05.011
    .. [2] Z. Fan and R. L. de Queiroz, "Identification of bitmap compression
       history: JPEG detection and quantizer estimation", IEEE Transactions
       on Image Processing 12(2), 230-235, 2003. DOI 10.1109/TIP.2002.807361

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.jpeg.grid_content import grid_content_map
    >>> img = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    >>> grid_content_map(img).applicable  # an array, not known to be a JPEG
    False
    >>> hm = grid_content_map(img, force=True)
    >>> hm.values.shape, bool(0.0 <= hm.values.min() <= hm.values.max() <= 1.0)
    ((96, 96), True)
    """
    region = check_int(region, "region", minimum=0)
    smooth = check_int(smooth, "smooth", minimum=1)
    inverse, force = check_bool(inverse, "inverse"), check_bool(force, "force")
    t0 = time.perf_counter()
    img = as_image(image)
    h, w = img.shape
    r = region or _auto_region(h, w)
    params: dict[str, Any] = {"region": r, "smooth": smooth, "inverse": bool(inverse), "force": bool(force)}
    units = "log grid-line contrast excess" if inverse else "log grid-line contrast deficit"
    side = 8 * r * MIN_REGIONS + 1
    why = not_jpeg_reason(img, force=force) if min(h, w) >= side else (
        f"the image ({h} x {w}) is smaller than {side} pixels a side ({MIN_REGIONS} regions of {8 * r} pixels)")
    if why:
        return Heatmap.not_applicable((h, w), method="grid_content", note=f"grid_content is not applicable: {why}",
                                      params=params, units=units, timings={"total": time.perf_counter() - t0})
    deficit, found = _analyse(img, r, smooth)
    params.update(found)
    t1 = time.perf_counter()
    grid = (-deficit if inverse else deficit).astype(np.float32)
    rows = np.minimum(np.arange(h) // (8 * r), grid.shape[0] - 1)
    cols = np.minimum(np.arange(w) // (8 * r), grid.shape[1] - 1)
    raw = expand_grid(grid, rows, cols)
    values = robust_logistic(raw, two_sided=False)
    t2 = time.perf_counter()
    return Heatmap(values=values, raw=raw, method="grid_content", params=params, units=units,
                   timings={"grid": t1 - t0, "expand": t2 - t1, "total": t2 - t0})
