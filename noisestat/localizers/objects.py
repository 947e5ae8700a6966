"""Object-level splicing localizer (noise features + cosine dissimilarity).

The image is segmented into objects; each object's foreground (its mask) and
background (the rest of its bounding box) get noise features; the pairwise
dissimilarity matrix ``DM(i, j) = 1 - cos(S_i, S_j)`` of the objects' feature
vectors and the paper's Algorithm 1 pick the object most dissimilar to all
others as spliced.

Two modes:

``"paper"``
    ``S_i = (f_1^fg, ..., f_d^fg, f_1^bg, ..., f_d^bg)`` with the raw noise
    levels, Algorithm 1 selects one object. Cosine is scale-invariant: an
    object whose features are all ``alpha`` times the others' has ``DM = 0``.
``"standardized"`` (default)
    Per object, the log of each foreground noise level relative to the
    whole-image estimate, in fixed units (``z_scale``), anchored with a leading
    1 so that ``1 - cos`` to the host direction measures how far the object is
    from the host, noisier or cleaner. A pure noise-level difference is seen,
    and several objects can be flagged.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .._numba import run_tasks
from .._validate import check_choice, check_float, check_int
from ..io import as_image
from ..registry import get_feature_map, register
from ..segment import paint_labels
from ..types import Heatmap, LoadedImage, Localization, ObjectDetail, Segmentation
from ._dissimilarity import algorithm1, cosine_dissimilarity
from ._instances import InstanceObjects, instance_objects, layered_features
from ._object_features import ADQ_FLOOR as ADQ_FLOOR
from ._object_features import CHANNEL_INDEPENDENCE_MIN as CHANNEL_INDEPENDENCE_MIN
from ._object_features import DECORRELATED_PERCENTILE as DECORRELATED_PERCENTILE
from ._object_features import ELA_GRADIENT_OFFSET as ELA_GRADIENT_OFFSET
from ._object_features import FEATURES, FLOOR_MODES, FeatureContext, compute_features
from ._object_features import FLOOR_WAVELET as FLOOR_WAVELET

__all__ = ["objects_localizer", "noise_curve_stats", "CURVE_MIN_OBJECTS", "object_features", "FEATURES", "VALUE_CENTER", "VALUE_SCALE"]

#: Fixed mapping of an object's dissimilarity to the host to heatmap values
#: (standardized mode): an object 2.5 units (``z_scale``) from the host,
#: ``1 - 1/sqrt(1 + 2.5^2)``, maps to 0.5.
VALUE_CENTER = float(1.0 - 1.0 / np.sqrt(1.0 + 2.5**2))
VALUE_SCALE = 0.05


def _parse_features(features: Any) -> tuple[str, ...]:
    if isinstance(features, str):
        names = tuple(f.strip() for f in features.split(",") if f.strip())
    elif isinstance(features, (list, tuple)):
        names = tuple(features)
    else:
        raise TypeError(f"features must be a comma-separated string, got {type(features).__name__}")
    if not names:
        raise ValueError("features is empty; use e.g. 'sigma_p,sigma_r'")
    for n in names:
        if n not in FEATURES:
            raise ValueError(f"features: {n!r} is not supported; choose from {FEATURES}")
    return names


def object_features(
    img: LoadedImage,
    seg: Segmentation,
    *,
    features: tuple[str, ...] = FEATURES,
    min_pixels: int = 256,
    pca_patch: int = 5,
    smooth_percentile: float = 50.0,
    floor_block: int = 8,
    floor_percentile: float | None = None,
    floor_mode: str = "auto",
    adq: Heatmap | None = None,
    maps: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Noise features of every object's foreground and background.

    Parameters
    ----------
    img : LoadedImage
    seg : Segmentation
        Objects 1..n.
    features : tuple of str
        ``"sigma_floor"``: wavelet-domain noise floor, the ``floor_percentile``
        percentile over the region's ``floor_block`` x ``floor_block`` tiles
        of the tile RMS of the finest diagonal db4 coefficients, in units of
        the per-channel noise sigma (tiles at the border, with clipped pixels
        or spanning two objects skipped; see ``floor_mode``);
        ``"sigma_p"``: Chen PCA noise level of the gray image on the region
        (patches of ``pca_patch`` pixels entirely inside it);
        ``"sigma_r"``: RMS of the residual ``I - median3x3(I)`` over the
        region's smooth pixels (gradient magnitude of a blurred copy at most
        the image's ``smooth_percentile`` percentile), as in the paper;
        ``"ela"``: mean error level (:func:`noisestat.maps.ela.ela_map`) over
        the region divided by its mean gradient magnitude plus 4 gray levels
        (JPEG inputs only);
        ``"adq"``: mean over the region of the aligned double-JPEG map
        (:func:`noisestat.jpeg.adq.adq_map`, the probability that a block was
        compressed once), floored at :data:`ADQ_FLOOR` (JPEG inputs with a
        double-compression trace only).
        Clipped pixels are left out of every feature but ``"adq"``.
    min_pixels : int
        Regions with fewer usable pixels get NaN (invalid), never a guess.
    floor_percentile : float, optional
        Tile percentile of ``"sigma_floor"``; default 10 for the channel-mean
        tile RMS (texture only raises a tile, so a low percentile) and 50 for
        the decorrelated one (texture is already left out).
    floor_mode : {"auto", "mean", "decorrelated"}, default "auto"
        Tile noise of ``"sigma_floor"``: ``"mean"``, the mean over channels of
        the squared coefficients; ``"decorrelated"`` (colour images), the
        smallest eigenvalue of their 3 x 3 colour covariance, which leaves out
        texture (nearly the same in every channel, so along one colour
        direction) and keeps noise that is independent per channel;
        ``"auto"``, decorrelated when the image's channels carry independent
        noise (median ``lambda_min / (trace / 3)`` over tiles at least
        :data:`CHANNEL_INDEPENDENCE_MIN`), else the mean. Chroma-subsampled
        JPEG images have smoothed, quantised chroma and get the mean.
    adq : Heatmap, optional
        A precomputed ``adq_map(img)`` for the ``"adq"`` feature.
    maps : dict, optional
        Extra feature maps, feature name -> per-pixel energy (H, W) (the
        mean over channels of the squared map); a name in ``features`` that
        is a key here gets the region RMS of its map
        (:func:`~noisestat.localizers._object_features.map_feature`).

    Returns
    -------
    dict
        ``"<name>_fg"``, ``"<name>_bg"`` arrays of shape (n,) (NaN = too little
        data), ``"brightness"`` (mean gray level of the foreground), ``"area"``
        and the whole-image values ``"<name>_all"`` (shape (1,)); with
        ``"sigma_floor"`` also ``"floor_decorrelated"`` (1.0 if the
        decorrelated tile noise was used, else 0.0) and
        ``"channel_independence"`` (the median ratio above; NaN for gray
        images), both of shape (1,).

    Raises
    ------
    ValueError
        ``floor_mode="decorrelated"`` on an image without 3 channels; ``"ela"``
        or ``"adq"`` where the map does not apply.

    Notes
    -----
    Each feature is one function of the feature table
    (``noisestat.localizers._object_features``, where :data:`FEATURES` comes
    from); the requested ones are computed once each, in table order, and
    names not in the table are ignored.
    """
    ctx = FeatureContext.build(img, seg, min_pixels=min_pixels, pca_patch=pca_patch,
                               smooth_percentile=smooth_percentile, floor_block=floor_block,
                               floor_percentile=floor_percentile, floor_mode=floor_mode, adq=adq,
                               maps=dict(maps or {}))
    return compute_features(ctx, features)


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    o = np.argsort(v)
    c = np.cumsum(w[o])
    return float(v[o][np.searchsorted(c, 0.5 * c[-1])])


def _theil_sen_slope(y: np.ndarray, x: np.ndarray) -> float:
    """Median of the pairwise slopes ``(y_j - y_i) / (x_j - x_i)`` over the pairs with ``x_j > x_i``
    (Sen 1968, doi:10.1080/01621459.1968.10480934; ``scipy.stats.theilslopes(y, x).slope``,
    the same operations, without importing :mod:`scipy.stats`, 0.5 s in a fresh process)."""
    dx = x[:, None] - x
    dy = y[:, None] - y
    up = dx > 0
    return float(np.median(dy[up] / dx[up]))


def _brightness_corrected(logf: np.ndarray, brightness: np.ndarray) -> np.ndarray:
    """Remove a robust linear trend of log noise vs brightness across objects (Theil-Sen)."""
    if logf.shape[0] < 6 or np.ptp(brightness) < 1e-6:
        return logf
    out = logf.copy()
    b = brightness - np.median(brightness)
    for k in range(logf.shape[1]):
        slope = _theil_sen_slope(np.asarray(logf[:, k], dtype=np.float64), np.asarray(b, dtype=np.float64))
        out[:, k] = logf[:, k] - slope * b
    return out


#: fewest valid objects :func:`noise_curve_stats` measures (a trend and a spread need several)
CURVE_MIN_OBJECTS = 4


def noise_curve_stats(f: dict[str, np.ndarray], valid: np.ndarray) -> dict[str, float]:
    """How far the objects' noise floors stray from one noise-vs-brightness trend of the image.

    Parameters
    ----------
    f : dict of ndarray
        :func:`object_features` output with ``"sigma_floor_fg"``,
        ``"brightness"`` and ``"area"`` (each (n,)).
    valid : ndarray of bool, shape (n,)
        The objects with a usable noise estimate.

    Returns
    -------
    dict
        ``{"curve_residual": max_i |e_i|, "curve_spread": s}``, empty with fewer
        than :data:`CURVE_MIN_OBJECTS` valid objects.

    Notes
    -----
    One camera gives every part of an image the same noise level function
    (noise against brightness; Liu et al. 2008): objects of different
    brightness differ in noise level legitimately, a pasted object strays from
    the trend. With :math:`x_i = \\log \\sigma_i` (the foreground noise floor)
    and :math:`b_i` the mean brightness, the trend is a Theil-Sen line (the
    one ``brightness_correction`` removes; flat with fewer than 6 objects),
    :math:`e_i = x_i - m b_i - c` with ``c`` the area-weighted median, and
    ``s`` = 1.4826 times the area-weighted median of :math:`|e_i|`. They are
    image-level statistics for the integrity score
    (:data:`noisestat.decisions.integrity.METHOD_STATS`); the heatmap does
    not use them.

    References
    ----------
    C. Liu, W. T. Freeman, R. Szeliski, S. B. Kang, "Automatic estimation and
    removal of noise from a single image", IEEE TPAMI 30(2), 2008,
    doi:10.1109/TPAMI.2007.1176.
    """
    idx = np.flatnonzero(valid)
    if idx.size < CURVE_MIN_OBJECTS:
        return {}
    x = np.log(f["sigma_floor_fg"][idx].astype(np.float64))[:, None]
    xc = _brightness_corrected(x, f["brightness"][idx].astype(np.float64))[:, 0]
    wts = f["area"][idx].astype(np.float64)
    e = xc - _weighted_median(xc, wts)
    return {"curve_residual": float(np.max(np.abs(e))),
            "curve_spread": float(1.4826 * _weighted_median(np.abs(e), wts))}


def _segment(img: LoadedImage, segmenter: str, n_objects: int) -> tuple[Segmentation, dict[str, Any]]:
    """The objects' segmentation and what ``params["segmentation"]`` records (instance backends only)."""
    from ..segment import segment

    name, sep, arg = segmenter.partition(":")
    seg = _partition(img, segmenter, n_objects) if not sep else segment(img, method=name, model=arg)
    if seg.instances is None:
        return seg, {}
    info = {"backend": name, **seg.instances.params, "n_instances": seg.instances.n_instances}
    if seg.instances.n_instances == 0:
        thr = seg.instances.params.get("score_threshold")
        info["fallback"] = f"no instance scored at least {thr}; objects from {FALLBACK_SEGMENTER!r}"
        return _partition(img, FALLBACK_SEGMENTER, n_objects), info
    return seg, info


#: partition backend used when an instance segmenter finds no instance above its score threshold
FALLBACK_SEGMENTER = "slic_merge"


def _partition(img: LoadedImage, segmenter: str, n_objects: int) -> Segmentation:
    from ..segment import segment

    if segmenter == "grid":
        k = max(int(np.ceil(np.sqrt(n_objects))), 2)
        return segment(img, method="grid", rows=k, cols=k)
    if segmenter in ("slic_merge", "felzenszwalb", "watershed"):
        return segment(img, method=segmenter, max_objects=n_objects, min_objects=min(4, n_objects))
    return segment(img, method=segmenter)  # plug-in backends choose their own object count


@register("objects", kind="localizer")
def objects_localizer(
    image: Any,
    *,
    mode: str = "standardized",
    segmenter: str = "slic_merge",
    n_objects: int = 32,
    features: str = "auto",
    select: str = "auto",
    z_scale: float = 0.25,
    reference: str = "image",
    brightness_correction: bool = False,
    min_pixels: int = 256,
    floor_mode: str = "auto",
    feature_maps: str = "",
) -> Localization:
    """Object-level localizer: segment, measure noise per object, pick the most dissimilar.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
    mode : {"standardized", "paper"}, default "standardized"
        ``"paper"`` reproduces the paper: ``S_i`` = raw foreground and
        background features, ``DM = 1 - cos``, Algorithm 1 selects one object.
        ``"standardized"``: log foreground features relative to the whole image
        in units of ``z_scale``, anchored (see Notes).
    segmenter : str, default "slic_merge"
        A backend of :func:`noisestat.segment.segment`, or ``"NAME:ARG"``
        for a backend that takes a model file (``segment(image, method=NAME,
        model=ARG)``), e.g. ``"onnx:maskrcnn.onnx[:layout]"``
        (:class:`noisestat.onnx.OnnxSegmenter`). With an instance backend
        (overlapping masks with boxes and scores) the objects are the
        instances that pass the segmenter's score threshold plus the rest of
        the image, each instance's background is the rest of its box, or the
        rest of the image when the box remainder has fewer than
        ``min_pixels`` pixels; instances whose mask has fewer than
        ``min_pixels`` pixels are kept as invalid objects (never selected;
        their pixels are not part of the rest of the image). When no
        instance passes, the ``"slic_merge"`` partition is used instead
        (``params["segmentation"]["fallback"]`` says so).
    n_objects : int, default 32
        Target (maximum) number of objects for the segmenter.
    features : str, default "auto"
        Comma-separated names from :data:`FEATURES` (see
        :func:`object_features`). ``"auto"``: in paper mode ``"sigma_p,sigma_r"``
        (the paper's); in standardized mode ``"adq"`` for a JPEG input in
        which the aligned double-JPEG map finds an image-level
        double-compression trace (its ``params["trace_found"]``: then the
        trace, not the noise of a compressed image, tells objects apart), else
        ``"sigma_floor"``. ``params["features"]`` records the
        choice.
    select : {"auto", "top"}, default "auto"
        ``"auto"``: the mask holds every object whose heatmap value is at least
        0.5 (possibly none, possibly several). ``"top"``: only the most
        dissimilar object (Algorithm 1 in paper mode, the largest value in
        standardized mode). Paper mode always uses ``"top"``. The 0.5 level
        is a fixed noise-floor ratio (about 1.87x, up or down, at the default
        ``z_scale``), not a calibrated false-alarm rate. This is the
        method's own, uncalibrated mask (``noisestat.registry.localize``,
        or ``noisestat.localize(..., calibration=False)``);
        :func:`noisestat.localize` replaces it by the calibrated decision
        ``heatmap >= 0.5`` of :mod:`noisestat.decisions`.
    z_scale : float, default 0.25
        Standardized mode: one unit of the standardized features, in natural-log
        units of noise level (0.25 = a 28 % difference). Fixed, so that heatmap
        values mean the same on every image.
    reference : {"image", "objects"}, default "image"
        Standardized mode: the typical ("host") noise level the objects are
        compared with, either the whole-image estimate or the area-weighted
        median over objects.
    brightness_correction : bool, default False
        Standardized mode: remove a robust (Theil-Sen) linear trend of log noise
        level against mean brightness across objects (needs >= 6 objects).
    min_pixels : int, default 256
        Regions with fewer usable pixels are marked invalid and left out.
    floor_mode : {"auto", "mean", "decorrelated"}, default "auto"
        How the ``"sigma_floor"`` feature measures a tile's noise (see
        :func:`object_features`): ``"auto"`` leaves out luminance texture
        (the smallest eigenvalue of the colour covariance) when the image's
        channels carry independent noise, and otherwise averages the channels.
    feature_maps : str or list of str, default ""
        Extra feature maps, comma-separated ``"scheme:argument"`` specs of
        :func:`noisestat.registry.get_feature_map` (``"onnx:PATH"``:
        :class:`noisestat.onnx.OnnxFeatureProvider`). Each map adds one
        feature ``"<scheme>_<name>"`` (``name`` = the provider's, e.g.
        ``onnx_srm``): the RMS of the map over the region's pixels and
        channels, compared like the noise features (its log relative to the
        whole image in standardized mode). ``params["feature_providers"]``
        records each provider (model file, execution provider, tiling).

    Returns
    -------
    Localization
        ``heatmap.raw``: per object, its dissimilarity to the host (standardized)
        or its mean dissimilarity to the other objects (paper), painted on its
        pixels (0 on invalid objects). ``heatmap.values``: standardized,
        ``logistic((raw - c) / 0.05)`` with ``c = 1 - 1/sqrt(1 + 2.5^2)`` (an
        object 2.5 units from the host maps to 0.5); paper, ``raw`` itself.
        ``objects``: per-object :class:`~noisestat.types.ObjectDetail`;
        ``extras["dissimilarity"]``: the matrix ``DM`` (NaN rows for invalid
        objects); ``extras["labels"]``: the segmentation; ``extras["pair"]``,
        ``extras["chosen"]``: Algorithm 1's pair and pick (0-based object
        indices); ``extras["floor"]``: with the ``"sigma_floor"`` feature,
        ``{"mode": "mean" | "decorrelated", "channel_independence": float}``;
        ``extras["map_heatmaps"]``: ``{"adq": Heatmap}`` when the trace test
        of ``features="auto"`` ran (JPEG input), for the integrity score.
        ``params["curve_residual"]``, ``params["curve_spread"]``: in
        standardized mode with ``"sigma_floor"`` and at least
        :data:`CURVE_MIN_OBJECTS` valid objects, how far the objects' noise
        floors stray from one noise-vs-brightness trend
        (:func:`noise_curve_stats`).
        ``score``: the largest object value (NaN when fewer than two
        objects could be measured; the heatmap is then flagged not applicable).

    Raises
    ------
    ValueError
        Invalid parameter values or an image smaller than 16 pixels on a side.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Paper mode: ``S_i = (f^fg_i, f^bg_i)``, ``DM(i, j) = L_D(S_i, S_j) = 1 -
    cos(S_i, S_j)``; Algorithm 1 takes the pair of maximum dissimilarity and
    reports the member with the larger summed dissimilarity to all objects
    (algorithms.md section 6). Cosine is scale-invariant, so an object whose
    features are all ``alpha`` times the host's is invisible in this form.

    Standardized mode: ``z_i = (log f^fg_i - log f_image) / (z_scale sqrt(d))``
    and ``S_i = (1, z_i)``. The leading 1 is the host direction: ``1 - cos(S_i,
    host) = 1 - 1 / sqrt(1 + |z_i|^2)`` grows with the object's distance from
    the host whatever its direction (noisier or cleaner). The ``"adq"``
    feature is one-sided (``z`` floored at 0): an object more clearly doubly
    compressed than the image as a whole is not suspicious. The default feature
    is the wavelet-domain noise floor (a low percentile of the 8x8 tile RMS of
    the finest diagonal db4 coefficients of the colour channels, Donoho's
    HH1 noise measure taken per tile), which texture cannot lower.

    References
    ----------
    .. [1] G. Chen, F. Zhu and P. A. Heng, "An efficient statistical method for
       image noise level estimation", ICCV 2015. DOI 10.1109/ICCV.2015.62

    Examples
    --------
    >>> from noisestat.synth import demo_splice
    >>> from noisestat.localizers.objects import objects_localizer
    >>> loc = objects_localizer(demo_splice().image)
    >>> loc.mask.shape
    (400, 600)
    """
    params, feats = _checked_params(mode=mode, segmenter=segmenter, n_objects=n_objects, features=features,
                                    select=select, z_scale=z_scale, reference=reference,
                                    brightness_correction=brightness_correction, min_pixels=min_pixels,
                                    floor_mode=floor_mode)
    specs = _parse_feature_maps(feature_maps)
    t0 = time.perf_counter()
    img = as_image(image, min_size=16)
    adq_hm = None
    if features == "auto" and params["mode"] == "standardized" and img.info.is_jpeg:
        # independent steps: the trace test and the segmentation may overlap (run_tasks)
        (feats, adq_hm), (seg, seg_info) = run_tasks([
            lambda: _auto_adq(img, feats, params),
            lambda: _segment(img, params["segmenter"], params["n_objects"])])
    else:
        seg, seg_info = _segment(img, params["segmenter"], params["n_objects"])
    if seg_info:
        params["segmentation"] = seg_info
    maps: dict[str, np.ndarray] = {}
    if specs:
        params["feature_maps"] = ",".join(specs)
        maps, params["feature_providers"] = _feature_maps(img, specs)
        feats = feats + tuple(k for k in maps if k not in feats)
    t1 = time.perf_counter()
    objs = instance_objects(seg.instances, min_pixels=params["min_pixels"]) if seg_info and not seg_info.get(
        "fallback") else None
    if objs is None:
        f = object_features(img, seg, features=feats, min_pixels=params["min_pixels"],
                            floor_mode=params["floor_mode"], adq=adq_hm, maps=maps)
    else:
        f = layered_features(objs, lambda s: object_features(
            img, s, features=feats, min_pixels=params["min_pixels"], floor_mode=params["floor_mode"], adq=adq_hm,
            maps=maps))
        seg = objs.display
    t2 = time.perf_counter()
    sc = _score_objects(f, feats, mode=params["mode"], z_scale=params["z_scale"],
                        reference=params["reference"], brightness_correction=params["brightness_correction"])
    sel = _select_objects(sc, mode=params["mode"], select=params["select"])
    if params["mode"] == "standardized" and "sigma_floor" in feats:
        params.update(noise_curve_stats(f, sc.valid))
    t3 = time.perf_counter()
    timings = {"segment": t1 - t0, "features": t2 - t1, "localize": t3 - t2, "total": t3 - t0}
    return _localization(seg, f, feats, sc, sel, params, timings, objs, adq_hm)


def _parse_feature_maps(feature_maps: Any) -> tuple[str, ...]:
    """``feature_maps`` (comma-separated string or list of specs) as a tuple of specs."""
    if isinstance(feature_maps, str):
        specs = [x.strip() for x in feature_maps.split(",") if x.strip()]
    elif isinstance(feature_maps, (list, tuple)) and all(isinstance(x, str) for x in feature_maps):
        specs = [x.strip() for x in feature_maps if x.strip()]
    else:
        raise TypeError(f"feature_maps must be a comma-separated string of 'scheme:PATH' specs or a list of "
                        f"them, got {feature_maps!r}")
    for x in specs:
        if ":" not in x:
            raise ValueError(f"feature_maps: {x!r} is not 'scheme:argument'; use e.g. 'onnx:model.onnx'")
    return tuple(dict.fromkeys(specs))


def _feature_maps(img: LoadedImage, specs: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-pixel energy (mean over channels of the squared map) and provider info, by feature name."""
    maps: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for spec in specs:
        prov = get_feature_map(spec)
        base = f"{spec.partition(':')[0]}_{prov.name}"
        name, k = base, 2
        while name in maps or name in FEATURES:
            name, k = f"{base}_{k}", k + 1
        fm = np.asarray(prov(img), dtype=np.float32)
        if fm.ndim != 3 or fm.shape[:2] != img.shape:
            raise ValueError(f"feature_maps: {spec!r} returned shape {fm.shape}; expected (H, W, K) = "
                             f"{img.shape} x K")
        maps[name] = np.mean(np.square(fm, dtype=np.float64), axis=2)
        info[name] = {"spec": spec, **dict(prov.info)}
    return maps, info


def _checked_params(
    *, mode: Any, segmenter: Any, n_objects: Any, features: Any, select: Any, z_scale: Any, reference: Any,
    brightness_correction: Any, min_pixels: Any, floor_mode: Any,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Validated parameters of :func:`objects_localizer` (its ``params``) and the feature names."""
    mode = check_choice(mode, "mode", ("standardized", "paper"))
    select = check_choice(select, "select", ("auto", "top"))
    reference = check_choice(reference, "reference", ("image", "objects"))
    n_objects = check_int(n_objects, "n_objects", minimum=2, maximum=1000)
    min_pixels = check_int(min_pixels, "min_pixels", minimum=16)
    floor_mode = check_choice(floor_mode, "floor_mode", FLOOR_MODES)
    z_scale = check_float(z_scale, "z_scale", minimum=0.0, exclusive_min=True)
    if not isinstance(brightness_correction, (bool, np.bool_)):
        raise TypeError(f"brightness_correction must be True or False, got {brightness_correction!r}")
    if not isinstance(segmenter, str):
        raise TypeError(f"segmenter must be a string, got {segmenter!r}")
    if isinstance(features, str) and features == "auto":
        features = "sigma_floor" if mode == "standardized" else "sigma_p,sigma_r"
    feats = _parse_features(features)
    params = dict(mode=mode, segmenter=segmenter, n_objects=n_objects, features=",".join(feats),
                  select=select, z_scale=z_scale, reference=reference,
                  brightness_correction=bool(brightness_correction), min_pixels=min_pixels,
                  floor_mode=floor_mode)
    return params, feats


def _auto_adq(
    img: LoadedImage, feats: tuple[str, ...], params: dict[str, Any]
) -> tuple[tuple[str, ...], Heatmap]:
    """``features="auto"`` on a JPEG input: ``("adq",)`` if it shows a double-compression trace, else ``feats``.

    The map applies to every JPEG; the image-level trace statistic decides.
    ``params`` updated: ``"trace_found"`` (whether it did: the evidence gate of
    the calibrated decisions, :data:`noisestat.decisions.integrity.METHOD_GATES`)
    and ``"features"``.
    """
    from ..jpeg.adq import adq_map

    adq_hm = adq_map(img)
    params["trace_found"] = bool(adq_hm.applicable and adq_hm.params.get("trace_found", False))
    if params["trace_found"]:
        # a double-compression trace: objects are compared on it instead
        params["features"] = "adq"
        return ("adq",), adq_hm
    return feats, adq_hm


@dataclasses.dataclass(frozen=True)
class _Scores:
    """Per-object scores of the object localizer (n objects, d features)."""

    fg: np.ndarray  # (n, d) foreground features
    bg: np.ndarray  # (n, d) background features
    valid: np.ndarray  # (n,) bool: measured, compared
    raw: np.ndarray  # (n,) dissimilarity (0 on invalid objects)
    values: np.ndarray  # (n,) heatmap values (0 on invalid objects)
    dissimilarity: np.ndarray  # (n, n) DM, NaN rows for invalid objects
    pair: tuple[int, int] | None  # Algorithm 1's pair
    chosen: int | None  # the most dissimilar object; None: nothing to compare
    score: float  # image-level score (NaN when nothing was compared)
    note: str


def _signatures(
    f: dict[str, np.ndarray], feats: tuple[str, ...], fg: np.ndarray, bg: np.ndarray, whole: np.ndarray,
    idx: np.ndarray, *, mode: str, z_scale: float, reference: str, brightness_correction: bool,
) -> np.ndarray:
    """Feature vectors ``S_i`` of the objects ``idx``: raw (paper) or anchored standardized (see Notes)."""
    if mode == "paper":
        return np.hstack([fg[idx], bg[idx]])
    x = np.log(fg[idx])
    if brightness_correction:
        x = _brightness_corrected(x, f["brightness"][idx])
    if reference == "image":
        ref = np.log(whole)
    else:
        wts = f["area"][idx]
        ref = np.array([_weighted_median(x[:, k], wts) for k in range(x.shape[1])])
    z = (x - ref) / (z_scale * np.sqrt(x.shape[1]))
    if "adq" in feats:  # one-sided: only a higher single-compression probability is suspicious
        j = feats.index("adq")
        z[:, j] = np.maximum(z[:, j], 0.0)
    return np.hstack([np.ones((idx.size, 1)), z])


def _object_values(dm: np.ndarray, s: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw dissimilarity and heatmap value of the compared objects (rows of ``dm`` and ``s``)."""
    if mode == "paper":
        raw = dm.sum(axis=1) / (s.shape[0] - 1)
        return raw, np.clip(raw, 0.0, 1.0)
    host = np.zeros((1, s.shape[1]))
    host[0, 0] = 1.0
    raw = cosine_dissimilarity(np.vstack([host, s]))[0, 1:]
    t = np.clip((raw - VALUE_CENTER) / VALUE_SCALE, -60.0, 60.0)
    return raw, 1.0 / (1.0 + np.exp(-t))


def _score_objects(
    f: dict[str, np.ndarray], feats: tuple[str, ...], *, mode: str, z_scale: float, reference: str,
    brightness_correction: bool,
) -> _Scores:
    """Dissimilarity of every object, its heatmap value and the image-level score."""
    fg = np.stack([f[f"{k}_fg"] for k in feats], axis=1)
    bg = np.stack([f[f"{k}_bg"] for k in feats], axis=1)
    whole = np.array([f[f"{k}_all"][0] for k in feats])
    n = fg.shape[0]
    valid = np.all(np.isfinite(fg) & (fg > 0), axis=1)
    if mode == "paper":
        valid &= np.all(np.isfinite(bg) & (bg >= 0), axis=1)
    idx = np.flatnonzero(valid)
    dm_full = np.full((n, n), np.nan)
    raw, values = np.zeros(n), np.zeros(n)
    if not (idx.size >= 2 and (mode == "paper" or np.all(np.isfinite(whole) & (whole > 0)))):
        note = f"only {idx.size} object(s) with enough usable pixels for a noise estimate; nothing to compare"
        return _Scores(fg, bg, valid, raw, values, dm_full, None, None, float("nan"), note)
    s = _signatures(f, feats, fg, bg, whole, idx, mode=mode, z_scale=z_scale, reference=reference,
                    brightness_correction=brightness_correction)
    dm = cosine_dissimilarity(s)
    dm_full[np.ix_(idx, idx)] = dm
    k, (a, b), _ = algorithm1(dm)
    raw[idx], values[idx] = _object_values(dm, s, mode)
    chosen = int(idx[k]) if mode == "paper" else int(idx[int(np.argmax(raw[idx]))])
    return _Scores(fg, bg, valid, raw, values, dm_full, (int(idx[a]), int(idx[b])), chosen,
                   float(values[valid].max()), "")


def _select_objects(sc: _Scores, *, mode: str, select: str) -> np.ndarray:
    """Flagged objects, (n,) bool: the chosen one (paper, ``"top"``) or every value >= 0.5 (``"auto"``)."""
    sel = np.zeros(sc.valid.shape[0], bool)
    if sc.chosen is None:
        return sel
    if mode == "paper" or select == "top":
        sel[sc.chosen] = True
        return sel
    return sc.valid & (sc.values >= 0.5)


def _localization(
    seg: Segmentation, f: dict[str, np.ndarray], feats: tuple[str, ...], sc: _Scores, sel: np.ndarray,
    params: dict[str, Any], timings: dict[str, float], objs: InstanceObjects | None = None,
    adq_hm: Heatmap | None = None,
) -> Localization:
    """The :class:`~noisestat.types.Localization` of :func:`objects_localizer`: heatmap, mask, details.

    With instance objects (``objs``), a pixel covered by several objects gets
    the largest of their values, and the mask is the union of the selected
    objects' masks. ``adq_hm``, the ``adq`` map computed for the trace test,
    is kept as ``extras["map_heatmaps"]["adq"]`` (the integrity score reads it,
    see :data:`noisestat.decisions.integrity.STACKED`).
    """
    details = tuple(
        ObjectDetail(
            label=i + 1,
            bbox=tuple(int(v) for v in seg.boxes[i]),
            area=int(f["area"][i]),
            features={**{f"{k}_fg": float(sc.fg[i, j]) for j, k in enumerate(feats)},
                      **{f"{k}_bg": float(sc.bg[i, j]) for j, k in enumerate(feats)},
                      "brightness": float(f["brightness"][i])},
            score=float(sc.values[i]),
            selected=bool(sel[i]),
            valid=bool(sc.valid[i]),
            note=_object_note(i, sc, objs),
        )
        for i in range(seg.n_objects)
    )
    units = "mean cosine dissimilarity" if params["mode"] == "paper" else "cosine dissimilarity to the host"
    if objs is None:
        values = paint_labels(np.r_[0.0, sc.values].astype(np.float32), seg.labels)
        raw = paint_labels(np.r_[0.0, sc.raw].astype(np.float32), seg.labels)
        mask = paint_labels(np.r_[False, sel], seg.labels)
    else:
        values, raw, mask = _paint_overlapping(objs, sc, sel)
    hm = Heatmap(values=values, raw=raw, method="objects", params=params,
                 units=units, timings=timings, applicable=sc.chosen is not None, note=sc.note)
    floor = ({"floor": {"mode": "decorrelated" if f["floor_decorrelated"][0] else "mean",
                        "channel_independence": float(f["channel_independence"][0])}}
             if "sigma_floor" in feats else {})
    inst = ({"instances": {"masks": objs.masks, "boxes": objs.boxes, "background_boxes": objs.bg_boxes,
                           "scores": seg.instances.scores if seg.instances is not None else None,
                           "has_rest": objs.has_rest}} if objs is not None else {})
    return Localization(
        heatmap=hm, mask=mask, score=sc.score, method="objects", params=params,
        objects=details,
        extras={"dissimilarity": sc.dissimilarity, "labels": seg.labels, "pair": sc.pair, "chosen": sc.chosen,
                **floor, **inst, **({"map_heatmaps": {"adq": adq_hm}} if adq_hm is not None else {})},
        timings=dict(timings),
    )


def _object_note(i: int, sc: _Scores, objs: InstanceObjects | None) -> str:
    notes = []
    if objs is not None:
        n_inst = objs.masks.shape[0] - int(objs.has_rest)
        if i >= n_inst:
            notes.append("rest of the image")
        if objs.small[i]:
            notes.append(f"mask of {int(objs.masks[i].sum())} pixels is below min_pixels")
        if objs.bg_whole_image[i]:
            notes.append("background: rest of the image (box remainder below min_pixels)")
    if not sc.valid[i] and not (objs is not None and objs.small[i]):
        notes.append("too few usable pixels for a noise estimate")
    return "; ".join(notes)


def _paint_overlapping(objs: InstanceObjects, sc: _Scores, sel: np.ndarray) -> tuple[np.ndarray, ...]:
    """Heatmap values / raw (largest over the objects covering a pixel) and mask (union of selected)."""
    shape = objs.masks.shape[1:]
    values = np.zeros(shape, np.float32)
    raw = np.zeros(shape, np.float32)
    mask = np.zeros(shape, bool)
    for i, m in enumerate(objs.masks):
        np.maximum(values, np.float32(sc.values[i]), out=values, where=m)
        np.maximum(raw, np.float32(sc.raw[i]), out=raw, where=m)
        if sel[i]:
            mask |= m
    return values, raw, mask
