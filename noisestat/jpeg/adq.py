"""Aligned double-JPEG (ADQ) map: which 8x8 blocks lack the double-quantisation trace.

A JPEG photo that was decompressed, edited and saved again carries, in the
blocks that were not touched, the trace of both compressions: their DCT
coefficients were quantised with step ``q1`` and then again with ``q2``, so
the histogram of each frequency shows a periodic pattern ``n(x)``. Pasted
content (resampled, moved off the 8x8 grid, or never compressed) was only
quantised once and lacks it. Per frequency, the first step ``q1`` and the
share ``alpha`` of doubly quantised coefficients are fitted to the
histogram; each block's coefficients then give the likelihood ratio of
"single" against "double" compression (Bianchi, De Rosa & Piva 2011). The
quantised coefficients are the file's own when it can be read
(:mod:`noisestat.blocks.jpeg`), else they are recomputed from the decoded
pixels. Every JPEG gets a map; whether the image as a whole shows a double
compression with a coarser first table is the separate trace statistic
(``params["trace_found"]``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._numba import run_tasks
from .._validate import check_bool, check_int
from ..blocks.dct import ZIGZAG
from ..blocks.filters import median_filter
from ..blocks.jpeg import not_jpeg_reason, pixel_coefficients, read_coefficients
from ..blocks.tiling import expand_grid
from ..io import as_image, ijg_luma_table
from ..registry import register
from ..types import Heatmap, LoadedImage
from ._adq_kernels import mixture_em, smoothed_dq_factor

__all__ = ["adq_map", "analyze_double_jpeg", "DoubleJpegAnalysis", "dq_factor", "double_pmf"]


#: Largest first-compression step tried per frequency: IJG quality 40 has steps up to 30
#: on the first 16 zigzag frequencies (Bianchi et al.'s code tries up to 20-30 there).
#: On the synthetic splices of ``benchmarks/synthetic_adq_files.py`` (seeds 21 and 5, and
#: seed 3 with a finer first table, ``--first 85-97 --second 60-84``; 15 AC frequencies) 30 gave a mean
#: F1-best of 0.909 / 0.783 / 0.490, 48 0.903 / 0.782 / 0.465, 20 0.908 / 0.781 / 0.474:
#: larger steps fit the noise of sparse histograms.
Q1_MAX = 30
#: A frequency counts as doubly compressed only when the fitted share of doubly
#: quantised coefficients exceeds this: the host, compressed twice, is the larger part.
#: Bianchi et al.'s code uses 0.25; spurious fits on singly compressed photos have
#: ``alpha`` 0.3-0.67 (e.g. a parity "trace", ``q1 = 2`` on steps of 1, at quality >= 92).
#: On 24 synthetic splices (384 x 256 crops of the sample photos, first quality 55-89,
#: second 70-99, 5-30 % pasted) and the same crops saved once: 0.5 gave a map for 23
#: splices (mean F1-best 0.87) and 9 of 24 singles, 0.65 for 21 (0.84) and 2 singles
#: (none with MIN_FREQUENCIES = 2). The old pixel-based map: 19 splices (0.77), 1 single.
ALPHA_MIN = 0.65
#: A frequency enters the map when its fitted share of doubly quantised coefficients
#: exceeds this (and its gain is positive); Bianchi et al.'s code keeps ``alpha > 0.25``.
#: Spurious fits on a singly compressed image enter too: the map is then noise, and the
#: image-level trace test (:data:`ALPHA_MIN` and below) says so.
MAP_ALPHA_MIN = 0.25
#: The trace test looks at the first this many AC frequencies (zigzag), whatever
#: ``coefficients`` enter the map.
TRACE_COEFFICIENTS = 15
#: With ``border="host"``, the median filter pads the block grid with this log-odds of
#: doubly compressed (posterior ``1 - 1e-26``: Bianchi et al.'s code pads the probability
#: map with zeros). On the synthetic splices of ``benchmarks/synthetic_adq_files.py``
#: (seeds 21, 5; seed 3 finer first; seed 8 with 1-5 % pasted; 15 AC frequencies) the mean F1-best was
#: 0.905 / 0.792 / 0.494 / 0.797 with it and 0.909 / 0.783 / 0.490 / 0.776 with
#: ``"nearest"``.
BORDER_LOG_ODDS = 60.0
#: Mean ``|C / q2 - round(C / q2)|`` above which the coefficients are taken not to lie on the
#: quantisation lattice of the table (about 0.05 for a decoded JPEG, 0.25 off the grid).
#: Checked only when the coefficients are recomputed from pixels.
LATTICE_MAX = 0.15
#: Fewest non-zero AC coefficients (with steps >= 4) on which the lattice is checked.
LATTICE_MIN_COUNT = 200
#: Per-coefficient likelihood ratios are clipped to ``[RATIO_FLOOR, 1 / RATIO_FLOOR]`` (an
#: "empty" bin of the double-quantisation model would otherwise decide a block alone).
RATIO_FLOOR = 0.02
#: Most blocks used to estimate the unquantised density and the rounding error.
CALIBRATION_BLOCKS = 20000
#: EM iterations for the mixture share ``alpha`` (it converges in about 10).
EM_STEPS = 30
#: Share of the histogram mass spread evenly over the bins as a pseudo-count, so that
#: bins the shifted-grid estimate left empty keep a small probability.
PSEUDO_MASS = 0.01
#: A frequency enters the map when its best fit has ``alpha >`` :data:`ALPHA_MIN`, a
#: positive gain and at least this many blocks with ``|x| >= 2`` (smooth content leaves
#: high frequencies with 0 and +-1 only, which one mixture weight fits exactly).
MIN_SPREAD = 100
#: The image has a trace when the log-likelihood gain of the double-compression
#: mixture over the single-compression model, summed over those frequencies, is at
#: least this (nats) ...
GAIN_MIN = 20.0
#: ... and at least this per non-zero coefficient of those frequencies. The
#: shifted-grid single-compression model has its own misfit, which any mixture
#: exploits a little. On 12 scikit-image sample photos (384 x 256 crops, noise 1.5)
#: saved once at quality 70-95 the gain per coefficient was 0.000-0.014 for 11 and 0.088
#: for one (quality 92); after a first compression coarser than the second (12 splices,
#: first quality 55-89) 0.024-1.3, and 0.010-0.012 where the first was as fine or finer.
GAIN_PER_COEF_MIN = 0.015
#: ... over at least this many frequencies (a first compression leaves its trace on
#: most of them; one frequency alone was seen on a 3 MP photo upscaled and saved once).
MIN_FREQUENCIES = 2


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
        Estimated first-compression steps of the frequencies in the map; 0
        elsewhere.
    alpha : ndarray, float, shape (8, 8)
        Fitted share of doubly quantised coefficients of the best ``q1`` (NaN
        where not analysed or no ``q1`` was tried).
    informative : tuple of int
        Natural indices of the frequencies that enter the map (DC is 0).
    log_odds : ndarray, float64, shape (H // 8, W // 8)
        Per block, ``log P(single) / P(double)`` summed over the informative
        frequencies (0 everywhere when there are none).
    lattice_misfit : float
        Mean ``|C / q2 - round(C / q2)|`` over the AC coefficients with
        ``q2 >= 4`` and ``|C / q2| >= 0.5`` when the coefficients are
        recomputed from pixels (0 when read from the file, or when there are
        fewer than :data:`LATTICE_MIN_COUNT`).
    table_source : str
        ``"file"`` or ``"IJG quality Q"``.
    gain : ndarray, float, shape (8, 8)
        Per analysed frequency, the log-likelihood gain (nats) of the best
        double-compression mixture over the single-compression model on the
        non-zero coefficients (NaN where not analysed): the trace statistic.
    coefficient_source : str
        ``"file"`` (the file's quantised coefficients,
        :func:`noisestat.blocks.jpeg.read_coefficients`) or ``"pixels"``
        (recomputed from the decoded pixels).
    rounding_sigma : float
        Standard deviation of the rounding error added between the two
        compressions, in DCT units (see :func:`analyze_double_jpeg`).
    trace_frequencies : tuple of int
        Natural indices of the AC frequencies that pass the trace test's
        per-frequency criteria.
    trace_gain : float
        Their total gain (nats).
    trace : float
        ``trace_gain`` per non-zero coefficient of those frequencies.
    trace_found : bool
        The image-level decision: a double compression whose first table was
        coarser than the second.
    """

    q2: np.ndarray
    q1: np.ndarray
    alpha: np.ndarray
    informative: tuple[int, ...]
    log_odds: np.ndarray
    lattice_misfit: float
    table_source: str
    gain: np.ndarray
    coefficient_source: str = "pixels"
    rounding_sigma: float = 0.0
    trace_frequencies: tuple[int, ...] = ()
    trace_gain: float = 0.0
    trace: float = 0.0
    trace_found: bool = False


def _luma_table(img: LoadedImage) -> tuple[np.ndarray, str] | None:
    if img.info.jpeg_luma_table is not None:
        return np.asarray(img.info.jpeg_luma_table, dtype=np.int64).reshape(8, 8), "file"
    if img.info.jpeg_quality is not None:
        return ijg_luma_table(img.info.jpeg_quality), f"IJG quality {img.info.jpeg_quality:g}"
    return None


class _Fit(NamedTuple):
    q1: int
    alpha: float
    gain: float  # log-likelihood gain (nats) over the single-compression model
    llr: np.ndarray  # per bin, log P(x | single) / P(x | double), 0 at x = 0


def _quantised_pmf(us: np.ndarray, q: float, m: int) -> np.ndarray:
    """Histogram of ``round(u / q)`` over ``-m..m`` (clipped), with :data:`PSEUDO_MASS`, summing to 1.

    ``us`` is sorted, so that each step ``q`` costs one ``searchsorted``.
    """
    cdf = np.searchsorted(us, (np.arange(-m, m + 2) - 0.5) * q).astype(np.float64)
    h = np.diff(cdf)
    h[0] += cdf[0]
    h[-1] += us.size - cdf[-1]
    h += PSEUDO_MASS * max(us.size, 1) / h.size + 1e-12
    return h / h.sum()


def double_pmf(u: np.ndarray, q1: int, q2: int, sig: float, m: int, *, bias: float = 0.0) -> np.ndarray:
    """Distribution of ``x = round((q1 round(c / q1) + e) / q2)`` over ``-m..m``.

    ``c`` follows the empirical distribution of the unquantised coefficients
    ``u`` and ``e ~ N(bias, sig^2)`` is the rounding error of the decompression
    between the two quantisations: ``P(x) = sum_k P(round(c / q1) = k)
    [Phi(((x + 1/2) q2 - q1 k) / sig) - Phi(((x - 1/2) q2 - q1 k) / sig)]``.

    Parameters
    ----------
    u : ndarray of float
        Samples of the unquantised coefficient (sorted is fastest).
    q1, q2 : int
        First and second quantisation steps.
    sig : float
        Rounding-error standard deviation (DCT units, > 0).
    m : int
        Bins ``-m..m`` (values beyond are clipped into the end bins).
    bias : float, default 0
        Mean of the rounding error (DCT units).

    Returns
    -------
    ndarray, float64, shape (2 m + 1,), summing to 1

    Examples
    --------
    >>> p = double_pmf(np.linspace(-40, 40, 801), 6, 2, 0.3, 25)
    >>> bool(p[25 + 3] > 20 * p[25 + 2])  # only multiples of q1 / q2 = 3 are left
    True
    """
    from scipy.special import ndtr

    kmax = int(np.ceil((m + 0.5) * q2 / q1)) + 1
    pk = _quantised_pmf(np.sort(u), q1, kmax) if not _is_sorted(u) else _quantised_pmf(u, q1, kmax)
    t = q1 * np.arange(-kmax, kmax + 1, dtype=np.float64) + bias
    w = int(np.ceil(5.0 * sig / q2)) + 1
    x = np.rint(t / q2)[:, None] + np.arange(-w, w + 1)[None, :]
    p = ndtr(((x + 0.5) * q2 - t[:, None]) / sig) - ndtr(((x - 0.5) * q2 - t[:, None]) / sig)
    out = np.bincount(np.clip(x, -m, m).astype(np.int64).ravel() + m, weights=(pk[:, None] * p).ravel(),
                      minlength=2 * m + 1)
    return out / out.sum()


def _is_sorted(u: np.ndarray) -> bool:
    return bool(u.size < 2 or np.all(u[1:] >= u[:-1]))


def _clipped(x: np.ndarray, amax: int, m: int) -> np.ndarray:
    """``np.clip(x, -m, m)`` for integers ``x`` with ``max |x| = amax`` (``x`` itself when nothing clips)."""
    return x if amax <= m else np.clip(x, -m, m)


def _fit_frequency(x: np.ndarray, u: np.ndarray, q2: int, sig: float, bias: float = 0.0) -> _Fit:
    """Best first step ``q1`` and share ``alpha`` for one frequency's quantised coefficients ``x``.

    Model over the non-zero bins: ``h(x) ~ alpha P1(x; q1) + (1 - alpha) P0(x)`` with
    ``P0`` = histogram of ``round(u / q2)`` and ``P1`` proportional to ``P0(x)
    n_sigma(x; q1, q2)`` (:func:`~noisestat.jpeg._adq_kernels.smoothed_dq_factor`), both
    conditioned on ``x != 0``; ``alpha`` by EM for each ``q1`` in ``2..Q1_MAX`` that does
    not divide ``q2`` (those leave no trace), ``q1`` maximising the likelihood.
    """
    amax = int(np.abs(x).max(initial=0))
    m = min(max(amax, 1), 2047) + 1
    h = np.bincount(_clipped(x, amax, m) + m, minlength=2 * m + 1).astype(np.float64)
    nz = np.arange(2 * m + 1) != m
    h = h[nz]
    cands = [q1 for q1 in range(2, Q1_MAX + 1) if q2 % q1 != 0]
    u = np.sort(u)
    p0 = _quantised_pmf(u, q2, m)[nz]
    p0 /= p0.sum()
    none = _Fit(0, 0.0, 0.0, np.zeros(2 * m + 1))
    if not cands or h.sum() == 0:
        return none
    p1 = np.stack([p0 * smoothed_dq_factor(m, float(q1), float(q2), float(sig), float(bias))[nz] for q1 in cands])
    p1 += 1e-12
    p1 /= p1.sum(axis=1, keepdims=True)
    seen = h > 0  # empty bins do not enter the likelihood
    alpha, gain = mixture_em(h[seen], p1, np.flatnonzero(seen), p0[seen], EM_STEPS)
    best = int(np.argmax(gain))
    llr = np.zeros(2 * m + 1)
    mix = alpha[best] * p1[best] + (1.0 - alpha[best]) * p0
    llr[nz] = np.clip(np.log(p0 / mix), np.log(RATIO_FLOOR), -np.log(RATIO_FLOOR))
    return _Fit(cands[best], float(alpha[best]), float(gain[best]), llr)


def _usable(fit: _Fit, x: np.ndarray) -> bool:
    """Whether a frequency's double-compression fit can enter the map (see the constants above)."""
    return fit.q1 > 0 and fit.alpha > ALPHA_MIN and fit.gain > 0.0 and int(np.sum(np.abs(x) >= 2)) >= MIN_SPREAD


def _trace_found(gains: list[float], counts: list[int]) -> bool:
    """Image-level decision: the usable frequencies' total gain passes both thresholds."""
    g = float(sum(gains))
    return len(gains) >= MIN_FREQUENCIES and g >= GAIN_MIN and g >= GAIN_PER_COEF_MIN * max(sum(counts), 1)


class _Coefficients(NamedTuple):
    xt: np.ndarray  # (64, N) int64 quantised coefficients on the JPEG grid, one frequency per row
    u: np.ndarray  # (Ns, 64) float64 unquantised estimate (grid shifted by one pixel)
    sig: float  # rounding-error standard deviation, DCT units
    dc_bias: float  # mean rounding error of the DC coefficient, DCT units
    misfit: float  # lattice misfit (pixels) or 0 (file)
    source: str
    shape: tuple[int, int]  # block grid


def _block_rows(y: np.ndarray, step: int, offset: int = 0) -> np.ndarray:
    """Every ``step``-th row of 8x8 blocks of ``y[offset:, offset:]`` (a plane on that grid)."""
    hb = (y.shape[0] - offset) // 8
    if step <= 1 or hb < 2:
        return y[offset:, offset:]
    return y[offset : offset + 8 * hb, offset:].reshape(hb, 8, -1)[::step].reshape(-1, y.shape[1] - offset)


def _coefficients(img: LoadedImage, q2t: np.ndarray) -> _Coefficients:
    """The quantised luma coefficients (from the file when readable) and their calibration.

    The shifted-grid density and the rounding error are estimated on every ``s``-th block
    row, ``s`` chosen for at most :data:`CALIBRATION_BLOCKS` blocks (all of them up to
    1.3 MP), which keeps large images under 1 s/MP.
    """
    y = img.gray().astype(np.float64) * (255.0 / img.info.white_level)  # JFIF Y = BT.601 luma
    hb, wb = y.shape[0] // 8, y.shape[1] // 8
    step = max(1, -(-hb * wb // CALIBRATION_BLOCKS))
    u = pixel_coefficients(_block_rows(y, step, 1)).reshape(-1, 64)
    qv = q2t.ravel().astype(np.float64)
    file = read_coefficients(img)
    if file is not None and np.array_equal(file.luma_table.ravel(), qv):
        q = file.luma[:hb, :wb].reshape(hb * wb, 64)
        xt = np.ascontiguousarray(q.T).astype(np.int64)  # transposed as int16: a quarter of the bytes
        flat = pixel_coefficients(_block_rows(y, step)).reshape(-1, 64)
        xs = q.reshape(hb, wb, 64)[::step].reshape(-1, 64).astype(np.int64)
        misfit, source = 0.0, "file"
    else:
        flat = pixel_coefficients(y).reshape(hb * wb, 64)
        frac = flat / qv
        xs = np.rint(frac).astype(np.int64)
        xt = np.ascontiguousarray(xs.T)
        on = (np.arange(64) != 0)[None, :] & (qv >= 4)[None, :] & (np.abs(frac) >= 0.5)
        misfit = float(np.mean(np.abs(frac - xs)[on])) if on.sum() >= LATTICE_MIN_COUNT else 0.0
        source = "pixels"
    # rounding error of this decompression (Bianchi et al.: the same as between the two
    # compressions), plus the encoder's rounding of Y computed from RGB for colour input
    err = np.clip((flat - xs * qv)[:, 1:], -0.5 * qv[1:], 0.5 * qv[1:])
    var = float(np.mean(err**2)) + (1.0 / 12.0 if img.pixels.shape[2] == 3 else 0.0)
    dc_err = flat[:, 0] - xs[:, 0] * qv[0]
    dc_bias = float(np.mean(dc_err[np.abs(dc_err) <= 0.5 * qv[0]])) if dc_err.size else 0.0
    return _Coefficients(xt, u, max(float(np.sqrt(var)), 0.05), dc_bias, misfit, source, (hb, wb))


def _fit_frequencies(co: _Coefficients, qv: np.ndarray, ks: list[int]) -> dict[int, _Fit]:
    """:func:`_fit_frequency` of each frequency in ``ks`` (independent fits: two interleaved halves
    run as concurrent steps, :func:`~noisestat._numba.run_tasks`; each fit is what it is alone)."""
    ut = np.ascontiguousarray(co.u.T)  # one frequency per row

    def fit_all(part: list[int]) -> list[tuple[int, _Fit]]:
        return [(k, _fit_frequency(co.xt[k], ut[k], int(qv[k]), co.sig, co.dc_bias if k == 0 else 0.0))
                for k in part]

    halves = run_tasks([functools.partial(fit_all, ks[0::2]), functools.partial(fit_all, ks[1::2])])
    return dict(pair for half in halves for pair in half)


def _map_term(fit: _Fit, q2: int, sig: float, bias: float) -> np.ndarray:
    """Per bin ``-log(alpha n_sigma(x) + 1 - alpha)`` (0 at ``x = 0``), clipped to ``+-log(1 / RATIO_FLOOR)``."""
    m = (fit.llr.size - 1) // 2
    n = smoothed_dq_factor(m, float(fit.q1), float(q2), float(sig), float(bias))
    term = -np.log(np.maximum(fit.alpha * n + (1.0 - fit.alpha), 1e-300))
    term = np.clip(term, np.log(RATIO_FLOOR), -np.log(RATIO_FLOOR))
    term[m] = 0.0
    return term


def analyze_double_jpeg(image: Any, *, coefficients: int = 63) -> DoubleJpegAnalysis:
    """Fit the aligned double-JPEG model to the luminance DCT coefficients.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        A JPEG file (its quantised coefficients and table are read from it),
        or JPEG-decoded pixels with the last quantisation table known (the IJG
        table of ``info.jpeg_quality`` for arrays).
    coefficients : int, default 63
        The first AC frequencies in zigzag order that may enter the map
        (1-63); the DC coefficient may as well. The trace test always looks
        at the first :data:`TRACE_COEFFICIENTS`. All 63 (Bianchi et al.'s
        code: 14): on the synthetic splices of
        ``benchmarks/synthetic_adq_files.py`` (seeds 21 and 5; seed 3 with a
        finer first table; seed 8 with 1-5 % pasted) the mean F1-best was
        0.903 / 0.802 / 0.561 / 0.823 with 63, 0.905 / 0.792 / 0.494 / 0.797
        with 15; high frequencies with a pattern add evidence where the first
        table was finer than the second.

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
    Quantised coefficients ``x``: the file's own
    (:func:`noisestat.blocks.jpeg.read_coefficients`), else ``round(C / q2)``
    with ``C`` the 8x8 DCT of ``Y - 128`` on the JPEG grid. The unquantised
    density is estimated by the DCT ``u`` on the grid shifted by one pixel
    (which breaks the blocking). Per frequency with step ``q2``, the
    non-zero ``x`` follow the mixture ``alpha P1(x; q1) + (1 - alpha) P0(x)``
    (Bianchi, De Rosa & Piva 2011): ``P0`` = histogram of ``round(u / q2)``
    (one compression), ``P1`` proportional to ``P0(x) n_sigma(x)`` with
    ``n_sigma`` the double-quantisation factor :func:`dq_factor` of ``q1``
    then ``q2`` smoothed by the rounding error ``e ~ N(b, sigma^2)`` between
    them (the form of Bianchi et al.'s model; :func:`double_pmf` is the exact
    distribution, which fitted the synthetic splices slightly worse and
    costs more). ``sigma^2``
    is the mean squared ``C - q2 x`` over the AC coefficients (this
    decompression's rounding, clipped to ``+-q2 / 2``), plus ``1/12`` for
    colour input (the encoder rounds ``Y``); ``b`` is the mean of ``C - q2
    x`` for the DC coefficient and 0 for the others. ``alpha`` is fitted by
    EM for every ``q1`` in ``2..Q1_MAX`` not dividing ``q2`` and the ``q1``
    of highest likelihood kept; its gain over ``alpha = 0`` is the
    frequency's trace statistic (``gain``).

    Map (every input whose coefficients are on the lattice): the frequencies
    with a fitted ``alpha >`` :data:`MAP_ALPHA_MIN` and a positive gain
    (``informative``; the DC coefficient included) give each block the
    log-odds of a single compression (the block was pasted or edited)

    .. math::

        \\ell = \\sum_k -\\log\\left(\\alpha_k\\, n_{\\sigma}(x_k; q_{1,k}, q_{2,k})
        + 1 - \\alpha_k\\right)

    over its non-zero coefficients, with :math:`n_\\sigma` the
    double-quantisation factor :func:`dq_factor` smoothed by the rounding
    error (each term clipped to ``+-log(1 / RATIO_FLOOR)``): the likelihood
    ratio of the single-compression model (the unquantised density quantised
    with ``q2``) against the mixture, in which the density cancels (Bianchi
    et al.'s per-coefficient probabilities); zeros carry no evidence.

    Trace statistic (``trace_found``, the image-level decision): the first
    :data:`TRACE_COEFFICIENTS` AC frequencies with ``alpha >`` :data:`ALPHA_MIN`, a positive gain and
    :data:`MIN_SPREAD` are the trace frequencies; the image has a trace when
    at least :data:`MIN_FREQUENCIES` are and their total gain passes
    :data:`GAIN_MIN` and :data:`GAIN_PER_COEF_MIN` per non-zero coefficient
    (``trace`` is that gain per coefficient).
    """
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=63)
    img = as_image(image, min_size=16)
    found = _luma_table(img)
    if found is None:
        raise ValueError("analyze_double_jpeg needs the last JPEG quantisation table: pass a JPEG file, or an "
                         "image whose info.jpeg_quality is set (IJG table assumed)")
    q2t, source = found
    co = _coefficients(img, q2t)
    qv = q2t.ravel()
    q1t = np.zeros(64, np.int64)
    alphat = np.full(64, np.nan)
    gain = np.full(64, np.nan)
    log_odds = np.zeros(co.xt.shape[1])
    informative: list[int] = []
    traced: dict[int, _Fit] = {}
    xt = co.xt
    if co.misfit <= LATTICE_MAX:
        ks = [int(k) for k in ZIGZAG[: max(coefficients, TRACE_COEFFICIENTS) + 1]]
        fits = _fit_frequencies(co, qv, ks)
        for pos, k in enumerate(ks):
            bias = co.dc_bias if k == 0 else 0.0
            fit = fits[k]
            gain[k] = fit.gain
            if fit.q1 > 0:
                alphat[k] = fit.alpha
            if 0 < pos <= TRACE_COEFFICIENTS and _usable(fit, xt[k]):
                traced[k] = fit
            if pos <= coefficients and fit.q1 > 0 and fit.alpha > MAP_ALPHA_MIN and fit.gain > 0.0:
                q1t[k] = fit.q1
                term = _map_term(fit, int(qv[k]), co.sig, bias)
                m = (term.size - 1) // 2
                log_odds += term[_clipped(xt[k], int(np.abs(xt[k]).max(initial=0)), m) + m]
                informative.append(k)
    counts = [int(np.count_nonzero(xt[k])) for k in traced]
    trace_gain = float(sum(f.gain for f in traced.values()))
    return DoubleJpegAnalysis(q2=q2t, q1=q1t.reshape(8, 8), alpha=alphat.reshape(8, 8),
                              informative=tuple(informative), log_odds=log_odds.reshape(co.shape),
                              lattice_misfit=co.misfit, table_source=source, gain=gain.reshape(8, 8),
                              coefficient_source=co.source, rounding_sigma=co.sig,
                              trace_frequencies=tuple(traced), trace_gain=trace_gain,
                              trace=trace_gain / max(sum(counts), 1),
                              trace_found=_trace_found([f.gain for f in traced.values()], counts))


@register("adq", kind="map", applies="JPEG input (coefficients read from the file, or on the table's lattice)")
def adq_map(image: Any, *, coefficients: int = 63, median: int = 5, border: str = "host",
            force: bool = False) -> Heatmap:
    """Aligned double-JPEG map: per 8x8 block, the probability of a single compression.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`), at least 16 pixels a side.
    coefficients : int, default 63
        First AC frequencies (zigzag) that may enter the map besides DC, see
        :func:`analyze_double_jpeg`.
    median : int, default 5
        Side of the median filter over the block grid (odd; 1 = none), which
        favours connected regions over isolated blocks.
    border : {"host", "nearest"}, default "host"
        What the median filter sees beyond the image: ``"host"``, blocks
        that are certainly doubly compressed (as the zero-padded filter of
        Bianchi et al.'s code), which keeps a spliced region from being
        claimed at the border on little evidence; ``"nearest"``, the nearest
        block repeated.
    force : bool, default False
        Analyse pixels not known to be JPEG-compressed, with the IJG table of
        ``info.jpeg_quality`` (there must be one).

    Returns
    -------
    Heatmap
        ``values`` and ``raw``: ``1 / (1 + exp(-log_odds))``, median-filtered,
        per 8x8 block (pixels past the last full block take the nearest
        block): the posterior probability, at equal priors, that the block was
        compressed once (spliced) rather than twice; 0.5 everywhere when no
        frequency shows a double-quantisation pattern. Not applicable (zeros
        and a ``note``) when the input is not JPEG or its recomputed
        coefficients do not lie on the table's lattice (pixels cropped or
        resampled after the last compression). ``params``:
        ``coefficient_source`` (``"file"`` or ``"pixels"``),
        ``map_frequencies`` (how many frequencies enter the map), and the
        image-level trace statistic: ``trace_found`` (a double compression
        with a coarser first table was detected), ``trace_frequencies``,
        ``trace_gain`` (nats) and ``trace`` (nats per non-zero coefficient).

    Raises
    ------
    ValueError
        Invalid parameters, or an image smaller than 16 pixels on a side.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Bianchi, De Rosa & Piva (2011): for doubly compressed blocks the
    quantised coefficient ``x`` of a frequency is ``n(x)`` times more likely
    than after a single compression (:func:`dq_factor`, smoothed by the
    rounding error); the first steps ``q1`` and the share ``alpha`` of doubly
    compressed coefficients are fitted per frequency to the histogram, and
    blocks add ``-log(alpha n(x) + 1 - alpha)`` over their non-zero
    coefficients of the frequencies with a pattern (see
    :func:`analyze_double_jpeg`). ``x`` are the file's own quantised
    coefficients when :func:`noisestat.blocks.jpeg.read_coefficients` can
    read them (exact, no lattice check), else they are recomputed from the
    decoded pixels (arrays with ``force=True``; refused when off the table's
    lattice). The map is the ADQ2 detector of the MKLab toolbox in spirit.

    A map is given whether or not the image-level trace is found: on a
    singly compressed image the fitted ``alpha`` are small or the fits
    spurious, and the map is flat or noise; ``params["trace_found"]`` tells
    the two apart.

    Constants (:data:`MAP_ALPHA_MIN`, :data:`GAIN_MIN`,
    :data:`GAIN_PER_COEF_MIN`, :data:`MIN_SPREAD`, :data:`ALPHA_MIN`) were set
    on synthetic double-JPEG splices of the scikit-image sample photos
    (``benchmarks/synthetic_adq_files.py``, ``benchmarks/synthetic_double_jpeg.py``)
    and the same photos saved once, never on evaluation data.

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
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=63)
    median = check_int(median, "median", minimum=1)
    if median % 2 == 0:
        raise ValueError(f"median={median} must be odd (1 = no filtering)")
    force = check_bool(force, "force")
    if border not in ("host", "nearest"):
        raise ValueError(f"border={border!r}: expected 'host' or 'nearest'")
    t0 = time.perf_counter()
    img = as_image(image, min_size=16)
    h, w = img.shape
    params: dict[str, Any] = {"coefficients": coefficients, "median": median, "border": border,
                              "force": bool(force)}
    units = "P(block compressed once | coefficients)"

    def not_applicable(note: str) -> Heatmap:
        return Heatmap.not_applicable((h, w), method="adq", note=note, params=params, units=units,
                                      timings={"total": time.perf_counter() - t0})

    if why := not_jpeg_reason(img, force=force):
        return not_applicable(f"ADQ is not applicable: {why} (and set info.jpeg_quality)")
    if _luma_table(img) is None:
        return not_applicable("ADQ is not applicable: no JPEG quantisation table is known for this input")
    a = analyze_double_jpeg(img, coefficients=coefficients)
    t1 = time.perf_counter()
    params.update(table=a.table_source, coefficient_source=a.coefficient_source,
                  map_frequencies=len(a.informative), trace_found=bool(a.trace_found),
                  trace_frequencies=len(a.trace_frequencies), trace_gain=float(a.trace_gain),
                  trace=float(a.trace))
    if a.lattice_misfit > LATTICE_MAX:
        return not_applicable(
            f"ADQ is not applicable: the 8x8 DCT coefficients do not lie on the quantisation lattice "
            f"(misfit {a.lattice_misfit:.2f} > {LATTICE_MAX}); cropped, resized or edited after the last "
            f"compression?")
    lo = a.log_odds
    if median > 1:
        # blocks beyond the image count as host (doubly compressed, see the Notes)
        lo = median_filter(lo, size=median, mode="nearest" if border == "nearest" else "constant",
                           cval=-BORDER_LOG_ODDS)
    prob = 1.0 / (1.0 + np.exp(-np.clip(lo, -60.0, 60.0)))
    hb, wb = prob.shape  # pixels past the last full block take the nearest block
    rows, cols = np.minimum(np.arange(h) // 8, hb - 1), np.minimum(np.arange(w) // 8, wb - 1)
    values = expand_grid(np.ascontiguousarray(prob), rows, cols)
    t2 = time.perf_counter()
    trace = (f"a double-compression trace on {len(a.trace_frequencies)} frequencies ({a.trace_gain:.0f} nats, "
             f"{a.trace:.3f} per coefficient)" if a.trace_found else
             "no image-level double-compression trace (a single compression, or a first one with the same "
             "or a finer table)")
    return Heatmap(values=values, raw=values.copy(), method="adq", params=params, units=units,
                   timings={"analysis": t1 - t0, "map": t2 - t1, "total": t2 - t0},
                   note=f"{len(a.informative)} frequencies in the map; {trace} ({a.coefficient_source} "
                        f"coefficients, table {a.table_source})")
