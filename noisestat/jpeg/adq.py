"""Aligned double-JPEG (ADQ) map: which 8x8 blocks lack the double-quantisation trace.

A JPEG photo that was decompressed, edited and saved again carries, in the
blocks that were not touched, the trace of both compressions: their DCT
coefficients were quantised with step ``q1`` and then again with ``q2``, so
the histogram of each frequency shows a periodic pattern ``n(x)``. Pasted
content (resampled, moved off the 8x8 grid, or never compressed) was only
quantised once and lacks it. Per frequency, the first step ``q1`` and the
share ``alpha`` of doubly quantised coefficients are fitted to the
histogram; each block's coefficients then give the likelihood ratio of
"single" against "double" compression.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._validate import check_int
from ..blocks.dct import ZIGZAG, block_dct
from ..io import as_image, ijg_luma_table
from ..registry import register
from ..types import Heatmap, LoadedImage

__all__ = ["adq_map", "analyze_double_jpeg", "DoubleJpegAnalysis", "dq_factor"]


#: Largest first-compression step tried per frequency (IJG quality 25 has steps up to 40
#: on the first 16 frequencies).
Q1_MAX = 48
#: A frequency counts as doubly compressed only when the fitted share of doubly
#: quantised coefficients exceeds this (else the single-compression model is kept).
ALPHA_MIN = 0.25
#: Mean ``|C / q2 - round(C / q2)|`` above which the coefficients are taken not to lie on the
#: quantisation lattice of the table (about 0.05 for a decoded JPEG, 0.25 off the grid).
LATTICE_MAX = 0.15
#: Fewest non-zero AC coefficients (with steps >= 4) on which the lattice is checked.
LATTICE_MIN_COUNT = 200
#: Per-coefficient likelihood ratios are floored at this (an "empty" bin of ``n(x)``
#: would otherwise decide a block alone).
RATIO_FLOOR = 0.02
#: Relative error of the single-compression histogram model (the shifted-grid DCT
#: histogram): each bin's variance is ``h0 + 1 + (MODEL_ERROR h0)^2``, Poisson noise plus
#: this systematic part, which dominates on large images (a resampled photo saved once
#: otherwise shows spurious "traces" that gain hundreds in Poisson chi-square).
MODEL_ERROR = 0.1
#: A frequency's double-compression fit is kept only when it lowers that chi-square of
#: the single-compression model by at least this ...
CHI2_GAIN_MIN = 20.0
#: ... on a frequency where at least this many blocks have ``|x| >= 2`` (smooth content
#: leaves high frequencies with 0 and +-1 only, which one mixture weight fits exactly).
#: Together, on 60 crops of 384 x 256 pixels of the scikit-image sample photos (quality
#: 60-95): singly compressed, 0 of 870 analysed frequencies kept (no image with a
#: trace); doubly compressed (first quality 50-95), 475 of 870 kept, a trace in 50 of 60
#: images (the others mostly had a first step finer than the second, which leaves none).
MIN_SPREAD = 30
#: ... and where the fit gains at least this on the bins ``|x| >= 2`` alone: a periodic
#: trace shows beyond the first bins, while a first step much coarser than the second
#: can otherwise "explain" a mismatch in the bins +-1 only (seen on resampled photos
#: saved once).
OUTER_GAIN_MIN = 10.0


def _trace_kept(chi_single: float, chi_double: float, outer_gain: float, spread: int) -> bool:
    """Whether a frequency's double-compression fit is trusted (see the constants above)."""
    return spread >= MIN_SPREAD and chi_single - chi_double >= CHI2_GAIN_MIN and outer_gain >= OUTER_GAIN_MIN


def dq_factor(x: np.ndarray, q1: int, q2: int) -> np.ndarray:
    """The double-quantisation factor ``n(x)`` of quantisation steps ``q1`` then ``q2``.

    ``n(x) = (q1 / q2) * #{k : round(q1 k / q2) = x}``, a value exactly half-way
    between two bins counting half in each. For a smooth coefficient density
    ``p``, the histogram after quantising with ``q1``, dequantising and
    quantising with ``q2`` is about ``n(x)`` times the histogram of a single
    quantisation with ``q2``; ``n`` averages to 1 and is 1 everywhere when
    ``q1`` divides ``q2``.

    Parameters
    ----------
    x : array_like of int
        Bins (quantised coefficient values).
    q1, q2 : int
        First and second quantisation steps (>= 1).

    Returns
    -------
    ndarray, float64, same shape as ``x``

    Examples
    --------
    >>> dq_factor(np.arange(0, 4), 3, 2).tolist()  # q1 > q2: some bins are empty
    [1.5, 0.75, 0.75, 1.5]
    """
    x = np.asarray(x, dtype=np.int64)
    lo, hi, m = q2 * (2 * x - 1), q2 * (2 * x + 1), 2 * q1
    # integers k with lo < m k < hi, plus half of those on either boundary
    inner = (-((-hi) // m) - 1) - (lo // m)
    ties = 0.5 * ((lo % m) == 0) + 0.5 * ((hi % m) == 0)
    return (q1 / q2) * (inner + ties)


@dataclass(frozen=True)
class DoubleJpegAnalysis:
    """Result of :func:`analyze_double_jpeg`.

    Attributes
    ----------
    q2 : ndarray, int, shape (8, 8)
        The (last) luminance quantisation table, natural order.
    q1 : ndarray, int, shape (8, 8)
        Estimated first-compression steps; 0 where not analysed or where no
        double-quantisation trace was found.
    alpha : ndarray, float, shape (8, 8)
        Fitted share of doubly quantised coefficients (NaN where no trace was kept).
    informative : tuple of int
        Natural indices of the frequencies whose trace enters the map.
    log_odds : ndarray, float64, shape (H // 8, W // 8)
        Per block, ``log P(single) / P(double)`` summed over the informative
        frequencies (0 everywhere when there are none).
    lattice_misfit : float
        Mean ``|C / q2 - round(C / q2)|`` over the AC coefficients with
        ``q2 >= 4`` and ``|C / q2| >= 0.5`` (0 when there are fewer than
        :data:`LATTICE_MIN_COUNT`).
    table_source : str
        ``"file"`` or ``"IJG quality Q"``.
    chi2_single, chi2_double : ndarray, float, shape (8, 8)
        Per analysed frequency, the weighted squared misfit (see :data:`MODEL_ERROR`) of the
        single-compression model and of the best double-compression fit (NaN
        where not analysed); see :func:`analyze_double_jpeg` for when a trace
        is kept.
    """

    q2: np.ndarray
    q1: np.ndarray
    alpha: np.ndarray
    informative: tuple[int, ...]
    log_odds: np.ndarray
    lattice_misfit: float
    table_source: str
    chi2_single: np.ndarray
    chi2_double: np.ndarray


def _luma_table(img: LoadedImage) -> tuple[np.ndarray, str] | None:
    if img.info.jpeg_luma_table is not None:
        return np.asarray(img.info.jpeg_luma_table, dtype=np.int64).reshape(8, 8), "file"
    if img.info.jpeg_quality is not None:
        return ijg_luma_table(img.info.jpeg_quality), f"IJG quality {img.info.jpeg_quality:g}"
    return None


class _Fit(NamedTuple):
    q1: int
    alpha: float
    chi2_single: float
    chi2_double: float
    outer_gain: float  # chi-square gain of the best fit on the bins |x| >= 2 alone
    n: np.ndarray  # smoothed n(x) of the best q1 (ones for the single-compression model)


def _fit_frequency(h: np.ndarray, h0: np.ndarray, xs: np.ndarray, q2: int, sig: float) -> _Fit:
    """Best first step ``q1`` and share ``alpha`` for one frequency's histogram ``h``.

    Model: ``h ~ alpha n(x) h0 + (1 - alpha) h0`` over the bins ``x != 0``, fitted by
    least squares weighted by ``1 / (h0 + 1 + (MODEL_ERROR h0)^2)``; ``n`` is smoothed
    by the rounding error (Gaussian, ``sig`` bins). Steps that divide ``q2`` give
    ``n = 1`` (the single-compression model, ``alpha = 1``).
    """
    use = xs != 0
    g = _smoothing_kernel(sig)
    w = 1.0 / (h0[use] + 1.0 + (MODEL_ERROR * h0[use]) ** 2)
    a2 = (h0 - h)[use]
    base = float(np.sum(w * a2**2))
    best = _Fit(1, 1.0, base, base, 0.0, np.ones(xs.size))
    outer = np.abs(xs[use]) >= 2
    for q1 in range(2, Q1_MAX + 1):
        if q2 % q1 == 0:
            continue  # same model as q1 = 1
        n = np.convolve(dq_factor(xs, q1, q2), g, mode="same")
        a1 = (n * h0 - h0)[use]
        den = float(np.sum(w * a1 * a1))
        if den <= 0.0:
            continue
        alpha = min(-float(np.sum(w * a1 * a2)) / den, 1.0)
        if alpha <= ALPHA_MIN:
            continue
        r2 = w * (alpha * a1 + a2) ** 2
        err = float(np.sum(r2))
        if err < best.chi2_double:
            best = _Fit(q1, alpha, base, err, float(np.sum((w * a2**2 - r2)[outer])), n)
    return best


def _smoothing_kernel(sig: float) -> np.ndarray:
    f = max(1, int(np.ceil(4.0 * sig)))
    p = np.arange(-f, f + 1)
    g = np.exp(-0.5 * (p / max(sig, 1e-3)) ** 2)
    return g / g.sum()


def analyze_double_jpeg(image: Any, *, coefficients: int = 15) -> DoubleJpegAnalysis:
    """Fit the aligned double-JPEG model to the luminance DCT coefficients.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        JPEG-decoded pixels, with the last quantisation table known: read from
        the file, or the IJG table of ``info.jpeg_quality`` for arrays.
    coefficients : int, default 15
        The first AC frequencies in zigzag order that are analysed (1-63).

    Returns
    -------
    DoubleJpegAnalysis

    Raises
    ------
    ValueError
        No quantisation table is known (not a JPEG file and no
        ``jpeg_quality``), the image is smaller than 16 pixels on a side, or
        ``coefficients`` is outside 1-63.

    Notes
    -----
    Coefficients are recovered from the pixels: ``C`` = 8x8 DCT of
    ``Y - 128`` on the JPEG grid, ``x = round(C / q2)``. The single-compression
    histogram ``h0`` is that of the DCT on the grid shifted by one pixel
    (which breaks the blocking), quantised with ``q2``. Per frequency, ``q1``
    in 1-:data:`Q1_MAX` and ``alpha`` minimise ``chi2 = sum_{x != 0} (h(x) -
    alpha n(x) h0(x) - (1 - alpha) h0(x))^2 / v(x)`` with ``v = h0 + 1 +
    (0.1 h0)^2`` (the mixture of Bianchi, De Rosa & Piva 2011, fitted with
    Poisson weights plus a 10 % model error, :data:`MODEL_ERROR`), ``n``
    smoothed by the rounding error measured on the lattice; the fit must
    lower the single-compression ``chi2`` (``alpha = 0``) by at least
    :data:`CHI2_GAIN_MIN` (and by :data:`OUTER_GAIN_MIN` on the bins ``|x|
    >= 2`` alone), on a frequency with at least :data:`MIN_SPREAD` blocks
    where ``|x| >= 2``.
    A coefficient ``x != 0`` then has likelihood ratio ``P(x | double) /
    P(x | single) = alpha n(x) + 1 - alpha``, and a block's log-odds of single
    compression is minus the sum of their logs.
    """
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=63)
    img = as_image(image, min_size=16)
    found = _luma_table(img)
    if found is None:
        raise ValueError("analyze_double_jpeg needs the last JPEG quantisation table: pass a JPEG file, or an "
                         "image whose info.jpeg_quality is set (IJG table assumed)")
    q2t, source = found
    y = img.gray().astype(np.float64) * (255.0 / img.info.white_level) - 128.0  # JFIF Y = BT.601 luma
    c = block_dct(y)
    cs = block_dct(y[1:, 1:])
    hb, wb = c.shape[:2]
    flat = c.reshape(hb * wb, 64)
    flat_s = cs.reshape(-1, 64)
    qv = q2t.ravel().astype(np.float64)
    frac = flat / qv
    err = frac - np.rint(frac)
    ac = np.arange(64) != 0
    lat = ac & (qv >= 4)
    # lattice check on the coefficients that were not quantised to 0 (those sit near 0
    # whatever the grid); fewer than LATTICE_MIN_COUNT leaves the grid unchecked
    on = lat[None, :] & (np.abs(frac) >= 0.5)
    misfit = float(np.mean(np.abs(err[on]))) if on.sum() >= LATTICE_MIN_COUNT else 0.0
    e = (err * qv)[:, lat] if lat.any() else err[:, ac] * qv[ac]
    sig_e = float(np.sqrt(np.mean(e**2)))
    q1t = np.zeros(64, np.int64)
    alphat = np.full(64, np.nan)
    log_odds = np.zeros(hb * wb)
    chi2 = np.full((64, 2), np.nan)
    informative: list[int] = []
    if misfit <= LATTICE_MAX:
        for k in ZIGZAG[1 : coefficients + 1]:
            q2 = int(qv[k])
            if q2 < 2:
                continue
            xq = np.rint(frac[:, k]).astype(np.int64)
            m = int(min(np.abs(xq).max(initial=0), 2047)) + 1
            xs = np.arange(-m, m + 1)
            h = np.bincount(np.clip(xq, -m, m) + m, minlength=xs.size).astype(np.float64)
            x0 = np.clip(np.rint(flat_s[:, k] / q2).astype(np.int64), -m, m)
            h0 = np.bincount(x0 + m, minlength=xs.size).astype(np.float64)
            h0 *= h.sum() / max(h0.sum(), 1.0)
            fit = _fit_frequency(h, h0, xs, q2, sig_e / q2)
            chi2[k] = (fit.chi2_single, fit.chi2_double)
            if q2 % fit.q1 == 0 or not _trace_kept(fit.chi2_single, fit.chi2_double, fit.outer_gain,
                                                   int(np.sum(np.abs(xq) >= 2))):
                continue
            alphat[k] = fit.alpha
            q1t[k] = fit.q1
            ratio = fit.alpha * fit.n + (1.0 - fit.alpha)
            lr = np.log(np.maximum(ratio, RATIO_FLOOR))
            lr[m] = 0.0  # zeroed coefficients carry no information
            log_odds -= lr[np.clip(xq, -m, m) + m]
            informative.append(int(k))
    return DoubleJpegAnalysis(q2=q2t, q1=q1t.reshape(8, 8), alpha=alphat.reshape(8, 8),
                              informative=tuple(informative), log_odds=log_odds.reshape(hb, wb),
                              lattice_misfit=misfit, table_source=source,
                              chi2_single=chi2[:, 0].reshape(8, 8), chi2_double=chi2[:, 1].reshape(8, 8))


@register("adq", kind="map")
def adq_map(image: Any, *, coefficients: int = 15, median: int = 5, force: bool = False) -> Heatmap:
    """Aligned double-JPEG map: per 8x8 block, the probability of a single compression.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`), at least 16 pixels a side.
    coefficients : int, default 15
        First AC frequencies (zigzag) analysed, see :func:`analyze_double_jpeg`.
    median : int, default 5
        Side of the median filter over the block grid (odd; 1 = none), which
        favours connected regions over isolated blocks.
    force : bool, default False
        Analyse pixels not known to be JPEG-compressed, with the IJG table of
        ``info.jpeg_quality`` (there must be one).

    Returns
    -------
    Heatmap
        ``values`` and ``raw``: ``1 / (1 + exp(-log_odds))``, median-filtered,
        per 8x8 block (pixels past the last full block take the nearest
        block): the posterior probability, at equal priors, that the block was
        compressed once (spliced) rather than twice. Not applicable (zeros and
        a ``note``) when the input is not JPEG, its coefficients do not lie on
        the table's lattice (cropped or resampled after the last compression),
        or no frequency shows a double-compression trace (a single
        compression, or a first one with the same or a finer table).

    Raises
    ------
    ValueError
        Invalid parameters, or an image smaller than 16 pixels on a side.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Bianchi, De Rosa & Piva (2011): for doubly compressed blocks the
    quantised coefficient ``x`` of a frequency follows ``p(x | H1) = n(x)
    p(x | H0)`` with ``n`` of :func:`dq_factor`; with the fitted mixture share
    ``alpha`` the per-coefficient ratio is ``alpha n(x) + 1 - alpha``, and
    blocks multiply the ratios of their frequencies. The map is the ADQ2
    detector of the MKLab toolbox in spirit, computed from decoded pixels
    instead of the file's coefficients (so it also runs on arrays).

    Known limitation: on large resampled photos saved once, the shifted-grid
    model of the single-compression histogram can be off enough for one or
    two frequencies to show a spurious trace (5 of 12 scikit-image sample
    photos upscaled to 2048 x 1536 and saved at quality 75 or 90); the note
    gives the number of frequencies, and a trace in one or two of them is
    weak evidence. No spurious trace was seen on 60 singly compressed
    384 x 256 crops.

    References
    ----------
    .. [1] T. Bianchi, A. De Rosa and A. Piva, "Improved DCT coefficient
       analysis for forgery localization in JPEG images", ICASSP 2011,
       2444-2447. DOI 10.1109/ICASSP.2011.5946978
    .. [2] Z. Lin, J. He, X. Tang and C.-K. Tang, "Fast, automatic and
       fine-grained tampered JPEG image detection via DCT coefficient
       analysis", Pattern Recognition 42(11), 2492-2501, 2009.
       DOI 10.1016/j.patcog.2009.03.019

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.jpeg.adq import adq_map
    >>> adq_map(np.zeros((64, 64, 3), np.uint8)).applicable  # an array, not a JPEG
    False
    """
    from scipy.ndimage import median_filter

    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=63)
    median = check_int(median, "median", minimum=1)
    if median % 2 == 0:
        raise ValueError(f"median={median} must be odd (1 = no filtering)")
    if not isinstance(force, (bool, np.bool_)):
        raise TypeError(f"force must be True or False, got {force!r}")
    t0 = time.perf_counter()
    img = as_image(image, min_size=16)
    h, w = img.shape
    params: dict[str, Any] = {"coefficients": coefficients, "median": median, "force": bool(force)}
    units = "P(block compressed once | coefficients)"

    def not_applicable(note: str) -> Heatmap:
        z = np.zeros((h, w), np.float32)
        return Heatmap(values=z, raw=z, method="adq", params=params, units=units,
                       timings={"total": time.perf_counter() - t0}, applicable=False, note=note)

    if not (img.info.is_jpeg or force):
        return not_applicable(f"ADQ is not applicable: the input ({img.info.format}) is not known to be "
                              f"JPEG-compressed; pass force=True with info.jpeg_quality set if it is")
    if _luma_table(img) is None:
        return not_applicable("ADQ is not applicable: no JPEG quantisation table is known for this input")
    a = analyze_double_jpeg(img, coefficients=coefficients)
    params["table"] = a.table_source
    if a.lattice_misfit > LATTICE_MAX:
        return not_applicable(
            f"ADQ is not applicable: the 8x8 DCT coefficients do not lie on the quantisation lattice "
            f"(misfit {a.lattice_misfit:.2f} > {LATTICE_MAX}); cropped, resized or edited after the last "
            f"compression?")
    if not a.informative:
        return not_applicable("ADQ found no aligned double-compression trace: a single compression, or a "
                              "first compression with the same or a finer table")
    prob = 1.0 / (1.0 + np.exp(-np.clip(a.log_odds, -60.0, 60.0)))
    if median > 1:
        prob = median_filter(prob, size=median, mode="nearest")
    hb, wb = prob.shape
    rows = np.minimum(np.arange(h) // 8, hb - 1)
    cols = np.minimum(np.arange(w) // 8, wb - 1)
    values = np.ascontiguousarray(prob[rows][:, cols], dtype=np.float32)
    return Heatmap(values=values, raw=values.copy(), method="adq", params=params, units=units,
                   timings={"total": time.perf_counter() - t0},
                   note=f"{len(a.informative)} frequencies with a double-compression trace ({a.table_source})")
