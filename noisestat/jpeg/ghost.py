"""JPEG ghosts (Farid 2009): where the image is most like its own re-compression at a lower quality.

A region that was JPEG-compressed at quality ``q1`` and then saved with the
rest of the image at ``q2`` keeps the quantisation of ``q1``: re-saving the
image at ``q = q1`` changes it less than at nearby qualities, a "ghost" (a
local minimum of the difference curve over ``q``). Re-saving at a range of
qualities and looking, per quality, for a part of the image whose difference
is unusually low localises content of another compression history.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import check_bool, check_choice, check_int
from ..blocks.jpeg import not_jpeg_reason, read_coefficients
from ..blocks.recompress import (
    SUBSAMPLINGS,
    encoder_input,
    encoder_name,
    islow_coefficients,
    islow_matches_encoder,
    jpeg_roundtrip,
    roundtrip_block_mse,
)
from ..heatmap import LOG_MIN_SCALE, robust_logistic
from ..io import as_image, ijg_luma_table
from ..registry import register
from ..types import Heatmap, LoadedImage
from ._ghost_kernels import bilinear_rows_cols, block_sq_diff

__all__ = ["jpeg_ghost_map", "ghost_differences", "EPS", "MIN_CLASS"]

_SUBSAMPLING = ("auto", *SUBSAMPLINGS)
_CHANNELS = ("luma", "rgb")
#: (horizontal, vertical) luma-to-chroma sampling ratio of a JPEG file -> the name used here
_SAMPLING_NAMES = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0"}
#: Floor added to the window-mean squared difference (gray levels squared) before the
#: logarithm: below it (flat or clipped areas) the difference is rounding noise.
EPS = 0.5
#: Smallest share of the windows in either class of the split that scores a quality.
MIN_CLASS = 0.02
_UNITS = "log(delta_q + EPS) minus its per-window line in q (natural log)"


def _block_sq_diff(src: np.ndarray, dec: np.ndarray, hb: int, wb: int) -> np.ndarray:
    """Channel-mean squared difference averaged over each 8x8 block: (hb, wb) float32."""
    import cv2

    if src.ndim == 2:  # one pass, the same float32 values (see _ghost_kernels)
        return block_sq_diff(np.ascontiguousarray(src), np.ascontiguousarray(dec), hb, wb)
    d = cv2.absdiff(src[: 8 * hb, : 8 * wb], dec[: 8 * hb, : 8 * wb])
    sq = cv2.multiply(d, d, dtype=cv2.CV_32F)
    if sq.ndim == 3:
        sq = cv2.transform(sq, np.full((1, 3), 1.0 / 3.0))
    return cv2.resize(sq.reshape(8 * hb, 8 * wb), (wb, hb), interpolation=cv2.INTER_AREA)


def _window_means(blocks: np.ndarray, k: int) -> np.ndarray:
    """Means over k x k blocks, sliding by one block: (hb - k + 1, wb - k + 1) float32."""
    c = np.pad(blocks.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return (s / (k * k)).astype(np.float32)


def _differences(src: np.ndarray, qualities: list[int], k: int, subsampling: str) -> np.ndarray:
    """delta_q over the windows for every quality: (n_q, n_rows, n_cols) float32.

    The qualities are independent (OpenCV's encoder, decoder and arithmetic
    release the GIL), so they run on ``numba.get_num_threads()`` threads, each
    quality written to its own slice: the same output whatever the thread count.
    """
    import numba

    hb, wb = src.shape[0] // 8, src.shape[1] // 8
    out = np.empty((len(qualities), hb - k + 1, wb - k + 1), np.float32)
    # gray: one forward DCT, then per quality only quantisation and the inverse DCT
    # (the same block errors as OpenCV's round trip, checked once per process)
    coef = islow_coefficients(src) if src.ndim == 2 and islow_matches_encoder() else None

    def one(i: int) -> None:
        if coef is not None:
            blocks = roundtrip_block_mse(src, coefficients=coef, table=ijg_luma_table(qualities[i]))
        else:
            dec = jpeg_roundtrip(src, quality=qualities[i], subsampling=subsampling)
            blocks = _block_sq_diff(src, dec, hb, wb)
        out[i] = _window_means(blocks, k)

    threads = min(numba.get_num_threads(), len(qualities))
    if threads <= 1:
        for i in range(len(qualities)):
            one(i)
        return out
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(len(qualities))))
    return out


def _file_subsampling(img: LoadedImage, subsampling: str) -> str:
    """``subsampling``, or for "auto" the chroma sampling of the JPEG file (4:2:0 when unknown)."""
    if subsampling != "auto":
        return subsampling
    coef = read_coefficients(img)  # hash-checked against the loaded image, cached
    if coef is None or len(coef.sampling) != 3:
        return "4:2:0"
    (hy, vy), (hc, vc) = coef.sampling[0], coef.sampling[1]
    ratio = (hy // max(hc, 1), vy // max(vc, 1)) if hy % max(hc, 1) == 0 and vy % max(vc, 1) == 0 else None
    return _SAMPLING_NAMES.get(ratio, "4:2:0")


def _check_window(window: Any) -> int:
    window = check_int(window, "window", minimum=8)
    if window % 8:
        raise ValueError(f"window={window} must be a multiple of 8 (whole JPEG blocks)")
    return window


def ghost_differences(
    image: Any,
    *,
    qualities: Any = tuple(range(50, 100, 2)),
    window: int = 16,
    channels: str = "luma",
    subsampling: str = "4:2:0",
) -> np.ndarray:
    """Farid's window-mean re-compression differences ``delta(x, y, q)``.

    Parameters
    ----------
    image : array_like, path or LoadedImage
        Input image (see :func:`noisestat.load_image`); 8-bit values are used
        as they are, other scales are rescaled to 0-255 and rounded.
    qualities : sequence of int, default 50, 52, ..., 98
        IJG qualities (1-100) of the re-compressions.
    window : int, default 16
        Side ``b`` of the averaging window, a multiple of 8.
    channels : {"luma", "rgb"}, default "luma"
        Re-compress the BT.601 luma as a gray JPEG, or the colour image (Farid's
        mean over R, G, B; its chroma error then depends on ``subsampling``).
    subsampling : {"4:2:0", "4:2:2", "4:4:4", "auto"}, default "4:2:0"
        Chroma subsampling of colour re-compressions (``channels="rgb"`` only);
        "auto": the JPEG file's own (4:2:0 when it cannot be read, e.g. arrays).

    Returns
    -------
    ndarray, float32, shape (len(qualities), H // 8 - b // 8 + 1, W // 8 - b // 8 + 1)
        ``delta[i, r, c]``: the mean over the window of rows ``8 r ...
        8 r + b - 1`` and columns ``8 c ... 8 c + b - 1`` of
        ``(1/3) sum_ch (f_ch - f_{q,ch})^2`` (``channels="rgb"``) or
        ``(Y - Y_q)^2`` (luma ``Y`` rounded to 8 bits and re-compressed as gray),
        in gray levels squared, ``q = qualities[i]``; windows slide by one 8x8
        block.

    Raises
    ------
    ValueError, TypeError
        Invalid parameters, or an image with fewer than ``b`` pixels on a side.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    >>> ghost_differences(img, qualities=[60, 90]).shape
    (2, 3, 5)
    """
    window = _check_window(window)
    subsampling = check_choice(subsampling, "subsampling", _SUBSAMPLING)
    qs = _check_qualities(qualities)
    channels = check_choice(channels, "channels", _CHANNELS)
    img = as_image(image, min_size=window)
    return _differences(encoder_input(img, channels=channels), qs, window // 8, _file_subsampling(img, subsampling))


def _check_qualities(qualities: Any) -> list[int]:
    try:
        qs = list(qualities)
    except TypeError:
        raise TypeError(f"qualities must be a sequence of integers, got {qualities!r}") from None
    if not qs:
        raise ValueError("qualities must not be empty")
    return [check_int(q, "qualities", minimum=1, maximum=100) for q in qs]


def _otsu_fisher(v: np.ndarray) -> tuple[float, float]:
    """Exact two-class Otsu split of ``v``: (Fisher ratio of the split, share of the low class).

    The Fisher ratio is ``(mean_high - mean_low) / sqrt((var_low + var_high) / 2)``; splits
    leaving less than :data:`MIN_CLASS` of the values (at least one) in a class are not
    considered (0, 0.5 when there is none).
    """
    x = np.sort(v.ravel().astype(np.float64))
    n = x.size
    lo = max(1, int(np.ceil(MIN_CLASS * n)))
    if n < 2 * lo:
        return 0.0, 0.5
    c1 = np.cumsum(x)
    c2 = np.cumsum(x * x)
    k = np.arange(lo, n - lo + 1)  # low class: x[:k]
    m0 = c1[k - 1] / k
    m1 = (c1[-1] - c1[k - 1]) / (n - k)
    between = k * (n - k) * (m1 - m0) ** 2
    j = int(np.argmax(between))
    kk = int(k[j])
    v0 = max(c2[kk - 1] / kk - m0[j] ** 2, 0.0)
    v1 = max((c2[-1] - c2[kk - 1]) / (n - kk) - m1[j] ** 2, 0.0)
    spread = np.sqrt(0.5 * (v0 + v1))
    gap = float(m1[j] - m0[j])
    if gap <= 0:
        return 0.0, 0.5
    return (gap / spread if spread > 0 else np.inf), kk / n


def _ghost_depth(delta: np.ndarray, qualities: list[int], i: int) -> np.ndarray:
    """Residual of ``log(delta_q + EPS)`` at quality index ``i`` from each window's least-squares line in ``q``
    (float32, one value per window).

    The line's slope is ``sum_q t_q log(delta_q + EPS) / sum_q t_q^2`` with ``t`` the centred qualities
    (``sum_q t_q = 0``, so the mean need not be removed first); only the reported quality's residual
    is formed.
    """
    lg = delta.astype(np.float64)
    lg += EPS
    np.log(lg, out=lg)
    t = np.asarray(qualities, dtype=np.float64)
    t -= t.mean()
    res = lg[i] - lg.mean(axis=0)
    tt = float(t @ t)
    if tt > 0:
        res -= t[i] * (np.tensordot(t, lg, axes=1) / tt)
    return res.astype(np.float32)


def _quality_range(img: LoadedImage, q_min: int, step: int, forced: int | None) -> list[int]:
    """Qualities re-saved: ``q_min, q_min + step, ...`` below the file's own quality (else <= 99)."""
    q_est = img.info.jpeg_quality
    top = 99 if q_est is None else min(99, int(np.ceil(q_est)) - 1)
    qs = list(range(q_min, top + 1, step))
    if forced is not None and forced not in qs:
        qs = sorted([*qs, forced])
    return qs


def _normalised(delta: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Min-max normalisation of one quality's ``delta`` (windows) by the per-window ``lo = min_q``,
    ``hi = max_q``: ``(delta - lo) / (hi - lo)`` (float32).

    A window whose differences do not vary with ``q`` (below :data:`EPS`) gets 0.5.
    """
    span = hi - lo
    out = np.where(span > EPS, (delta - lo) / np.maximum(span, EPS), np.float32(0.5))
    return out.astype(np.float32)


def _candidates(delta: np.ndarray) -> np.ndarray:
    """Indices of the interior local minima of the image-mean difference curve (all indices if none)."""
    c = delta.reshape(delta.shape[0], -1).astype(np.float64).mean(axis=1)
    lm = np.flatnonzero((c[1:-1] < c[:-2]) & (c[1:-1] < c[2:])) + 1
    return lm if lm.size else np.arange(c.size)


def _choose(delta: np.ndarray, qs: list[int], forced: int | None) -> tuple[int, np.ndarray, float, list[int]]:
    """Index of the reported quality, the Fisher ratio per quality (0 off the candidates), the
    low-class share there and the candidate indices."""
    lo, hi = delta.min(axis=0), delta.max(axis=0)
    scores = np.zeros(len(qs))
    shares = np.full(len(qs), 0.5)
    cand = [qs.index(forced)] if forced is not None else [int(j) for j in _candidates(delta)]
    for i in cand:
        scores[i], shares[i] = _otsu_fisher(_normalised(delta[i], lo, hi))
    finite = np.where(np.isfinite(scores), scores, 0.0)
    i = cand[int(np.argmax(finite[cand]))]
    return i, scores, float(shares[i]), cand


def _to_pixels(grid: np.ndarray, h: int, w: int, k: int) -> np.ndarray:
    """Window values at full resolution, linear between window centres (``8 i + 4 k - 0.5``)."""
    def axis(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.clip((np.arange(n) - (4.0 * k - 0.5)) / 8.0, 0.0, m - 1.0)
        i0 = np.floor(t).astype(np.int64)
        return i0, np.minimum(i0 + 1, m - 1), (t - i0).astype(np.float32)

    r0, r1, fr = axis(h, grid.shape[0])
    c0, c1, fc = axis(w, grid.shape[1])
    # rows = g[r0] (1 - fr) + g[r1] fr, then the same along the columns, in float32 (numpy's operations)
    return bilinear_rows_cols(np.ascontiguousarray(grid, dtype=np.float32), r0, r1, fr, c0, c1, fc)


def _not_applicable(h: int, w: int, params: dict[str, Any], t0: float, why: str) -> Heatmap:
    return Heatmap.not_applicable((h, w), method="jpeg_ghost", note=f"JPEG ghost is not applicable: {why}",
                                  params=params, units=_UNITS, timings={"total": time.perf_counter() - t0})


def _check_params(quality: Any, q_min: Any, step: Any, window: Any, channels: Any, subsampling: Any,
                  force: Any) -> tuple[int | None, int, int, int, str, str]:
    if quality is not None:
        quality = check_int(quality, "quality", minimum=1, maximum=100)
    q_min = check_int(q_min, "q_min", minimum=1, maximum=99)
    step = check_int(step, "step", minimum=1, maximum=50)
    force = check_bool(force, "force")
    return (quality, q_min, step, _check_window(window), check_choice(channels, "channels", _CHANNELS),
            check_choice(subsampling, "subsampling", _SUBSAMPLING))


@register("jpeg_ghost", kind="map",
          applies="JPEG input of quality 53 or above, at least two 16-pixel windows")
def jpeg_ghost_map(
    image: Any,
    *,
    quality: int | None = None,
    q_min: int = 50,
    step: int = 1,
    window: int = 16,
    channels: str = "luma",
    subsampling: str = "4:2:0",
    force: bool = False,
) -> Heatmap:
    """JPEG ghost map: the part of the image that re-compresses unusually well at one quality.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`).
    quality : int or None, default None
        Quality of the reported ghost. ``None``: among the local minima of the
        image-mean difference curve, the one whose normalised differences split
        most clearly into ghost and non-ghost windows (see Notes); an int forces it.
    q_min : int, default 50
        Lowest re-compression quality.
    step : int, default 1
        Step between re-compression qualities, ``q_min, q_min + step, ...`` up to
        one below the file's own quality (``image.info.jpeg_quality``; 99 when
        unknown). 1: a ghost is sharpest at the earlier save's own IJG table,
        which a coarser step skips.
    window : int, default 16
        Side ``b`` of the averaging window (a multiple of 8; Farid: 16).
    channels : {"luma", "rgb"}, default "luma"
        Re-compress the BT.601 luma as a gray JPEG, or the colour image (Farid's
        mean over R, G, B; its chroma error then depends on ``subsampling``).
    subsampling : {"4:2:0", "4:2:2", "4:4:4", "auto"}, default "4:2:0"
        Chroma subsampling of colour re-compressions (``channels="rgb"`` only);
        "auto": the JPEG file's own (4:2:0 when it cannot be read, e.g. arrays).
    force : bool, default False
        Compute the map even when the input is not known to be JPEG-compressed.

    Returns
    -------
    Heatmap
        ``raw``: the ghost depth ``g_q`` (see Notes; low = ghost) at the reported
        quality, linear between window centres (constant beyond the outer ones),
        in natural-log units; ``values``:
        :func:`noisestat.heatmap.robust_logistic` (over the windows, one-sided) of
        ``-g_q`` (ghost windows high) when the ghost class is the smaller one, of
        ``+g_q`` when it is the larger one (then the image's own earlier
        compression shows and the content without it is the odd one). ``params`` hold
        ``quality`` (int, reported), ``fisher`` (float >= 0, the strength statistic: the
        Fisher ratio of the split of the normalised differences at ``quality``; 2-4 on
        11 of 12 synthetic single compressions, 4-16 on synthetic splices), ``ghost_share``
        (float, share of windows in the ghost class), ``orientation`` ("ghost" or
        "non-ghost"), ``candidates`` (the qualities compared) and ``qualities`` (all
        re-saved). Not applicable (zeros, ``note`` says why): input not known to be JPEG
        (without ``force``), fewer than two windows, fewer than three qualities to try.

    Raises
    ------
    ValueError, TypeError
        Invalid parameters.

    Notes
    -----
    Farid [1]_ re-saves the image ``f`` at qualities ``q`` and averages the squared
    difference over ``b x b`` windows,

    .. math:: \\delta(x, y, q) = \\frac{1}{3} \\sum_{c} \\frac{1}{b^2} \\sum_{b_x, b_y}
              (f_c(x + b_x, y + b_y) - f_{q,c}(x + b_x, y + b_y))^2,

    then normalises each quality by its spatial min and max. A region compressed at
    ``q1`` before the last save shows as a dark "ghost" at ``q = q1``. Here the
    windows slide by one 8x8 block (the re-compression grid). The per-quality
    normalisation is replaced: in the log domain used here, rescaling ``delta_q``
    by any per-quality factor is a per-quality constant, to which neither the
    choice of quality nor the heatmap (a robust z-score about the spatial
    median) responds. What does matter is the content: flat windows have small
    differences at every quality, textured ones large differences falling fast
    with ``q``. Each window's log curve is therefore detrended by its own
    least-squares line in ``q`` over the qualities tried,

    .. math:: g_q(x, y) = \\log(\\delta(x, y, q) + \\epsilon) - a(x, y) - b(x, y)\\, q,
              \\quad \\epsilon = 0.5,

    which leaves the shape of the curve, where a ghost is a dip. By default the
    luma is re-compressed as a gray JPEG (one channel instead of Farid's three): the
    chroma error of a colour re-save depends on whether its chroma subsampling
    matches that of the *earlier* compressions, which the file does not record;
    on synthetic double compressions with 4:4:4 earlier saves, colour re-saves at
    4:2:0 lost most of the ghost while the luma kept it (and costs half).

    The reported quality. Farid finds a ghost as a minimum of the difference over
    ``q``; candidates are therefore the interior local minima of the image-mean
    curve ``mean_{x,y} delta(x, y, q)`` (every quality when it has none, e.g. a
    never-compressed host with a small ghost region). Among them the reported one
    is where the map has the clearest two-class structure, measured on the
    differences min-max normalised per window over the qualities (Farid
    normalises each quality's map by its spatial min and max; taken per window,
    the same normalisation also removes the texture level),

    .. math:: d(x, y, q) = \\frac{\\delta(x, y, q) - \\min_{q'} \\delta(x, y, q')}
              {\\max_{q'} \\delta(x, y, q') - \\min_{q'} \\delta(x, y, q')}

    (0.5 where the span is below :data:`EPS`), which puts flat and textured windows
    on one [0, 1] scale: the Fisher ratio ``(m_1 - m_0) / \\sqrt{(s_0^2 + s_1^2) /
    2}`` of the exact two-class Otsu split of ``d_q`` over the windows (each class
    at least :data:`MIN_CLASS` of them); the low class is the ghost. Candidate
    qualities stay below the file's own quality ``q2`` (at ``q2`` every window is a
    "ghost"). On synthetic splices (``benchmarks/synthetic_double_jpeg.py --ghost``:
    a region saved at q1 in a never-compressed host; a never-compressed region in
    a host saved at q1; a region of another JPEG photo pasted off the grid into a
    JPEG host; last save 86-98; 72 of each) the mean F1-best was 0.88 / 0.86 /
    0.86 against 0.88 / 0.86 / 0.84 for the same map at pyIFD's quality (the first
    local minimum of the mean curve, which follows the largest area); during
    development, on a similar generator, the split of ``g_q`` over all qualities
    (the earlier rule) gave 0.85 over the three kinds against 0.88 for this rule,
    and ``g_q`` mapped better than ``d_q`` (0.88 against 0.87). A host compressed
    before the splice (common: both parts come from JPEG photos) has its own
    ghost; when the ghost class is the larger one the map flags the rest. The
    re-compression grid is the image's (aligned case): a region pasted off the 8x8
    grid has no ghost of its own, but the host's ghost still outlines it (the 64
    re-compression offsets are not searched: the last save's grid is the file's).
    On a singly compressed image there is no ghost: ``fisher`` stays small and the
    map shows texture differences.

    Cost: ``n_q`` OpenCV encode+decode pairs (up to 50 with the defaults) plus a
    few passes over the pixels per quality. Memory: one uint8 and one float32
    image and two sets of ``n_q`` window grids of ``H W / 64`` float32 (about
    ``n_q H W / 8`` bytes), never ``n_q`` full-size maps.

    References
    ----------
    .. [1] H. Farid, "Exposing digital forgeries from JPEG ghosts", IEEE Transactions
       on Information Forensics and Security 4(1), 154-160, 2009.
       DOI 10.1109/TIFS.2008.2012215

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> jpeg_ghost_map(img).applicable
    False
    >>> hm = jpeg_ghost_map(img, force=True, q_min=70, step=5)
    >>> hm.params["quality"] in hm.params["qualities"]
    True
    """
    quality, q_min, step, window, channels, subsampling = _check_params(
        quality, q_min, step, window, channels, subsampling, force)
    t0 = time.perf_counter()
    img = as_image(image)
    h, w = img.shape
    qs = _quality_range(img, q_min, step, quality)
    if img.pixels.shape[2] == 1:
        channels = "luma"
    subsampling = _file_subsampling(img, subsampling) if channels == "rgb" else "n/a (gray)"
    params: dict[str, Any] = {"quality": quality, "q_min": q_min, "step": step, "window": window,
                              "channels": channels, "subsampling": subsampling, "force": bool(force),
                              "qualities": qs, "encoder": encoder_name()}
    k = window // 8
    n_win = max(h // 8 - k + 1, 0) * max(w // 8 - k + 1, 0)
    if why := not_jpeg_reason(img, force=force):
        return _not_applicable(h, w, params, t0, why)
    if n_win < 2:
        return _not_applicable(h, w, params, t0, f"the image ({h}x{w}) holds fewer than two "
                               f"{window}x{window} windows")
    if len(qs) < 3:
        return _not_applicable(h, w, params, t0, f"fewer than three qualities from q_min={q_min} "
                               f"below the file's quality {img.info.jpeg_quality}")
    src = encoder_input(img, channels=channels)
    t1 = time.perf_counter()
    delta = _differences(src, qs, k, subsampling)
    t2 = time.perf_counter()
    i, scores, share, cand = _choose(delta, qs, quality)
    depth = _ghost_depth(delta, qs, i)
    sign = -1.0 if share <= 0.5 else 1.0
    # the mapping on the window grid (the statistic's own sampling), then both to pixels
    grid_values = robust_logistic(np.float32(sign) * depth, two_sided=False, min_scale=LOG_MIN_SCALE)
    raw, values = _to_pixels(depth, h, w, k), _to_pixels(grid_values, h, w, k)
    params.update(quality=qs[i], fisher=float(scores[i]), ghost_share=share,
                  orientation="ghost" if sign < 0 else "non-ghost",
                  candidates=[qs[j] for j in cand])
    t3 = time.perf_counter()
    return Heatmap(values=values, raw=raw, method="jpeg_ghost", params=params, units=_UNITS,
                   timings={"prepare": t1 - t0, "recompress": t2 - t1, "choose": t3 - t2, "total": t3 - t0})
