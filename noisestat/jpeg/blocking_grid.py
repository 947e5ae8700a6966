"""Block artifact grid (BAG) map (Li, Yuan & Yu 2009): regions whose 8x8 blocking is off the image's grid.

Every JPEG compression leaves weak discontinuities along the borders of its
8x8 blocks. The BAG isolates them: absolute second differences across rows
(columns), accumulated along the lines, minus their local median (which
removes the image content), then a median over the same phase of five
consecutive periods (which keeps only what repeats every 8 pixels). A pasted
region whose own blocking is shifted by a non-multiple of 8, or that has no
blocking, shows grid lines inside the blocks of the dominant grid, or none on
its borders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_bool, check_float, check_int
from ..blocks.dct import JPEG_BLOCK
from ..blocks.jpeg import not_jpeg_reason
from ..blocks.tiling import expand_grid
from ..heatmap import robust_logistic
from ..io import as_image
from ..registry import register
from ..types import Heatmap
from ._blocking_grid_kernels import periodic_median, running_median

__all__ = ["blocking_grid_map", "block_artifact_grid", "block_mismatch", "ArtifactGrid"]

#: Lines accumulated over this many pixels (Li et al.: 33).
ACCUMULATE = 33
#: Periods of 8 pixels in the periodic median (Li et al.: 5, i.e. phases -16..+16).
PERIODS = 5
#: Below this line strength (:attr:`ArtifactGrid.strength`, in both directions) the image is
#: taken to show no blocking: four never-compressed scikit-image photos and the same saved
#: at quality 99 measured 0.7-2.7 (a 192 x 256 crop of one: 3.8), at quality 95 4.4-14, at
#: 90 10-25, at 75 27-61.
STRENGTH_MIN = 5.0
#: Smallest robust spread of the block measure (BAG units) for the mapping to [0, 1].
MIN_SPREAD = 1.0


@dataclass(frozen=True)
class ArtifactGrid:
    """Result of :func:`block_artifact_grid`.

    Attributes
    ----------
    rows : ndarray, float64, shape (H, W)
        BAG of the horizontal lines (block borders between rows): high on rows
        where the second difference across rows is periodically high.
    cols : ndarray, float64, shape (H, W)
        BAG of the vertical lines (borders between columns).
    phase : tuple of int
        ``(row, col)`` offset in 0-7 of the dominant grid: blocks start at
        rows ``row + 8 k`` and columns ``col + 8 k``.
    strength : tuple of float
        Per direction, the mean BAG on the dominant lines minus its mean over
        all lines (0: no periodic blocking).
    """

    rows: np.ndarray
    cols: np.ndarray
    phase: tuple[int, int]
    strength: tuple[float, float]


def _second_difference(y: np.ndarray, threshold: float) -> np.ndarray:
    """``|2 y[i] - y[i-1] - y[i+1]|`` down axis 0 (edge rows replicated), 0 where above ``threshold``."""
    p = np.concatenate([y[:1], y, y[-1:]], axis=0)
    d = np.abs(2.0 * p[1:-1] - p[:-2] - p[2:])
    d[d > threshold] = 0.0
    return d


def _line_bag(y: np.ndarray, threshold: float) -> np.ndarray:
    """BAG of the lines across axis 0 (borders between rows) of ``y``."""
    from scipy.ndimage import uniform_filter1d

    d = _second_difference(y, threshold)
    # accumulate along the lines (axis 1), half-sample symmetric border
    s = uniform_filter1d(d, ACCUMULATE, axis=1, mode="reflect") * ACCUMULATE
    st = np.ascontiguousarray(s.T)  # the kernels run along axis 1
    et = st - running_median(st, ACCUMULATE // 2)
    return periodic_median(et, JPEG_BLOCK, PERIODS // 2).T


def _dominant_phase(g: np.ndarray) -> tuple[int, float]:
    """Block start offset along axis 0: the phase ``o`` whose border lines ``o - 1, o`` carry most BAG."""
    n = (g.shape[0] // JPEG_BLOCK) * JPEG_BLOCK
    profile = g[:n].reshape(-1, JPEG_BLOCK, g.shape[1]).mean(axis=(0, 2))
    pair = profile + np.roll(profile, 1)  # lines o and o - 1 (the last row of the previous block)
    o = int(np.argmax(pair))
    return o, float(pair[o] / 2.0 - profile.mean())


def block_artifact_grid(image: Any, *, threshold: float = 50.0) -> ArtifactGrid:
    """Extract the block artifact grid of the luma and its dominant 8x8 phase.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image, at least 16 pixels on a side.
    threshold : float, default 50
        Second differences above this (8-bit scale) are set to 0: strong
        edges, not blocking.

    Returns
    -------
    ArtifactGrid

    Raises
    ------
    ValueError
        ``threshold`` not positive, or an image smaller than 16 pixels on a side.

    Notes
    -----
    For the borders between rows (Li, Yuan & Yu 2009, eqs. 1-5), with ``Y`` the
    8-bit luma: ``d(i, j) = |2 Y(i, j) - Y(i-1, j) - Y(i+1, j)|`` (0 where above
    ``threshold``), ``s(i, j) = sum_{|t| <= 16} d(i, j + t)``, ``e(i, j) =
    s(i, j) - median_{|t| <= 16} s(i + t, j)`` and ``BAG(i, j) =
    median_{k = -2..2} e(i + 8 k, j)``; the same with rows and columns swapped
    for the borders between columns. Borders are half-sample symmetric
    (edge rows replicated for ``d``). The dominant phase maximises the mean BAG
    on the two lines next to a block border.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.tile(np.repeat(np.arange(8.0) * 3, 8), (64, 1))  # a step every 8 columns
    >>> block_artifact_grid(y).phase[1]
    0
    """
    threshold = check_float(threshold, "threshold", minimum=0.0)
    if not threshold > 0:
        raise ValueError(f"threshold={threshold} must be > 0")
    img = as_image(image, min_size=16)
    y = img.gray().astype(np.float64) * (255.0 / img.info.white_level)
    rows = np.ascontiguousarray(_line_bag(y, threshold))
    cols = _line_bag(np.ascontiguousarray(y.T), threshold).T
    (pr, sr), (pc, sc) = _dominant_phase(rows), _dominant_phase(cols.T)
    return ArtifactGrid(rows=rows, cols=np.ascontiguousarray(cols), phase=(pr, pc), strength=(sr, sc))


def block_mismatch(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Li et al.'s per-block BAG mismatch on 8x8 blocks of the grid the arrays start on.

    Parameters
    ----------
    rows, cols : ndarray, shape (H, W)
        The two BAGs of :func:`block_artifact_grid`, cropped so that a block of
        the dominant grid starts at (0, 0).

    Returns
    -------
    ndarray, float64, shape (H // 8, W // 8)
        Per block ``b``: ``max_{c=1..6} sum_{r=1..6} V(r, c) - min_{c in {0, 7}}
        sum_{r=1..6} V(r, c)`` plus the same for ``R`` with rows and columns
        swapped, with ``V`` / ``R`` the block of ``cols`` / ``rows``: high when
        the strongest lines run inside the block rather than on its border.

    Examples
    --------
    >>> v = np.zeros((8, 8)); v[:, 3] = 1.0  # a vertical line inside the block
    >>> block_mismatch(np.zeros((8, 8)), v).tolist()
    [[6.0]]
    """
    hb, wb = rows.shape[0] // JPEG_BLOCK, rows.shape[1] // JPEG_BLOCK
    shape = (hb, JPEG_BLOCK, wb, JPEG_BLOCK)
    v = cols[: hb * JPEG_BLOCK, : wb * JPEG_BLOCK].reshape(shape)
    r = rows[: hb * JPEG_BLOCK, : wb * JPEG_BLOCK].reshape(shape)
    vc = v[:, 1:7].sum(axis=1)  # (hb, wb, 8): per column, the sum over the inner rows
    rr = r[:, :, :, 1:7].sum(axis=3)  # (hb, 8, wb): per row, the sum over the inner columns
    col_term = vc[:, :, 1:7].max(axis=2) - np.minimum(vc[:, :, 0], vc[:, :, 7])
    row_term = rr[:, 1:7].max(axis=1) - np.minimum(rr[:, 0], rr[:, 7])
    return col_term + row_term


def _block_of(n: int, offset: int) -> np.ndarray:
    """Block index on the grid starting at ``offset`` of each of ``n`` samples (edges: nearest block)."""
    nb = max((n - offset) // JPEG_BLOCK, 1)
    return np.clip((np.arange(n, dtype=np.int64) - offset) // JPEG_BLOCK, 0, nb - 1)


@register("blocking_grid", kind="map",
          applies="JPEG input with visible 8x8 blocking")
def blocking_grid_map(image: Any, *, threshold: float = 50.0, window: int = 3, force: bool = False) -> Heatmap:
    """Block artifact grid map: per 8x8 block of the dominant grid, how far its BAG is off that grid.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`), at least 24 pixels a side.
    threshold : float, default 50
        Second differences above this are ignored (see :func:`block_artifact_grid`).
    window : int, default 3
        Side, in blocks, of the box mean of the block measure (1 = none).
    force : bool, default False
        Analyse pixels that are not known to be JPEG-compressed.

    Returns
    -------
    Heatmap
        ``raw``: :func:`block_mismatch` per block of the dominant grid, box
        mean over ``window`` x ``window`` blocks (pixels outside the full blocks
        take the nearest block), in BAG units (sums of 8-bit second
        differences); ``values``: its one-sided
        :func:`noisestat.heatmap.robust_logistic`. Not applicable (zeros and a
        ``note``) for input not known to be JPEG (unless ``force``) and when
        the image shows no periodic blocking (line strength below
        :data:`STRENGTH_MIN` in both directions).

    Raises
    ------
    ValueError
        Invalid parameters, or an image smaller than 24 pixels on a side.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Li, Yuan & Yu (2009) compute the BAG (see :func:`block_artifact_grid`) and,
    per 8x8 block, the difference between the strongest inner line and the
    weaker border line in each direction (:func:`block_mismatch`); blocks of
    a region pasted with its own grid shifted (by a non-multiple of 8) have
    their lines inside, and score high. Here the blocks lie on the dominant
    grid found from the BAG itself (so a crop of the whole image after the
    last compression does not make every block abnormal), and the block
    values are averaged over a small box before the fixed mapping.

    References
    ----------
    .. [1] W. Li, Y. Yuan and N. Yu, "Passive detection of doctored JPEG image
       via block artifact grid extraction", Signal Processing 89(9),
       1821-1829, 2009. DOI 10.1016/j.sigpro.2009.03.025

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.jpeg.blocking_grid import blocking_grid_map
    >>> blocking_grid_map(np.zeros((64, 64, 3), np.uint8)).applicable  # an array, not a JPEG
    False
    """
    from scipy.ndimage import uniform_filter

    threshold = check_float(threshold, "threshold", minimum=0.0)
    if not threshold > 0:
        raise ValueError(f"threshold={threshold} must be > 0")
    window = check_int(window, "window", minimum=1)
    force = check_bool(force, "force")
    t0 = time.perf_counter()
    img = as_image(image, min_size=24)
    h, w = img.shape
    params: dict[str, Any] = {"threshold": float(threshold), "window": window, "force": bool(force)}
    units = "BAG inner-minus-border line sum (8-bit second differences)"

    def not_applicable(note: str) -> Heatmap:
        return Heatmap.not_applicable((h, w), method="blocking_grid", note=note, params=params, units=units,
                                      timings={"total": time.perf_counter() - t0})

    if why := not_jpeg_reason(img, force=force):
        return not_applicable(f"blocking_grid is not applicable: {why}")
    g = block_artifact_grid(img, threshold=threshold)
    t1 = time.perf_counter()
    params["phase"] = g.phase
    if max(g.strength) < STRENGTH_MIN:
        return not_applicable(f"blocking_grid found no periodic 8x8 blocking (line strength "
                              f"{max(g.strength):.1f} < {STRENGTH_MIN}): never compressed, or at a very high "
                              f"quality")
    oy, ox = g.phase
    b = block_mismatch(g.rows[oy:, ox:], g.cols[oy:, ox:])
    if window > 1:
        b = uniform_filter(b, size=window, mode="nearest")
    raw = expand_grid(b, _block_of(h, oy), _block_of(w, ox))
    values = robust_logistic(raw, two_sided=False, min_scale=MIN_SPREAD)
    t2 = time.perf_counter()
    return Heatmap(values=values, raw=raw, method="blocking_grid", params=params, units=units,
                   timings={"grid": t1 - t0, "blocks": t2 - t1, "total": t2 - t0},
                   note=f"dominant grid at offset {g.phase} (row, column); line strength "
                        f"{g.strength[0]:.2f}, {g.strength[1]:.2f}")
