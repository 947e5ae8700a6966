"""Local DCT-histogram inconsistency (Ye, Sun & Chang 2007): blocks off the first-compression lattice.

A JPEG photo that was decoded, edited and saved again keeps, in its untouched
8x8 blocks, DCT coefficients close to multiples of the FIRST quantisation
table: the histogram of each low frequency is periodic with the first step.
The steps are estimated from that periodicity; each block's distance from
the lattice of the estimated table (the "blocking artifact measure") is
small where the block was compressed with that table on that grid and large
where it was not (pasted content: never compressed, off the grid, resampled,
or compressed with another table).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_bool, check_int
from ..blocks.dct import JPEG_BLOCK, ZIGZAG, block_dct
from ..blocks.jpeg import not_jpeg_reason, read_coefficients
from ..blocks.tiling import expand_grid
from ..heatmap import robust_logistic
from ..io import as_image, ijg_luma_table
from ..registry import register
from ..types import Heatmap, LoadedImage

__all__ = ["dct_hist_map", "estimate_first_table", "block_artifact", "allowed_values", "forbidden_bins",
           "FirstTable"]

#: Largest first-compression step tried per frequency (IJG quality 25 has steps up to 40
#: on the first 16 zigzag frequencies, DC 32).
Q_MAX = 48
#: Tolerance, in DCT units (8-bit scale), on the position of a doubly quantised
#: coefficient: the pixel rounding between the two compressions moves coefficients by
#: about 0.3, so a value within ``q2 / 2 + TOLERANCE`` of ``q1 j`` may round either way.
TOLERANCE = 0.5
#: A first step ``q1`` is accepted when the bins it leaves empty (:func:`forbidden_bins`)
#: hold at most this share of what the single-compression model puts there.
RATIO_MAX = 0.4
#: ... and that model puts at least this many coefficients there.
MIN_COUNT = 40
#: Smallest robust spread of the map, per informative frequency (in first steps), for
#: the mapping to [0, 1]: where most blocks are flat (all distances near 0) the spread
#: would otherwise be tiny and ordinary texture would map high.
MIN_SPREAD = 0.01


@dataclass(frozen=True)
class FirstTable:
    """Result of :func:`estimate_first_table`.

    Attributes
    ----------
    q1 : ndarray, int, shape (8, 8)
        Estimated first-compression step per frequency (natural order); 0 where
        not analysed or where no step coarser than the last one was found.
    ratio : ndarray, float, shape (8, 8)
        For the accepted step, the observed count in its forbidden bins over the
        single-compression model's count (NaN where none).
    q2 : ndarray, int, shape (8, 8)
        The last quantisation table (from the file, the IJG table of
        ``info.jpeg_quality``, or ones when unknown).
    informative : tuple of int
        Natural indices of the frequencies with an accepted first step.
    table_source : str
        ``"file coefficients"`` (coefficients and table read from the file),
        ``"file"`` (table from the file, coefficients from the pixels),
        ``"IJG quality Q"`` or ``"unknown (steps of 1)"``.
    """

    q1: np.ndarray
    ratio: np.ndarray
    q2: np.ndarray
    informative: tuple[int, ...]
    table_source: str


def allowed_values(q1: int, q2: int, m: int) -> np.ndarray:
    """The coefficient values ``q2 k``, ``|k| <= m``, that quantising with ``q1`` then ``q2`` can give.

    Parameters
    ----------
    q1, q2 : int
        First and last steps (>= 1).
    m : int
        Largest ``|k|`` considered.

    Returns
    -------
    ndarray, float64, sorted
        ``q2 k`` for every ``k`` with ``|q1 j - q2 k| <= q2 / 2 + TOLERANCE`` for some
        integer ``j`` (the lattice of ``q1`` after requantisation with ``q2``; all
        multiples of ``q2`` when ``q1 <= q2``).

    Examples
    --------
    >>> allowed_values(10, 2, 6).tolist()  # 10 j quantised with 2: +-8 and +-12 are never reached
    [-10.0, 0.0, 10.0]
    """
    return q2 * np.flatnonzero(_allowed_mask(q1, q2, m)).astype(np.float64) - q2 * m


@functools.lru_cache(maxsize=1024)  # at most 1024 masks of <= 8193 bools
def _allowed_mask(q1: int, q2: int, m: int) -> np.ndarray:
    """Over ``k = -m..m``: whether ``q2 k`` is within ``q2 / 2 + TOLERANCE`` of a multiple of ``q1``
    (read-only: cached, the same few hundred ``(q1, q2, m)`` come back on every image)."""
    j = np.arange(-(m * q2 // q1) - 1, m * q2 // q1 + 2)
    lo = np.ceil((q1 * j - q2 / 2.0 - TOLERANCE) / q2).astype(np.int64)
    hi = np.floor((q1 * j + q2 / 2.0 + TOLERANCE) / q2).astype(np.int64)
    mark = np.zeros(2 * m + 2, np.int64)  # difference array over k + m
    np.add.at(mark, np.clip(lo + m, 0, 2 * m + 1), 1)
    np.add.at(mark, np.clip(hi + m + 1, 0, 2 * m + 1), -1)
    inside = np.cumsum(mark)[: 2 * m + 1] > 0
    inside.setflags(write=False)
    return inside


def forbidden_bins(q1: int, q2: int, m: int) -> np.ndarray:
    """Mask over ``k = -m..m`` of the non-zero bins absent from :func:`allowed_values` (``q1, q2``)."""
    bad = ~_allowed_mask(q1, q2, m)
    bad[m] = False
    return bad


def _histogram(x: np.ndarray, q2: float, m: int) -> np.ndarray:
    r = np.clip(np.rint(x / q2).astype(np.int64), -m, m)
    return np.bincount(r + m, minlength=2 * m + 1).astype(np.float64)


def _estimate_step(x: np.ndarray, x0: np.ndarray, q2: int) -> tuple[int, float]:
    """The step in q2+1..Q_MAX that leaves the most coefficients missing (0 if none), and its ratio.

    ``x``: the coefficients on the JPEG grid; ``x0``: on the shifted grid (the
    single-compression model).
    """
    top = max(np.abs(x).max(initial=0.0), np.abs(x0).max(initial=0.0))
    m = int(min(top / q2 + 1, 4096 // q2))
    h, h0 = _histogram(x, q2, m), _histogram(x0, q2, m)
    h0 *= h.sum() / max(h0.sum(), 1.0)
    best, ratio, missing = 0, float("nan"), 0.0
    for q in range(q2 + 1, Q_MAX + 1):
        bad = forbidden_bins(q, q2, m)
        expected, seen = float(h0[bad].sum()), float(h[bad].sum())
        if expected >= MIN_COUNT and seen <= RATIO_MAX * expected and expected - seen > missing:
            best, ratio, missing = q, seen / expected, expected - seen
    return best, ratio


def _last_table(img: LoadedImage) -> tuple[np.ndarray, str]:
    if img.info.jpeg_luma_table is not None:
        return np.asarray(img.info.jpeg_luma_table, dtype=np.int64).reshape(8, 8), "file"
    if img.info.jpeg_quality is not None:
        return ijg_luma_table(img.info.jpeg_quality), f"IJG quality {img.info.jpeg_quality:g}"
    return np.ones((8, 8), np.int64), "unknown (steps of 1)"


def _luma_blocks(img: LoadedImage) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, str] | None]:
    """Block DCTs of the level-shifted 8-bit luma on the JPEG grid (N, 64) and on the grid
    shifted by one pixel (M, 64), which JPEG-grid blocks hold clipped luma, and the file's
    table when the JPEG-grid coefficients are the file's (dequantised)."""
    y = img.gray().astype(np.float64) * (255.0 / img.info.white_level)
    hb, wb = y.shape[0] // JPEG_BLOCK, y.shape[1] // JPEG_BLOCK  # block_dct's grid
    shifted = block_dct(y[1:, 1:] - 128.0).reshape(-1, 64)
    coefs = read_coefficients(img)
    if coefs is not None and coefs.luma.shape[0] >= hb and coefs.luma.shape[1] >= wb:
        table = np.asarray(coefs.luma_table, dtype=np.int64)
        flat = (coefs.luma[:hb, :wb].astype(np.float64) * table).reshape(hb * wb, 64)
        return flat, shifted, np.zeros(hb * wb, bool), (table, "file coefficients")
    c = block_dct(y - 128.0)
    tiles = y[: hb * JPEG_BLOCK, : wb * JPEG_BLOCK].reshape(hb, JPEG_BLOCK, wb, JPEG_BLOCK)
    clipped = (tiles.min(axis=(1, 3)) <= 0.5) | (tiles.max(axis=(1, 3)) >= 254.5)
    return c.reshape(hb * wb, 64), shifted, clipped.ravel(), None


def estimate_first_table(image: Any, *, coefficients: int = 20) -> FirstTable:
    """Estimate the first-compression luminance steps from the block DCT histograms.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        JPEG-decoded pixels, at least 16 pixels on a side.
    coefficients : int, default 20
        Frequencies analysed: the first ones in zigzag order, DC included (1-64).

    Returns
    -------
    FirstTable

    Raises
    ------
    ValueError
        ``coefficients`` outside 1-64, or an image smaller than 16 pixels on a side.

    Notes
    -----
    Per frequency, the coefficients ``D`` (8x8 DCT of ``Y - 128`` on the grid at
    (0, 0), blocks with clipped luma left out) are histogrammed in bins of the last
    step ``q2`` (``k = round(D / q2)``). Quantising with ``q1 > q2`` first leaves
    the bins of :func:`forbidden_bins` empty, save for pasted blocks; the
    single-compression model is the histogram of the grid shifted by one pixel
    (which breaks the blocking). The estimate is the ``q1`` in
    ``q2 + 1``-:data:`Q_MAX` whose forbidden bins miss the most coefficients
    (model count minus observed count), among those where the observed count is
    at most :data:`RATIO_MAX` of the model's (at least :data:`MIN_COUNT`):
    divisors of the true step forbid a subset of its bins and miss fewer,
    multiples forbid bins where the doubly quantised coefficients gather. With
    ``q2 = 1`` this is the periodicity of the histogram that Ye et al. read from
    its power spectrum. When the file's coefficients can be read
    (:func:`noisestat.blocks.jpeg.read_coefficients`), ``D`` is the file's
    dequantised luma (no pixel rounding or clipping; ``table_source`` is then
    ``"file coefficients"``) and no block is left out.
    """
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=64)
    return _estimate(as_image(image, min_size=16), coefficients)[0]


def _estimate(img: LoadedImage, coefficients: int) -> tuple[FirstTable, np.ndarray, np.ndarray]:
    """:func:`estimate_first_table`, with the block coefficients (N, 64) and clipped-block flags."""
    flat, shifted, clipped, from_file = _luma_blocks(img)
    q2, source = from_file if from_file is not None else _last_table(img)
    ks = np.asarray(ZIGZAG[:coefficients], dtype=np.intp)
    keep = np.ascontiguousarray(flat[:, ks][~clipped].T)  # the analysed frequencies, one per row
    shifted_t = np.ascontiguousarray(shifted[:, ks].T)
    q2f = q2.ravel()
    q1 = np.zeros(64, np.int64)
    ratio = np.full(64, np.nan)
    for j, k in enumerate(ks):
        q1[k], ratio[k] = _estimate_step(keep[j], shifted_t[j], int(q2f[k]))
    informative = tuple(int(k) for k in ZIGZAG[:coefficients] if q1[k] > 0)
    est = FirstTable(q1=q1.reshape(8, 8), ratio=ratio.reshape(8, 8), q2=q2, informative=informative,
                     table_source=source)
    return est, flat, clipped


def block_artifact(coefficients: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Blocking artifact measure of each block against a first and a last table (Ye et al.).

    Parameters
    ----------
    coefficients : ndarray, shape (..., 8, 8)
        Unquantised block DCT coefficients (8-bit scale).
    q1 : ndarray, shape (8, 8)
        First steps; frequencies with step 0 are left out.
    q2 : ndarray, shape (8, 8)
        Last steps.

    Returns
    -------
    ndarray, float64, shape (...)
        ``B = sum_{(u, v): q1(u, v) > 0} dist(D(u, v), L(u, v)) / q1(u, v)``, with
        ``L`` the values :func:`allowed_values` of ``q1, q2`` and ``dist`` the
        distance to the nearest. With ``q2`` much finer than ``q1`` this is Ye et
        al.'s ``|D - q1 round(D / q1)|`` in units of the step, less the rounding
        band ``q2 / 2 + TOLERANCE`` around each multiple of ``q1``.

    Examples
    --------
    >>> q1 = np.zeros((8, 8)); q1[0, 1] = 10
    >>> d = np.zeros((2, 8, 8)); d[0, 0, 1] = 20.0; d[1, 0, 1] = 15.0
    >>> block_artifact(d, q1, np.ones((8, 8))).tolist()
    [0.0, 0.4]
    """
    d = np.asarray(coefficients, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.int64)
    q2 = np.asarray(q2, dtype=np.int64)
    out = np.zeros(d.shape[:-2])
    if not (q1 > 0).any():
        return out
    for u, v in zip(*np.nonzero(q1 > 0)):
        x = np.ascontiguousarray(d[..., u, v])  # only the frequencies with a first step
        m = int(np.abs(x).max(initial=0.0) / q2[u, v]) + int(q1[u, v]) + 2  # a lattice point beyond
        lat = allowed_values(int(q1[u, v]), int(q2[u, v]), m)
        i = np.clip(np.searchsorted(lat, x), 1, lat.size - 1)
        out += np.minimum(np.abs(x - lat[i - 1]), np.abs(x - lat[i])) / q1[u, v]
    return out


def _nearest_block(n: int) -> np.ndarray:
    """Index of the full 8x8 block of the grid at 0 holding (or nearest to) each of ``n`` samples."""
    return np.minimum(np.arange(n, dtype=np.int64) // JPEG_BLOCK, n // JPEG_BLOCK - 1)


def _block_map(b: np.ndarray, clipped: np.ndarray, window: int) -> np.ndarray:
    """Box mean of the block measure over ``window`` x ``window`` blocks, clipped blocks left out."""
    from scipy.ndimage import uniform_filter

    ok = (~clipped).astype(np.float64)
    if window == 1:
        return np.where(clipped, np.nan, b)
    num = uniform_filter(np.where(clipped, 0.0, b), size=window, mode="nearest")
    den = uniform_filter(ok, size=window, mode="nearest")
    return np.where(den > 1e-9, num / np.maximum(den, 1e-9), np.nan)


@register("dct_hist", kind="map",
          applies="JPEG input compressed twice on one grid, the first step coarser")
def dct_hist_map(image: Any, *, coefficients: int = 20, window: int = 3, force: bool = False) -> Heatmap:
    """Local DCT-histogram inconsistency: each block's distance from the first-compression lattice.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`), at least 16 pixels a side.
    coefficients : int, default 20
        Frequencies analysed (first in zigzag order, DC included), see
        :func:`estimate_first_table`.
    window : int, default 3
        Side, in blocks, of the box over which the block measure is averaged
        (1 = none).
    force : bool, default False
        Analyse pixels that are not known to be JPEG-compressed.

    Returns
    -------
    Heatmap
        ``raw``: per 8x8 block of the grid at (0, 0) (pixels past the last full
        block take the nearest block), the box mean of :func:`block_artifact`
        over the informative frequencies, in quantisation steps; blocks
        with clipped luma (0 or 255) are left out of the mean (NaN when the
        whole box is clipped; ``values`` 0 there). ``values``: one-sided
        :func:`noisestat.heatmap.robust_logistic` of ``raw`` (more distance
        from the lattice than the rest of the image is suspicious). Not
        applicable (zeros and a ``note``) for input not known to be JPEG
        (unless ``force``) and when no frequency shows a first step coarser
        than the last one (a single compression, or a finer first one).

    Raises
    ------
    ValueError
        Invalid parameters, or an image smaller than 16 pixels on a side.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Ye, Sun & Chang (2007): with ``Q`` the first quantisation table, estimated
    from the periodicity of each frequency's histogram, the blocking artifact
    measure of block ``i`` is ``B(i) = sum_{u,v} |D_i(u, v) - Q(u, v)
    round(D_i(u, v) / Q(u, v))|``. Untouched blocks of a doubly compressed
    image lie close to the lattice; pasted blocks, singly compressed or off
    the grid, spread over it. Here (see :func:`block_artifact`) the lattice is
    that of ``Q`` after requantisation with the last table (Ye et al. assume a
    much finer last table, where the two agree), each term is divided by
    ``Q(u, v)`` (a distance in steps, which weighs the frequencies alike), the
    sum runs over the frequencies with an estimated first step coarser than
    the last one (the others separate nothing), ``D`` comes from the decoded
    luma (not the file), and blocks with clipped luma (whose coefficients
    clipping moved) are left out.

    References
    ----------
    .. [1] S. Ye, Q. Sun and E.-C. Chang, "Detecting digital image forgeries
       by measuring inconsistencies of blocking artifact", ICME 2007, 12-15.
       DOI 10.1109/ICME.2007.4284574

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.jpeg.dct_hist import dct_hist_map
    >>> dct_hist_map(np.zeros((64, 64, 3), np.uint8)).applicable  # an array, not a JPEG
    False
    """
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=64)
    window = check_int(window, "window", minimum=1)
    force = check_bool(force, "force")
    t0 = time.perf_counter()
    img = as_image(image, min_size=16)
    h, w = img.shape
    params: dict[str, Any] = {"coefficients": coefficients, "window": window, "force": bool(force)}
    units = "sum over frequencies of |D / Q - round(D / Q)| (steps)"

    def not_applicable(note: str) -> Heatmap:
        return Heatmap.not_applicable((h, w), method="dct_hist", note=note, params=params, units=units,
                                      timings={"total": time.perf_counter() - t0})

    if why := not_jpeg_reason(img, force=force):
        return not_applicable(f"dct_hist is not applicable: {why}")
    est, flat, clipped = _estimate(img, coefficients)
    t1 = time.perf_counter()
    params["table"] = est.table_source
    if not est.informative:
        return not_applicable("dct_hist found no first-compression lattice coarser than the last table: a "
                              "single compression, or a first one with the same or a finer table")
    b = block_artifact(flat.reshape(-1, 8, 8), est.q1, est.q2)
    hb, wb = h // JPEG_BLOCK, w // JPEG_BLOCK
    grid = _block_map(b.reshape(hb, wb), clipped.reshape(hb, wb), window)
    t2 = time.perf_counter()
    raw = expand_grid(grid, _nearest_block(h), _nearest_block(w))
    finite = np.isfinite(raw)
    values = robust_logistic(np.where(finite, raw, 0.0), two_sided=False, reference=finite,
                             min_scale=MIN_SPREAD * len(est.informative))
    values[~finite] = 0.0
    t3 = time.perf_counter()
    return Heatmap(values=values, raw=raw, method="dct_hist", params=params, units=units,
                   timings={"estimate": t1 - t0, "measure": t2 - t1, "map": t3 - t2, "total": t3 - t0},
                   note=f"{len(est.informative)} frequencies with a first step coarser than the last "
                        f"({est.table_source})")
