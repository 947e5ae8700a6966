"""Non-aligned double-JPEG (NA-DJPG) map: which 8x8 blocks lack the trace of a shifted first compression.

A JPEG photo that was decoded, cropped (or otherwise moved off its 8x8 grid)
and saved again keeps, in the blocks that were not replaced, the trace of the
first compression on a grid shifted by ``(r, c)`` from the last one: the
block DCT computed on that shifted grid lies close to the lattice of the
first quantisation steps ``q1`` (blurred only by the second compression's
error). Pasted content that was not on that grid does not. Following Bianchi
and Piva (2012), the shift is found from the integer periodicity of the
low-frequency coefficients over the 64 grids, the steps ``q1`` are fitted per
frequency on the shifted grid, and every block gets the likelihood ratio of
"single compression" against "non-aligned double compression".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .._validate import check_bool, check_int
from ..blocks.dct import JPEG_BLOCK, ZIGZAG, block_dct, dct_matrix
from ..blocks.filters import median_filter
from ..blocks.jpeg import not_jpeg_reason
from ..io import as_image, ijg_luma_table
from ..registry import register
from ..types import Heatmap, LoadedImage
from ._nadq_kernels import shift_histograms

__all__ = ["nadq_map", "analyze_nonaligned", "NonAlignedAnalysis", "periodicity", "lattice_likelihood",
           "shift_evidence"]

#: The frequencies ``(u, v)`` whose integer periodicity is measured on the 64 grids.
SEARCH_FREQS = ((0, 0), (0, 1), (1, 0))
#: Blocks whose mean absolute difference of adjacent pixels is below this (gray levels)
#: are left out of the grid search: on smooth content a grid shifted by 4 pixels in one
#: direction averages two blocks of the last (or an aligned first) compression and
#: shows a pseudo-lattice of half its step.
ACTIVITY_MIN = 2.0
#: Largest quantisation step tried (IJG quality 13 has a DC step of 62).
Q_MAX = 64
#: First steps are looked for only from the last step plus this: the NA-DJPG trace is
#: weak when the first compression is not coarser (Bianchi & Piva 2012, Fig. 6), and finer
#: steps are where the last compression's own pseudo-lattices lie (see ``_allowed``).
STEP_MARGIN = 2
#: Histogram bins: width, and the lower edge (DCT coefficients of 8-bit pixels lie in
#: [-1024, 1024]; the edges are offset by 1/16 so that DC values, multiples of 1/8 on
#: integer pixels, never fall on an edge).
BIN = 0.25
BIN_LO = -1024.0 - 0.0625
N_BINS = 8194
#: Bins merged for the grid search's periodicity (bins of 0.5: a phase error of at most
#: pi / 8 at the smallest step compared, 4, on a search that is the costliest stage).
SEARCH_MERGE = 2
#: Smallest side (pixels) analysed: fewer blocks give no reliable periodicity.
MIN_SIDE = 64
#: Smallest robust spread of the periodicity energy over the 64 grids (its null
#: distribution, exponential with mean 1, has a MAD-based spread of about 0.7).
Z_SCALE_MIN = 0.5
#: A non-aligned trace is declared only when the best shifted grid's evidence (sum over
#: :data:`SEARCH_FREQS` of the best robust z over the steps) reaches this. Measured on
#: synthetic data only, never on CASIA: on the scikit-image sample photos saved once or
#: twice on the same grid (quality 50-99; 30 crops of 384 x 256 and 24 whole photos up to
#: 1536 x 1024) the best shifted grid reached at most 31.0, except on
#: ``immunohistochemistry``, whose source was itself JPEG-compressed on a grid offset by
#: (5, 3) (found at 400-850, moving with the crop: a true trace); shifted-grid double
#: compressions with a coarser first step reached 40-4000 (``benchmarks/synthetic_nadq.py``).
EVIDENCE_MIN = 50.0
#: ... and at least this share of the aligned grid's own evidence: an aligned double
#: compression (a strong first-step lattice on the grid (0, 0)) leaves weak mixed lattices
#: on grids shifted in one direction only (evidence 70-100 against 6658 on a 512 x 512
#: synthetic photo saved at quality 51 then 91).
ALIGNED_RATIO = 0.1
#: Gaussian widths (in coefficient units) of the lattice blur tried in the q1 fit.
SIGMAS = (0.4, 0.6, 0.85, 1.2, 1.7, 2.4, 3.4)
#: Candidate steps per frequency refined by the likelihood fit.
N_CANDIDATES = 3
#: A frequency enters the map only when its mixture fit gains at least this much
#: log-likelihood (nats) over the single-compression model and ...
GAIN_MIN = 20.0
#: ... its share of blocks on the lattice is at least this.
ALPHA_MIN = 0.2
#: Per-coefficient likelihood ratios are clipped to [RATIO_FLOOR, 1 / RATIO_FLOOR].
RATIO_FLOOR = 0.02
#: Smoothing (coefficient units) of the reference histogram that estimates p(y | H0).
P0_SMOOTH = 1.0


def _centres(merge: int = 1) -> np.ndarray:
    """Centres of the bins, or of groups of ``merge`` adjacent bins."""
    return BIN_LO + (np.arange(N_BINS // merge) + 0.5) * (BIN * merge)


def periodicity(hist: np.ndarray, steps: np.ndarray, *, merge: int = 1) -> np.ndarray:
    """Integer periodicity energy ``N |mean exp(2 pi i y / Q)|^2`` of binned coefficients.

    Parameters
    ----------
    hist : ndarray, shape (..., N_BINS // merge)
        Counts on the bins of centre ``BIN_LO + (b + 0.5) BIN merge``.
    steps : ndarray of int, shape (nQ,)
        Quantisation steps ``Q``.
    merge : int, default 1
        Bins merged in ``hist`` (the grid search uses 2: bins of 0.5).

    Returns
    -------
    ndarray, float64, shape (..., nQ)
        ``|sum_b h_b exp(2 pi i c_b / Q)|^2 / N``: about exponential with mean 1
        when the coefficients are not on a lattice of step ``Q``, about ``N``
        when they all are.

    Examples
    --------
    >>> h = np.zeros(N_BINS); h[np.searchsorted(_centres(), np.arange(-50, 50) * 6.0)] = 1.0
    >>> e = periodicity(h, np.array([5, 6]))
    >>> bool(e[1] > 99.0 > 1.0 > e[0])
    True
    """
    h = np.asarray(hist, dtype=np.float64)
    cos, sin = _phasors(tuple(int(q) for q in np.asarray(steps).ravel()), int(merge))
    n = np.maximum(h.sum(axis=-1, keepdims=True), 1.0)
    return ((h @ cos) ** 2 + (h @ sin) ** 2) / n


@lru_cache(maxsize=8)
def _phasors(steps: tuple[int, ...], merge: int) -> tuple[np.ndarray, np.ndarray]:
    ph = 2.0 * np.pi * _centres(merge)[:, None] / np.asarray(steps, dtype=np.float64)[None, :]
    cos, sin = np.cos(ph), np.sin(ph)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


def shift_evidence(energy: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per grid shift, the evidence of a lattice: robust z of the periodicity over the 64 grids.

    Parameters
    ----------
    energy : ndarray, shape (64, K, nQ)
        :func:`periodicity` of frequency ``k`` on shift ``8 r + c`` at step ``Q``.
    allowed : ndarray of bool, shape (K, nQ)
        Steps considered (those dividing the last step are not: every grid is
        compared on the first compression's lattice only).

    Returns
    -------
    evidence : ndarray, shape (64,)
        ``sum_k max_Q z[s, k, Q]``, ``z = (E - B) / max(1.4826 MAD_s E, Z_SCALE_MIN)`` with
        ``B = median_s E`` for the aligned grid (shift 0) and ``max(median_s E, E[0])``
        for the 63 shifted ones.
    best_step : ndarray of int, shape (64, K)
        Index of the maximising ``Q`` per shift and frequency.

    Examples
    --------
    >>> e = np.ones((64, 1, 2)); e[10, 0, 1] = 101.0; e[0, 0, 1] = 51.0
    >>> ev, bq = shift_evidence(e, np.ones((1, 2), bool))
    >>> int(1 + np.argmax(ev[1:])), float(ev[10]), int(bq[10, 0])
    (10, 100.0, 1)
    """
    med = np.median(energy, axis=0)
    mad = 1.4826 * np.median(np.abs(energy - med), axis=0)
    # a shifted grid is compared with the aligned one too: near-aligned grids of smooth
    # content inherit a blurred copy of the last compression's lattice (never stronger)
    base = np.concatenate([med[None], np.broadcast_to(np.maximum(med, energy[0]), (63,) + med.shape)])
    z = (energy - base) / np.maximum(mad, Z_SCALE_MIN)
    z = np.where(allowed[None], z, -np.inf)
    best = np.argmax(z, axis=2)
    zmax = np.take_along_axis(z, best[..., None], axis=2)[..., 0]
    return np.sum(np.where(np.isfinite(zmax), zmax, 0.0), axis=1), best


def _gauss_kernel(sigma: float, radius_sd: float = 8.0) -> np.ndarray:
    """Gaussian density of width ``sigma`` (coefficient units) sampled on the bins, times BIN."""
    f = max(1, int(np.ceil(radius_sd * sigma / BIN)))
    x = np.arange(-f, f + 1) * BIN
    return np.exp(-0.5 * (x / sigma) ** 2) * (BIN / (np.sqrt(2.0 * np.pi) * sigma))


def reference_density(h0: np.ndarray, *, total_bins: int | None = None) -> np.ndarray:
    """``p(y | H0)`` per bin: the reference histogram smoothed (``P0_SMOOTH``) with a floor of 1e-3 counts.

    Normalised to sum 1 over ``total_bins`` bins (default ``h0.size``; a window of the
    bins passes :data:`N_BINS`, the floor of the bins outside counting in the total).
    """
    g = _gauss_kernel(P0_SMOOTH, 4.0)
    h0 = np.asarray(h0, np.float64)
    p = np.convolve(h0, g / g.sum(), mode="same") + 1e-3
    return p / (h0.sum() + 1e-3 * (h0.size if total_bins is None else total_bins))


def lattice_density(p0: np.ndarray, step: int, sigma: float, *, first: int = 0) -> np.ndarray:
    """``p(y | H1)`` per bin: the lattice of ``step`` weighted by ``p0``'s cells, blurred by ``sigma``.

    ``p1(y) = sum_j P_j N(y; j step, sigma^2)`` with ``P_j`` the mass of ``p0`` on
    ``|y - j step| < step / 2`` (quantisation with the first step), each lattice
    point on the bin holding ``j step``. ``p0`` may be a window of the bins starting
    at bin ``first``.
    """
    n = p0.size
    c = _centres()[first:first + n]
    cell = np.rint(c / step).astype(np.int64)
    j0 = int(cell[0])
    mass = np.bincount(cell - j0, weights=p0)
    js = np.arange(mass.size) + j0
    idx = np.floor((js * float(step) - BIN_LO) / BIN).astype(np.int64) - first
    keep = (idx >= 0) & (idx < n)
    spikes = np.zeros(n)
    np.add.at(spikes, idx[keep], mass[keep])
    return np.convolve(spikes, _gauss_kernel(sigma), mode="same")


def lattice_likelihood(h: np.ndarray, p0: np.ndarray, p1: np.ndarray, *,
                       iterations: int = 40) -> tuple[float, float]:
    """Maximum-likelihood share ``alpha`` of the mixture ``alpha p1 + (1 - alpha) p0`` (EM) and its gain.

    Parameters
    ----------
    h : ndarray, shape (N_BINS,)
        Counts of the coefficients on the candidate grid.
    p0, p1 : ndarray, shape (N_BINS,)
        Bin probabilities under single (:func:`reference_density`) and
        non-aligned double compression (:func:`lattice_density`).
    iterations : int, default 40
        Most EM steps from ``alpha = 0.5`` (it stops when ``alpha`` moves by less than 1e-7).

    Returns
    -------
    alpha : float
    gain : float
        ``sum_b h_b log((alpha p1_b + (1 - alpha) p0_b) / p0_b)`` (nats, >= 0).

    Examples
    --------
    >>> p0 = np.full(4, 0.25); p1 = np.array([0.5, 0.0, 0.5, 0.0])
    >>> a, g = lattice_likelihood(np.array([3.0, 1.0, 3.0, 1.0]), p0, p1)
    >>> round(a, 3), round(g, 3)
    (0.5, 1.046)
    """
    alpha = 0.5
    use = h > 0
    hh, a0, a1 = h[use], p0[use], p1[use]
    total = max(float(hh.sum()), 1.0)
    for _ in range(iterations):
        m = alpha * a1 + (1.0 - alpha) * a0
        new = float(np.sum(hh * alpha * a1 / m)) / total
        if abs(new - alpha) < 1e-7:
            alpha = new
            break
        alpha = new
    gain = float(np.sum(hh * np.log((alpha * a1 + (1.0 - alpha) * a0) / a0)))
    return alpha, gain


@dataclass(frozen=True)
class NonAlignedAnalysis:
    """Result of :func:`analyze_nonaligned`.

    Attributes
    ----------
    grid_offset : tuple of int
        ``(r, c)``: the first compression's blocks start at rows ``r + 8 k`` and
        columns ``c + 8 l`` (``block_dct(plane[r:, c:])`` is on its grid).
    shift : tuple of int
        ``((8 - r) % 8, (8 - c) % 8)``: the rows and columns cropped off the
        top-left of the first-compressed image (a crop by ``(3, 5)`` gives
        ``shift == (3, 5)``, ``grid_offset == (5, 3)``).
    evidence : ndarray, shape (8, 8)
        :func:`shift_evidence` per grid offset ``(r, c)``.
    last_table : ndarray of int, shape (8, 8), or None
        Last quantisation table (file or IJG table of ``info.jpeg_quality``).
    frequencies : tuple of int
        Natural indices of the analysed frequencies (the first ``coefficients`` in zigzag).
    q1, sigma, alpha, gain : dict
        Per analysed natural index: fitted first step, lattice blur, share of blocks
        on the lattice and log-likelihood gain (nats).
    informative : tuple of int
        Natural indices whose fit enters the map: those passing :data:`GAIN_MIN` and
        :data:`ALPHA_MIN`, or when none does, every one whose lattice raises the
        likelihood at all (gain > 0).
    lattice_found : bool
        Whether some frequency passed :data:`GAIN_MIN` and :data:`ALPHA_MIN`.
    log_odds : ndarray, float64, shape ((H - r) // 8, (W - c) // 8)
        Per block of the shifted grid, ``log P(single) / P(NA double)`` summed over
        the informative frequencies.
    """

    grid_offset: tuple[int, int]
    shift: tuple[int, int]
    evidence: np.ndarray
    last_table: np.ndarray | None
    frequencies: tuple[int, ...]
    q1: dict[int, int]
    sigma: dict[int, float]
    alpha: dict[int, float]
    gain: dict[int, float]
    informative: tuple[int, ...]
    lattice_found: bool
    log_odds: np.ndarray

    @property
    def best_evidence(self) -> float:
        """Evidence of the chosen grid offset."""
        return float(self.evidence[self.grid_offset])


def _last_table(img: LoadedImage) -> np.ndarray | None:
    if img.info.jpeg_luma_table is not None:
        return np.asarray(img.info.jpeg_luma_table, dtype=np.int64).reshape(8, 8)
    if img.info.jpeg_quality is not None:
        return ijg_luma_table(img.info.jpeg_quality)
    return None


def _allowed(steps: np.ndarray, q2: np.ndarray | None, freqs) -> np.ndarray:
    """Steps compared per frequency: coarser than the last step by :data:`STEP_MARGIN` or more.

    Finer steps are where the last compression itself leaves lattices on partially aligned
    grids (its divisors, ``q2 / 2`` on grids shifted by 4 in one direction, ``q2 +- 1`` by
    spectral leakage on smooth content).
    """
    if q2 is None:
        return np.ones((len(freqs), steps.size), bool)
    return np.array([[int(q) >= int(q2[u, v]) + STEP_MARGIN for q in steps] for u, v in freqs])


def _box_sums(a: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """Sums of ``a`` over every ``bh x bw`` window inside it, indexed by the window's top-left corner."""
    import cv2

    out = cv2.boxFilter(np.ascontiguousarray(a, np.float64), -1, (bw, bh), anchor=(0, 0), normalize=False,
                        borderType=cv2.BORDER_CONSTANT)
    return out[: a.shape[0] - bh + 1, : a.shape[1] - bw + 1]


def _active_blocks(y: np.ndarray) -> np.ndarray:
    """Per block top-left ``(i, j)``: mean ``|dx|, |dy|`` of its 112 pixel pairs >= :data:`ACTIVITY_MIN`."""
    gx = _box_sums(np.abs(np.diff(y, axis=1)), 8, 7)
    gy = _box_sums(np.abs(np.diff(y, axis=0)), 7, 8)
    return np.ascontiguousarray((gx + gy) >= ACTIVITY_MIN * 112.0)


def _search_grid(y: np.ndarray, q2: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Evidence (64,) per grid offset and the energies (64, K, nQ) of :data:`SEARCH_FREQS`."""
    us = np.array([u for u, _ in SEARCH_FREQS], np.int64)
    vs = np.array([v for _, v in SEARCH_FREQS], np.int64)
    d = np.ascontiguousarray(dct_matrix(JPEG_BLOCK))
    hist = shift_histograms(np.ascontiguousarray(y), _active_blocks(y), d, us, vs, BIN_LO, BIN, N_BINS)
    steps = np.arange(2, Q_MAX + 1)
    hist = hist.reshape(hist.shape[:-1] + (N_BINS // SEARCH_MERGE, SEARCH_MERGE)).sum(axis=-1)
    energy = periodicity(hist, steps, merge=SEARCH_MERGE)
    ev, _ = shift_evidence(energy, _allowed(steps, q2, SEARCH_FREQS))
    return ev, energy


def _hist(values: np.ndarray) -> np.ndarray:
    b = np.floor((values - BIN_LO) / BIN).astype(np.int64)
    b = b[(b >= 0) & (b < N_BINS)]
    return np.bincount(b, minlength=N_BINS).astype(np.float64)


def _fit_frequency(y: np.ndarray, y0: np.ndarray, q2step: int | None) -> tuple[int, float, float, float,
                                                                               np.ndarray, np.ndarray, int]:
    """Best ``(q1, sigma, alpha, gain, p0, p1, first)`` for one frequency.

    Candidates by periodicity, then the mixture likelihood; ``p0``, ``p1`` on the bins
    from ``first``.
    """
    h, h0 = _hist(y), _hist(y0)
    steps = np.arange(2, Q_MAX + 1)
    score = periodicity(h, steps)[...] - periodicity(h0, steps) * (h.sum() / max(h0.sum(), 1.0))
    if q2step is not None:
        score[steps < q2step + STEP_MARGIN] = -np.inf
    # the fit only needs the bins near the data: a window with room for a lattice cell
    # and the blur on each side (the same densities there as on all the bins)
    nz = np.flatnonzero((h > 0) | (h0 > 0))
    margin = int(np.ceil((Q_MAX + 8.0 * max(SIGMAS) + 4.0 * P0_SMOOTH) / BIN)) + 2
    first = max(int(nz[0]) - margin, 0) if nz.size else 0
    last = min(int(nz[-1]) + margin + 1, N_BINS) if nz.size else N_BINS
    hw = h[first:last]
    p0 = reference_density(h0[first:last], total_bins=N_BINS)
    best = (0, 0.0, 0.0, 0.0, p0, p0, first)
    for qi in np.argsort(-score, kind="stable")[:N_CANDIDATES]:
        for s in SIGMAS:
            p1 = lattice_density(p0, int(steps[qi]), s, first=first)
            alpha, gain = lattice_likelihood(hw, p0, p1)
            if gain > best[3]:
                best = (int(steps[qi]), s, alpha, gain, p0, p1, first)
    return best


def _block_log_ratio(y: np.ndarray, p0: np.ndarray, p1: np.ndarray, first: int) -> np.ndarray:
    """Per coefficient ``log p1(y) / p0(y)`` (clipped to ``+-log(1 / RATIO_FLOOR)``; 0 off the bins).

    ``p0``, ``p1``: bin probabilities on the bins from ``first``.
    """
    b = np.floor((y - BIN_LO) / BIN).astype(np.int64) - first
    inside = (b >= 0) & (b < p0.size)
    lr = np.log(np.maximum(p1, 1e-300) / p0)
    lim = -np.log(RATIO_FLOOR)
    return np.where(inside, np.clip(lr[np.clip(b, 0, p0.size - 1)], -lim, lim), 0.0)


def _luma_plane(img: LoadedImage) -> np.ndarray:
    return img.gray().astype(np.float64) * (255.0 / img.info.white_level) - 128.0  # JFIF Y, level-shifted


def analyze_nonaligned(image: Any, *, coefficients: int = 6, min_evidence: float = 0.0) -> NonAlignedAnalysis:
    """Find the shifted first-compression grid and fit the NA-DJPG model on it.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Decoded pixels, at least :data:`MIN_SIDE` pixels on a side.
    coefficients : int, default 6
        The first frequencies in zigzag order (DC included) fitted on the chosen grid (1-64).
    min_evidence : float, default 0
        The steps are fitted only when the chosen grid's evidence reaches this
        (else ``q1`` etc. are empty and ``log_odds`` is zero); :func:`nadq_map`
        always fits (0).

    Returns
    -------
    NonAlignedAnalysis

    Raises
    ------
    ValueError
        ``coefficients`` outside 1-64 or an image smaller than :data:`MIN_SIDE`.

    Notes
    -----
    Grid: per offset ``(r, c)`` and frequency of :data:`SEARCH_FREQS`, the
    periodicity energy ``E = |sum exp(2 pi i y / Q)|^2 / N`` of the
    coefficients ``y`` of ``block_dct(Y[r:, c:] - 128)`` for ``Q`` = 2-:data:`Q_MAX`
    (not dividing the last step), its robust z over the 64 offsets, and the
    offset maximising ``sum_freq max_Q z``. Steps: on that grid, per
    frequency, the three ``Q`` of highest periodicity gain over a reference
    grid (the offset of least evidence), then ``(q1, sigma)`` maximising the
    likelihood of ``alpha p(y | H1) + (1 - alpha) p(y | H0)``, with ``p(y |
    H0)`` the smoothed reference histogram and ``p(y | H1) = sum_j P_j N(y; j
    q1, sigma^2)`` (:func:`lattice_density`, :func:`lattice_likelihood`).
    Blocks: ``log_odds = -sum_k log(p(y_k | H1) / p(y_k | H0))`` over the
    informative frequencies.
    """
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=64)
    img = as_image(image, min_size=MIN_SIDE)
    q2 = _last_table(img)
    y = _luma_plane(img)
    ev, _ = _search_grid(y, q2)
    best = 1 + int(np.argmax(ev[1:]))
    others = [s for s in np.argsort(ev, kind="stable") if s not in (0, best)]
    r, c = divmod(best, 8)
    rr, cr = divmod(int(others[0]), 8)
    grid = ((y.shape[0] - r) // JPEG_BLOCK, (y.shape[1] - c) // JPEG_BLOCK)
    freqs = tuple(int(k) for k in ZIGZAG[:coefficients])
    fits = {}
    if ev[best] >= min_evidence:
        flat = block_dct(y[r:, c:]).reshape(-1, 64)
        ref = block_dct(y[rr:, cr:]).reshape(-1, 64)
        fits = {k: _fit_frequency(flat[:, k], ref[:, k], None if q2 is None else int(q2.ravel()[k]))
                for k in freqs}
    log_odds = np.zeros(grid[0] * grid[1])
    informative = [k for k, f in fits.items() if f[0] and f[3] >= GAIN_MIN and f[2] >= ALPHA_MIN]
    lattice_found = bool(informative)
    if not informative:  # weak trace: every frequency whose lattice raises the likelihood at all
        informative = [k for k, f in fits.items() if f[0] and f[3] > 0.0]
    for k in informative:
        _, _, _, _, p0, p1, first = fits[k]
        log_odds -= _block_log_ratio(flat[:, k], p0, p1, first)
    return NonAlignedAnalysis(
        grid_offset=(r, c), shift=((8 - r) % 8, (8 - c) % 8), evidence=ev.reshape(8, 8), last_table=q2,
        frequencies=freqs, q1={k: f[0] for k, f in fits.items()}, sigma={k: f[1] for k, f in fits.items()},
        alpha={k: f[2] for k, f in fits.items()}, gain={k: f[3] for k, f in fits.items()},
        informative=tuple(informative), lattice_found=lattice_found, log_odds=log_odds.reshape(grid))


def _expand(block_values: np.ndarray, offset: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Blocks of the grid at ``offset`` to pixels (pixels off the full blocks take the nearest one)."""
    hb, wb = block_values.shape
    rows = np.clip((np.arange(shape[0]) - offset[0]) // JPEG_BLOCK, 0, hb - 1)
    cols = np.clip((np.arange(shape[1]) - offset[1]) // JPEG_BLOCK, 0, wb - 1)
    return np.ascontiguousarray(block_values[rows][:, cols], dtype=np.float32)


def _check_map_args(coefficients: int, median: int, force: bool) -> tuple[int, int]:
    coefficients = check_int(coefficients, "coefficients", minimum=1, maximum=64)
    median = check_int(median, "median", minimum=1)
    if median % 2 == 0:
        raise ValueError(f"median={median} must be odd (1 = no filtering)")
    check_bool(force, "force")
    return coefficients, median


def _why_not(a: NonAlignedAnalysis) -> str | None:
    """The sentence saying why the analysis shows no usable non-aligned trace, or None."""
    if a.best_evidence < EVIDENCE_MIN:
        return (f"NA-DJPG found no non-aligned double-compression trace: best shifted-grid evidence "
                f"{a.best_evidence:.1f} < {EVIDENCE_MIN:g} (threshold from synthetic single and aligned "
                f"double compressions)")
    if a.best_evidence < ALIGNED_RATIO * a.evidence[0, 0]:
        return (f"NA-DJPG found no non-aligned double-compression trace: best shifted-grid evidence "
                f"{a.best_evidence:.1f} is below {ALIGNED_RATIO:g} x the aligned grid's {a.evidence[0, 0]:.0f} "
                f"(an aligned double compression)")
    if not a.lattice_found:
        return "NA-DJPG found a shifted grid but no frequency whose first-compression lattice fits"
    return None


def _note(a: NonAlignedAnalysis, why: str | None) -> str:
    head = f"first-compression grid shifted by {a.shift} (evidence {a.best_evidence:.0f}), "
    if why is None:
        return head + f"{len(a.informative)} frequencies with a lattice"
    return f"weak trace, map of the best shifted grid {a.shift} ({len(a.informative)} frequencies): {why}"


@register("nadq", kind="map",
          applies="JPEG input at least 64 pixels on a side (the trace: on a shifted 8x8 grid)")
def nadq_map(image: Any, *, coefficients: int = 6, median: int = 5, force: bool = False) -> Heatmap:
    """Non-aligned double-JPEG map: per 8x8 block of the shifted grid, the probability of a single compression.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`).
    coefficients : int, default 6
        First frequencies (zigzag, DC included) fitted, see :func:`analyze_nonaligned`.
    median : int, default 5
        Side of the median filter over the block grid (odd; 1 = none).
    force : bool, default False
        Analyse pixels not known to be JPEG-compressed.

    Returns
    -------
    Heatmap
        ``raw``: the per-block log-odds ``log P(single) / P(NA double)``, median-filtered;
        ``values = 1 / (1 + exp(-raw))`` (high = tampered), on the best shifted grid
        whether or not the trace is strong (see Notes). ``params`` hold the grid
        ``shift`` (rows, columns cropped after the first compression, mod 8),
        ``grid_offset``, ``shift_evidence`` (float: the strength statistic, the best
        shifted grid's evidence, :func:`shift_evidence`), ``aligned_evidence`` (float:
        the same on the aligned grid), ``trace`` (bool: a whole-image non-aligned trace,
        ``shift_evidence >= EVIDENCE_MIN``, ``>= ALIGNED_RATIO * aligned_evidence`` and
        ``lattice_found``), ``lattice_found`` (bool: some frequency passed
        :data:`GAIN_MIN` and :data:`ALPHA_MIN`), ``q1`` (zigzag order, 0 = not used).
        Not applicable (zeros and a ``note``): not a JPEG (unless ``force``), smaller
        than :data:`MIN_SIDE` pixels, or no analysed frequency's lattice raises the
        likelihood on the chosen grid (nothing to map).

    Raises
    ------
    ValueError
        Invalid parameters.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Bianchi and Piva (2012), NA-DJPG model: on the first compression's grid the
    coefficients of an untouched block are ``y = q1 x + e``, ``e`` about
    ``N(0, sigma^2)`` (the second compression's error), so ``p(y | H1) = sum_x
    P(x) N(y; q1 x, sigma^2)`` with ``P(x)`` the mass of the unquantised density
    ``p(y | H0)`` in the cell of ``x``; a tampered block follows ``p(y | H0)``.
    Per frequency ``k`` the ratio ``L_k = p(y_k | H1) / p(y_k | H0)`` (clipped to
    ``[0.02, 50]``) and per block ``log_odds = -sum_k log L_k``. The grid offset
    is the one whose coefficients fit an integer lattice best (integer
    periodicity, Bianchi and Piva 2012b), see :func:`analyze_nonaligned`.

    Weak traces. The model is a mixture over the blocks (``alpha`` of them on the
    lattice): it is meant for images where only part of the content carries the
    shifted trace, e.g. a region pasted from another JPEG photo off the host's grid
    into a host that is singly or aligned double compressed. Its whole-image
    evidence is then diluted by the blocks without the trace and can fall below the
    thresholds calibrated on whole-image traces (:data:`EVIDENCE_MIN`,
    :data:`ALIGNED_RATIO`), although the per-block likelihood ratios still locate it.
    So the map is always computed on the best shifted grid, and the decision is
    left to the reader of ``params``: ``trace`` says whether the whole-image rule
    holds and ``shift_evidence`` is the statistic to calibrate; the ``note`` says
    when the trace is weak. Without a trace the steps are fitted all the same and,
    when no frequency passes :data:`GAIN_MIN` and :data:`ALPHA_MIN`, the
    frequencies with any likelihood gain enter the map (on a single compression
    their ratios are near 1 and the map is nearly flat).

    References
    ----------
    .. [1] T. Bianchi and A. Piva, "Image forgery localization via block-grained
       analysis of JPEG artifacts", IEEE TIFS 7(3), 1003-1017, 2012.
       DOI 10.1109/TIFS.2012.2187516
    .. [2] T. Bianchi and A. Piva, "Detection of nonaligned double JPEG compression
       based on integer periodicity maps", IEEE TIFS 7(2), 842-848, 2012.
       DOI 10.1109/TIFS.2011.2170836

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.jpeg.nadq import nadq_map
    >>> nadq_map(np.zeros((64, 64, 3), np.uint8)).applicable  # an array, not a JPEG
    False
    """
    coefficients, median = _check_map_args(coefficients, median, force)
    t0 = time.perf_counter()
    img = as_image(image)
    h, w = img.shape
    params: dict[str, Any] = {"coefficients": coefficients, "median": median, "force": bool(force)}
    timings: dict[str, float] = {}
    units = "log P(single) / P(non-aligned double) per block"

    def not_applicable(note: str) -> Heatmap:
        timings["total"] = time.perf_counter() - t0
        return Heatmap.not_applicable((h, w), method="nadq", note=note, params=params, units=units,
                                      timings=timings)

    if why := not_jpeg_reason(img, force=force):
        return not_applicable(f"NA-DJPG is not applicable: {why}")
    if min(h, w) < MIN_SIDE:
        return not_applicable(f"NA-DJPG is not applicable: {h}x{w} is smaller than {MIN_SIDE} pixels on a side")
    a = analyze_nonaligned(img, coefficients=coefficients)
    params.update(shift=a.shift, grid_offset=a.grid_offset, shift_evidence=round(a.best_evidence, 3),
                  aligned_evidence=round(float(a.evidence[0, 0]), 3),
                  q1=tuple(a.q1[k] if k in a.informative else 0 for k in a.frequencies))
    timings["analysis"] = time.perf_counter() - t0
    why = _why_not(a)
    params.update(trace=why is None, lattice_found=a.lattice_found)
    if not a.informative:
        return not_applicable("NA-DJPG is not applicable: on no shifted grid does a first-step lattice "
                              "raise the likelihood of any analysed frequency")
    t1 = time.perf_counter()
    lo = median_filter(a.log_odds, size=median, mode="nearest") if median > 1 else a.log_odds
    raw = _expand(lo, a.grid_offset, (h, w))
    values = (1.0 / (1.0 + np.exp(-np.clip(raw, -60.0, 60.0)))).astype(np.float32)
    timings["map"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    return Heatmap(values=values, raw=raw, method="nadq", params=params, units=units, timings=timings,
                   note=_note(a, why))
