"""The table of object features of :func:`noisestat.localizers.objects.object_features`.

Every feature is one function registered with :func:`object_feature`: it reads
a :class:`FeatureContext` (the image, its segmentation, the luma and the
options shared by all features) and returns its :class:`FeatureValues` (per
object foreground and background, and the whole image). :data:`FEATURES` is
the tuple of registered names, in registration order; adding a feature is one
function and its decorator here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from ..types import Heatmap, LoadedImage, Segmentation
from ._object_features_kernels import tile_covariance, tile_extremes
from ._regions import region_sums

__all__ = ["FeatureContext", "FeatureValues", "object_feature", "compute_features", "map_feature", "FEATURE_TABLE",
           "FEATURES", "ELA_GRADIENT_OFFSET", "ADQ_FLOOR", "FLOOR_WAVELET", "FLOOR_MODES",
           "CHANNEL_INDEPENDENCE_MIN", "DECORRELATED_PERCENTILE"]

#: ELA feature: mean ELA / (mean gradient magnitude + 4 gray levels). ELA follows
#: edges; the offset keeps flat regions from dividing by ~0.
ELA_GRADIENT_OFFSET = 4.0
#: ADQ feature: region means of the single-compression probability are floored at
#: this before the log of standardized mode (a region can read 0 exactly).
ADQ_FLOOR = 0.01


@dataclasses.dataclass(frozen=True)
class FeatureContext:
    """What every object feature reads: the image, its objects, shared arrays and the options.

    Build it with :meth:`build`; the fields after ``scale`` are the keyword
    options of :func:`~noisestat.localizers.objects.object_features`.
    """

    img: LoadedImage
    seg: Segmentation
    gray: np.ndarray  # (H, W) float32 luma, C-contiguous
    scale: float  # 255 / white level: noise levels in 0-255 units
    min_pixels: int
    pca_patch: int
    smooth_percentile: float
    floor_block: int
    floor_percentile: float | None
    floor_mode: str
    adq: Heatmap | None
    #: extra feature maps by feature name: per-pixel energy (H, W), the mean over channels of the squared map
    maps: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, img: LoadedImage, seg: Segmentation, **options) -> FeatureContext:
        """The context of ``img`` and ``seg`` with the shared arrays computed once."""
        gray = np.ascontiguousarray(img.gray(), dtype=np.float32)
        return cls(img, seg, gray, 255.0 / img.info.white_level, **options)

    def region_sums(self, values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~noisestat.localizers._regions.region_sums` over this segmentation (None = pixel count)."""
        return region_sums(values, self.seg.labels, self.seg.boxes)


@dataclasses.dataclass(frozen=True)
class FeatureValues:
    """One feature's values: ``fg``, ``bg`` of shape (n,) (NaN = too little data), ``whole`` (1,)."""

    fg: np.ndarray
    bg: np.ndarray
    whole: np.ndarray
    extra: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)  # more outputs, by name


FeatureFunc = Callable[[FeatureContext], FeatureValues]
#: name -> feature function, in registration order.
FEATURE_TABLE: dict[str, FeatureFunc] = {}


def object_feature(name: str) -> Callable[[FeatureFunc], FeatureFunc]:
    """Decorator that registers a feature function under ``name`` in :data:`FEATURE_TABLE`."""

    def deco(func: FeatureFunc) -> FeatureFunc:
        if name in FEATURE_TABLE:
            raise RuntimeError(f"object feature {name!r} registered twice")
        FEATURE_TABLE[name] = func
        return func

    return deco


def compute_features(ctx: FeatureContext, names: Iterable[str]) -> dict[str, np.ndarray]:
    """``"area"``, ``"brightness"`` and, for each registered feature in ``names``, its outputs.

    Features are computed once each, in table order, then the extra feature
    maps of ``ctx.maps`` that ``names`` asks for (:func:`map_feature`);
    other names are ignored. See :func:`~noisestat.localizers.objects.object_features`.
    """
    wanted = set(names)
    sums, _ = ctx.region_sums([None, ctx.gray])
    out = {"area": sums[:, 0], "brightness": sums[:, 1] / np.maximum(sums[:, 0], 1) * ctx.scale}
    for name, func in FEATURE_TABLE.items():
        if name in wanted:
            v = func(ctx)
            out[f"{name}_fg"], out[f"{name}_bg"], out[f"{name}_all"] = v.fg, v.bg, v.whole
            out.update(v.extra)
    for name, energy in ctx.maps.items():
        if name in wanted and name not in FEATURE_TABLE:
            v = map_feature(ctx, energy)
            out[f"{name}_fg"], out[f"{name}_bg"], out[f"{name}_all"] = v.fg, v.bg, v.whole
    return out


def map_feature(ctx: FeatureContext, energy: np.ndarray) -> FeatureValues:
    """Per-region RMS of an extra feature map (e.g. a CNN residual): ``sqrt(sum energy / count)``.

    ``energy`` is the per-pixel mean over the map's channels of its squared
    values, so a region's value is the RMS of the map over the region's
    pixels and channels; NaN where the region has fewer than ``min_pixels``
    pixels; ``whole`` = the RMS over the image.
    """
    e = np.asarray(energy, dtype=np.float64)
    fg, bg = _per_region(ctx.region_sums([None, e]), ctx.min_pixels, lambda s: np.sqrt(s[:, 1] / s[:, 0]))
    return FeatureValues(fg, bg, np.array([float(np.sqrt(e.mean()))]))


def _per_region(
    sums: tuple[np.ndarray, np.ndarray], min_pixels: int, value: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``value`` of the foreground and background sums; NaN where the count (column 0) < ``min_pixels``."""
    fg, bg = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(fg[:, 0] >= min_pixels, value(fg), np.nan),
                np.where(bg[:, 0] >= min_pixels, value(bg), np.nan))


def _gradient_magnitude(gray: np.ndarray, sigma: float) -> np.ndarray:
    """Sobel gradient magnitude (float32) of a Gaussian-blurred copy of ``gray``."""
    import cv2

    sm = cv2.GaussianBlur(gray, (0, 0), sigma)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def _crop(img: LoadedImage, gray: np.ndarray, box: np.ndarray) -> LoadedImage:
    r0, c0, r1, c1 = (int(v) for v in box)
    px = np.ascontiguousarray(gray[r0:r1, c0:c1, None])
    info = dataclasses.replace(img.info, shape=(r1 - r0, c1 - c0), channels=1)
    return LoadedImage(px, info)


@object_feature("sigma_floor")
def _sigma_floor(ctx: FeatureContext) -> FeatureValues:
    """Wavelet-domain noise floor per region (:func:`_floor_features`), in 0-255 units."""
    block = ctx.floor_block
    fg, bg, allv, tiles = _floor_features(ctx.img, ctx.gray, ctx.seg, block=block, q=ctx.floor_percentile,
                                          min_blocks=max(4, ctx.min_pixels // (block * block)),
                                          mode=ctx.floor_mode)
    extra = {"floor_decorrelated": np.array([float(tiles is not None and tiles.mode == "decorrelated")]),
             "channel_independence": np.array([tiles.channel_independence if tiles is not None else np.nan])}
    return FeatureValues(fg * ctx.scale, bg * ctx.scale, np.array([allv * ctx.scale]), extra)


def _pca_sigma(crop: LoadedImage, region: np.ndarray, ctx: FeatureContext) -> float:
    """Chen PCA noise level of ``crop`` on ``region`` (NaN: too few pixels or no reliable estimate)."""
    from ..noise.pca import estimate_noise_pca

    if region.sum() < ctx.min_pixels:
        return np.nan
    est = estimate_noise_pca(crop, patch_size=ctx.pca_patch, mask=region)
    return est.sigma if est.reliable and np.isfinite(est.sigma) else np.nan


@object_feature("sigma_p")
def _sigma_p(ctx: FeatureContext) -> FeatureValues:
    """Chen PCA noise level of the gray image on each region, in 0-255 units."""
    from ..noise.pca import estimate_noise_pca

    img, gray, seg = ctx.img, ctx.gray, ctx.seg
    fg = np.full(seg.n_objects, np.nan)
    bg = np.full(seg.n_objects, np.nan)
    for i, box in enumerate(seg.boxes):
        r0, c0, r1, c1 = (int(v) for v in box)
        crop = _crop(img, gray, box)
        lab = seg.labels[r0:r1, c0:c1]
        fg[i] = _pca_sigma(crop, lab == i + 1, ctx)
        bg[i] = _pca_sigma(crop, lab != i + 1, ctx)
    whole = estimate_noise_pca(LoadedImage(np.ascontiguousarray(gray[:, :, None]),
                                           dataclasses.replace(img.info, channels=1)), patch_size=ctx.pca_patch)
    return FeatureValues(fg * ctx.scale, bg * ctx.scale, np.array([whole.sigma * ctx.scale]))


@object_feature("sigma_r")
def _sigma_r(ctx: FeatureContext) -> FeatureValues:
    """RMS of ``I - median3x3(I)`` over each region's smooth, unclipped pixels, in 0-255 units."""
    import cv2

    gray = ctx.gray
    r = gray - cv2.medianBlur(gray, 3)
    # smoothness from the gradient of a blurred copy, so that noise itself
    # does not decide which pixels are "smooth" (that would bias sigma low)
    gm = _gradient_magnitude(gray, 2.0)
    w = gm <= np.percentile(gm, ctx.smooth_percentile)
    # pixels next to clipped values carry no noise: leave them out
    k3 = np.ones((3, 3), np.uint8)
    w &= (cv2.erode(gray, k3) > 0.0) & (cv2.dilate(gray, k3) < ctx.img.info.white_level)
    w = w.astype(np.float64)
    r2w = w * r.astype(np.float64) ** 2
    fg, bg = _per_region(ctx.region_sums([w, r2w]), ctx.min_pixels, lambda s: np.sqrt(s[:, 1] / s[:, 0]))
    whole = np.array([np.sqrt(r2w.sum() / max(w.sum(), 1.0))])
    return FeatureValues(fg * ctx.scale, bg * ctx.scale, whole * ctx.scale)


@object_feature("ela")
def _ela(ctx: FeatureContext) -> FeatureValues:
    """Mean error level over each region / (its mean gradient magnitude + :data:`ELA_GRADIENT_OFFSET`)."""
    from ..maps.ela import ela_map

    hm = ela_map(ctx.img)
    if not hm.applicable:
        raise ValueError("features: 'ela' needs a JPEG-compressed input (ELA is not applicable here)")
    gmag = _gradient_magnitude(ctx.gray, 1.0)
    e = hm.raw.astype(np.float64)
    c = ELA_GRADIENT_OFFSET
    fg, bg = _per_region(ctx.region_sums([None, e, gmag * ctx.scale]), ctx.min_pixels,
                         lambda s: s[:, 1] / (s[:, 2] + c * s[:, 0]))
    return FeatureValues(fg, bg, np.array([e.sum() / (gmag.sum() * ctx.scale + c * e.size)]))


@object_feature("adq")
def _adq(ctx: FeatureContext) -> FeatureValues:
    """Mean single-compression probability of the aligned double-JPEG map, floored at :data:`ADQ_FLOOR`."""
    adq = ctx.adq
    if adq is None:
        from ..jpeg.adq import adq_map

        adq = adq_map(ctx.img)
    if not adq.applicable:
        raise ValueError(f"features: 'adq' does not apply to this image ({adq.note})")
    pa = adq.values.astype(np.float64)
    fg, bg = _per_region(ctx.region_sums([None, pa]), ctx.min_pixels,
                         lambda s: np.maximum(s[:, 1] / s[:, 0], ADQ_FLOOR))
    return FeatureValues(fg, bg, np.array([max(float(pa.mean()), ADQ_FLOOR)]))


#: Wavelet of the noise floor: the finest diagonal subband of db4 (8 taps)
#: passes white noise unchanged and rejects smooth shading and most
#: straight edges better than Haar or a median residual.
FLOOR_WAVELET = "db4"
FLOOR_MODES = ("auto", "mean", "decorrelated")
#: ``floor_mode="auto"`` uses the decorrelated floor when the median over
#: tiles of ``lambda_min / (trace / 3)`` of the 3 x 3 colour covariance of the
#: diagonal coefficients is at least this: independent noise per channel
#: gives about 0.4 on 8 x 8 tiles, 4:2:0 JPEG images (smoothed, quantised
#: chroma) at most 0.13 (all 1260 CASIA v1 images, median 0.003).
CHANNEL_INDEPENDENCE_MIN = 0.2
#: Tile percentile of the decorrelated floor (its tile values are texture-free,
#: so the median, not a low percentile, is taken).
DECORRELATED_PERCENTILE = 50.0


@dataclasses.dataclass(frozen=True)
class _FloorTiles:
    """Per-tile noise variance of the floor and how it was measured."""

    var: np.ndarray  # (hb, wb) tile noise variance, NaN where a coefficient is missing
    mode: str  # "mean" or "decorrelated"
    channel_independence: float  # median lambda_min / (trace / 3); NaN for gray images


def _floor_tiles(img: LoadedImage, unclipped: np.ndarray, block: int, mode: str) -> _FloorTiles:
    """Tile variance of the finest diagonal db4 coefficients, channel mean or decorrelated.

    ``unclipped``: (hb, wb) tiles without a clipped luma value (the channel-independence
    ratio is measured on them).
    """
    from ..blocks.wavelets import diagonal_coefficients

    hb, wb = unclipped.shape
    half = block // 2
    d = diagonal_coefficients(img.pixels, FLOOR_WAVELET)
    nc = d.shape[2]
    t = d[: hb * half, : wb * half].reshape(hb, half, wb, half, nc)
    if nc != 3:
        if mode == "decorrelated":
            raise ValueError(f"floor_mode='decorrelated' needs a 3-channel colour image, got {nc} channel(s); "
                             f"use floor_mode='auto' or 'mean'")
        return _FloorTiles(np.mean(t * t, axis=(1, 3, 4)), "mean", float("nan"))
    cov = tile_covariance(np.ascontiguousarray(d), half, hb, wb) / (half * half)  # einsum akbld,akble->abde
    fin = np.all(np.isfinite(cov), axis=(2, 3))
    ev = np.full((hb, wb, 3), np.nan)
    ev[fin] = np.maximum(np.linalg.eigvalsh(cov[fin]), 0.0)
    mean_var = ev.sum(axis=2) / 3.0  # = mean over channels of the squared coefficients
    sel = unclipped & (mean_var > 0)
    rho = float(np.median(ev[sel, 0] / mean_var[sel])) if sel.any() else float("nan")
    if mode == "decorrelated" or (mode == "auto" and rho >= CHANNEL_INDEPENDENCE_MIN):
        return _FloorTiles(ev[:, :, 0], "decorrelated", rho)
    return _FloorTiles(mean_var, "mean", rho)


def _chi2_ppf(p: float, dof: int) -> float:
    """``scipy.stats.chi2.ppf(p, dof)``, bit for bit, without importing :mod:`scipy.stats` (0.5 s).

    For ``0 < p < 1`` scipy computes it as ``2 * gammaincinv(dof / 2, p)``
    (``scale`` 1, ``loc`` 0); other ``p`` go to scipy.stats itself.
    """
    if not 0.0 < p < 1.0:
        from scipy.stats import chi2

        return float(chi2.ppf(p, dof))
    from scipy.special import gammaincinv

    return float(2 * gammaincinv(dof / 2, p))


@functools.lru_cache(maxsize=32)
def _white_noise_quantile(mode: str, q: float, n: int, channels: int) -> float:
    """The ``q``-th percentile of a tile's floor RMS for white noise of sigma 1.

    ``"mean"``: ``sqrt(chi2_{C n} / (C n))`` (``n`` coefficients per channel,
    ``C`` channels), exact. ``"decorrelated"``: ``sqrt(lambda_min(W / n))``
    with ``W`` a 3 x 3 Wishart matrix of ``n`` degrees of freedom, by a
    seeded Monte Carlo of 40000 tiles (standard error about 0.3 %), the same
    number on every call.
    """
    if mode == "mean":
        dof = channels * n
        return float(np.sqrt(_chi2_ppf(q / 100.0, dof) / dof))
    rng = np.random.default_rng(20150101)
    z = rng.standard_normal((40000, n, 3))
    ev = np.linalg.eigvalsh(np.einsum("tki,tkj->tij", z, z) / n)[:, 0]
    return float(np.sqrt(np.percentile(np.maximum(ev, 0.0), q)))


def _floor_features(
    img: LoadedImage, gray: np.ndarray, seg: Segmentation, *, block: int, q: float | None, min_blocks: int,
    mode: str = "auto",
) -> tuple[np.ndarray, np.ndarray, float, _FloorTiles | None]:
    """Noise floor per region: a percentile of the tile RMS of diagonal-wavelet coefficients.

    The finest diagonal db4 subband of every colour channel
    (:func:`noisestat.blocks.wavelets.diagonal_coefficients`) is cut into tiles of
    ``block x block`` pixels (aligned with the JPEG grid for 8). Per tile,
    the noise variance is either the mean over channels of the squared
    coefficients (``"mean"``: the per-channel noise level for white noise;
    texture only raises it) or the smallest eigenvalue of the 3 x 3 colour
    covariance of the coefficients (``"decorrelated"``: texture, which is
    nearly the same in every channel, lies along one colour direction and is
    left out; noise independent per channel is in every direction). ``"auto"``
    takes the decorrelated variance when the image's channels carry
    independent noise (:data:`CHANNEL_INDEPENDENCE_MIN`), else the mean. A
    region's value is the ``q``-th percentile (default 10 for the mean, 50
    for the decorrelated variance) of its tiles' RMS, divided by that
    percentile for white Gaussian noise of sigma 1
    (:func:`_white_noise_quantile`), so that white noise of ``sigma`` per
    channel reads ``sigma`` in either mode; texture only raises it. Tiles at the image
    border without every coefficient, with a clipped luma value or spanning
    two objects are skipped (a coefficient reaches 2 pixels before and 4
    after its tile).
    """
    from ..blocks.wavelets import daubechies_filters

    h, w = gray.shape
    block = max(2, block - block % 2)
    hb, wb = h // block, w // block
    n = seg.n_objects
    nan = np.full(n, np.nan)
    if hb == 0 or wb == 0 or min(h, w) < daubechies_filters(FLOOR_WAVELET)[1].size:
        return nan, nan.copy(), float("nan"), None
    gmin, gmax, lmin, lmax = tile_extremes(np.ascontiguousarray(gray), np.ascontiguousarray(seg.labels),
                                           block, hb, wb)
    unclipped = (gmin > 0) & (gmax < img.info.white_level)
    tiles = _floor_tiles(img, unclipped, block, mode)
    if q is None:
        q = DECORRELATED_PERCENTILE if tiles.mode == "decorrelated" else 10.0
    rms = np.sqrt(tiles.var) / _white_noise_quantile(tiles.mode, float(q), (block // 2) ** 2,
                                                   img.pixels.shape[2])
    ok = unclipped & np.isfinite(rms)
    ok &= lmin == lmax
    tile_lab = np.where(ok, lmin, 0)
    rr, cc = np.mgrid[0:hb, 0:wb]
    rr = rr * block + block // 2
    cc = cc * block + block // 2
    fg, bg = nan.copy(), nan.copy()
    for i in range(n):
        sel = tile_lab == i + 1
        if sel.sum() >= min_blocks:
            fg[i] = np.percentile(rms[sel], q)
        r0, c0, r1, c1 = seg.boxes[i]
        inbox = (rr >= r0) & (rr < r1) & (cc >= c0) & (cc < c1) & ok & ~sel
        if inbox.sum() >= min_blocks:
            bg[i] = np.percentile(rms[inbox], q)
    allv = float(np.percentile(rms[ok], q)) if ok.sum() >= min_blocks else float("nan")
    return fg, bg, allv, tiles



#: The supported feature names, in table order (derived from :data:`FEATURE_TABLE`).
FEATURES = tuple(FEATURE_TABLE)
