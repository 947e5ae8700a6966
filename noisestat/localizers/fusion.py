"""Fusion localizer: object-level noise features + dense maps, combined by a small logistic model.

The image is segmented and scored by the object-level localizer
(:func:`noisestat.localizers.objects.objects_localizer`); a fixed list of
dense maps is computed on the same image. For every object, each map's
robust z-score of its transformed ``raw`` (``log``, ``logit`` or as is:
:data:`FUSED_MAPS`) is pooled over the object's pixels; these pooled values and the object localizer's own per-object features form one
feature vector per object, and a logistic model turns it into the
probability that the object is spliced.

The model's coefficients ship with the package (``fusion_model.json``). They
were fitted by ``benchmarks/fit_fusion.py`` on synthetic splices only
(:func:`noisestat.synth.make_splice` over the bundled scikit-image sample
images, with the robustness protocols' range of noise, blur, JPEG, resizing
and gamma, and single / aligned / non-aligned double-JPEG splices written as
JPEG files), never on an evaluation dataset; the file records how
(``provenance``). One model is fitted for every subset of the fitted maps, so
that a map that does not apply to an image (ELA or the JPEG maps on a
never-compressed input, ADQ without a double-compression trace) is left out and the model fitted without it is used: a missing map is never
imputed.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .._numba import run_tasks
from .._validate import check_int
from ..heatmap import robust_centre_scale
from ..io import as_image
from ..registry import get_method, register
from ..segment import paint_labels
from ..types import Heatmap, LoadedImage, Localization, ObjectDetail
from . import FUSED_MAPS, LINEAR, LOG
from ._fusion_kernels import label_counts, pool_robust_z, pool_z
from .objects import _feature_maps, _parse_feature_maps, objects_localizer

T = TypeVar("T")

__all__ = ["fusion_localizer", "load_model", "DEFAULT_MAPS", "FUSED_MAPS", "MODEL_FILE", "OBJECT_FEATURES",
           "MAP_STATS", "model_key", "map_transform"]

#: Transforms of maps that were evaluated for fusion but are not fused (any
#: other map: :data:`LOG`).
OTHER_TRANSFORMS: dict[str, tuple[str, float | None]] = {
    "blocking_grid": LINEAR, "grid_content": LINEAR, "cfa": LINEAR, "nadq": LINEAR,
}
#: Dense maps used by default (together about 3 s on a 3 MP double JPEG, the
#: object segmentation about 1.2 s more).
DEFAULT_MAPS = ",".join(FUSED_MAPS)
MODEL_FILE = "fusion_model.json"
MODEL_FORMAT = "noisestat-fusion-model/1"

#: Per-object features taken from the object-level localizer.
OBJECT_FEATURES = ("objects_score", "floor_rel", "floor_absrel")
#: Per-map statistics of ``z`` (the robust z of the transformed raw) over an object's pixels.
MAP_STATS = ("mean", "absmean", "hi", "lo", "p10", "p50", "absp50", "p90")
#: Each statistic also enters relative to the image's objects (minus their
#: area-weighted median) and as the absolute value of that difference.
REL_SUFFIXES = ("", "_rel", "_absrel")
#: Robust z-scores are clipped to +-Z_CLIP before pooling (one wild pixel
#: cannot dominate an object's mean).
Z_CLIP = 6.0
#: "hi"/"lo": fraction of the object's pixels with z above Z_TAIL / below -Z_TAIL.
Z_TAIL = 2.0
#: Percentiles are taken on a grid of Z_BIN in z (the lower value of the bin
#: where the cumulative count first reaches the fraction).
Z_BIN = 0.1


def model_key(maps: Sequence[str]) -> str:
    """Key of the model fitted with exactly these maps (sorted, comma-separated; "" = none)."""
    return ",".join(sorted(set(maps)))


def feature_names(maps: Sequence[str]) -> tuple[str, ...]:
    """Feature names, in model order, for a set of maps."""
    return OBJECT_FEATURES + tuple(
        f"{m}_{s}{r}" for m in sorted(set(maps)) for s in MAP_STATS for r in REL_SUFFIXES
    )


def _feature_group(name: str, maps: Sequence[str]) -> str:
    for m in maps:
        if name.startswith(m + "_"):
            return m
    return "objects"


def _wmedian(v: np.ndarray, w: np.ndarray) -> float:
    """Weighted median (lower) of ``v`` with weights ``w``."""
    o = np.argsort(v, kind="stable")
    c = np.cumsum(w[o])
    return float(v[o][np.searchsorted(c, 0.5 * c[-1])])


@functools.lru_cache(maxsize=1)
def load_model() -> dict[str, Any]:
    """The fitted fusion model (package data ``noisestat/localizers/fusion_model.json``).

    Returns
    -------
    dict
        ``"format"``, ``"maps"`` (the maps it was fitted with), ``"models"``
        (one entry per subset of those maps, keyed by :func:`model_key`, each
        with ``features``, ``mean``, ``scale``, ``coef``, ``intercept``) and
        ``"provenance"``.

    Raises
    ------
    RuntimeError
        The file is missing or not a fusion model; rerun ``benchmarks/fit_fusion.py``.
    """
    from importlib import resources

    try:
        text = resources.files("noisestat.localizers").joinpath(MODEL_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise RuntimeError(
            f"the fusion model {MODEL_FILE} is missing from noisestat.localizers ({exc}); reinstall "
            f"noisestat or regenerate it with `python benchmarks/fit_fusion.py`"
        ) from None
    model = json.loads(text)
    if model.get("format") != MODEL_FORMAT:
        raise RuntimeError(
            f"{MODEL_FILE} has format {model.get('format')!r}, expected {MODEL_FORMAT!r}; regenerate it "
            f"with `python benchmarks/fit_fusion.py`"
        )
    return model


def _parse_maps(maps: Any, allowed: Sequence[str] | None) -> tuple[str, ...]:
    if isinstance(maps, str):
        names = [m.strip() for m in maps.split(",") if m.strip()]
    elif isinstance(maps, (list, tuple)) and all(isinstance(m, str) for m in maps):
        names = [m.strip() for m in maps]
    else:
        raise TypeError(f"maps must be a comma-separated string of map names, got {maps!r}")
    out: list[str] = []
    for m in names:
        spec = get_method(m)  # ValueError listing the registered names
        if spec.kind != "map":
            raise ValueError(f"maps: {m!r} is a {spec.kind}, not a dense map; use e.g. {DEFAULT_MAPS!r}")
        if allowed is not None and m not in allowed:
            raise ValueError(
                f"maps: the fusion model was not fitted with {m!r}; choose from {', '.join(allowed)} "
                f"(or refit with benchmarks/fit_fusion.py)"
            )
        if m not in out:
            out.append(m)
    return tuple(out)


@dataclass
class _Features:
    """Everything the fusion model needs, computed once per image (shared with the fitting script)."""

    objects: Localization
    labels: np.ndarray
    maps_used: tuple[str, ...]
    names: tuple[str, ...]
    x: np.ndarray  # (n_objects, len(names)), float64; NaN rows for invalid objects
    valid: np.ndarray  # (n_objects,), bool
    not_applicable: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    heatmaps: dict[str, Heatmap] = field(default_factory=dict)  # map -> its heatmap (applicable maps)

    @property
    def map_stats(self) -> dict[str, dict[str, Any]]:
        """Map -> its scalar params (its global statistics)."""
        return {m: _scalar_params(hm.params) for m, hm in self.heatmaps.items()}


def _timed(func: Callable[[], T]) -> Callable[[], tuple[T, float]]:
    """``func`` returning ``(result, wall seconds)``."""
    def run() -> tuple[T, float]:
        t0 = time.perf_counter()
        return func(), time.perf_counter() - t0
    return run


def _object_features(
    img: LoadedImage,
    *,
    maps: Sequence[str],
    segmenter: str = "slic_merge",
    n_objects: int = 32,
    min_pixels: int = 256,
) -> _Features:
    """Per-object feature matrix of the fusion model (the one code path for fitting and inference).

    Objects (the object localizer in standardized mode on the residual noise
    floor): ``objects_score`` (its per-object value), ``floor_rel`` (log noise
    floor of the object minus the area-weighted median over valid objects)
    and ``|floor_rel|``. Maps: for each applicable map,
    ``z = clip(robust_z(t(raw)), -6, 6)`` over the whole image (``t``: the map's
    :func:`map_transform`), and
    per object the statistics :data:`MAP_STATS` of ``z`` over its pixels: mean,
    ``|mean|``, fractions with ``z > 2`` and ``z < -2``, the 10th/50th/90th
    percentiles (on a 0.1 grid) and ``|p50|``. Each statistic enters as is,
    relative to the image's valid objects (minus their area-weighted median:
    how the object differs from the rest of this image) and as the absolute
    value of that difference. A map that reports ``applicable=False`` is left
    out (recorded in ``not_applicable``), never imputed.
    """
    # independent steps that may overlap (run_tasks): the objects, then the maps, the JPEG ones (the
    # slower) first, so that the threads finish together; the results are used in the order of ``maps``
    order = sorted(maps, key=lambda m: not get_method(m).module.startswith("noisestat.jpeg."))
    eps = np.float32(1e-3 * img.info.white_level / 255.0)

    def run_map(m: str) -> tuple[Heatmap, _Centred | None]:
        hm = get_method(m).func(img)
        return hm, (_map_z(m, hm.raw, eps) if hm.applicable else None)

    steps = run_tasks([
        _timed(lambda: objects_localizer(img, mode="standardized", features="sigma_floor", segmenter=segmenter,
                                         n_objects=n_objects, min_pixels=min_pixels)),
        *(_timed(functools.partial(run_map, m)) for m in order)])
    loc = steps[0][0]
    timings = {"objects": steps[0][1]}
    done = dict(zip(order, steps[1:]))
    labels = np.asarray(loc.extras["labels"])
    objs = loc.objects or ()
    n = len(objs)
    valid = np.array([o.valid for o in objs], bool) & bool(loc.applicable)
    fg = np.array([o.features.get("sigma_floor_fg", np.nan) for o in objs], np.float64)
    score = np.array([o.score for o in objs], np.float64)
    valid &= np.isfinite(fg) & (fg > 0)
    pool = _Pooling(labels.ravel(), n, valid)
    rel = pool.relative(np.log(np.where(valid, fg, 1.0)))
    cols: dict[str, np.ndarray] = {"objects_score": score, "floor_rel": rel, "floor_absrel": np.abs(rel)}
    used: list[str] = []
    not_applicable: dict[str, str] = {}
    heatmaps: dict[str, Heatmap] = {}
    for m in maps:
        (hm, z), secs = done[m]
        if hm.applicable:
            used.append(m)
            heatmaps[m] = hm
        else:
            not_applicable[m] = hm.note
        timings[m] = secs
    # each map's pooling over the objects is independent (GIL-free kernels): concurrent, in map order
    pooled = run_tasks([functools.partial(_z_columns, m, done[m][0][1], pool) for m in used])
    for c in pooled:
        cols.update(c)
    names = feature_names(used)
    x = np.stack([cols[k] for k in names], axis=1) if n else np.zeros((0, len(names)))
    x[~valid] = np.nan
    return _Features(loc, labels, tuple(sorted(used)), names, x, valid, not_applicable, timings, heatmaps)


def _scalar_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers and booleans of a map's ``params`` (its global statistics, e.g. ``adq``'s ``trace_found``)."""
    return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v)) for k, v in params.items()
            if isinstance(v, (bool, int, float, np.bool_, np.number))}


class _Pooling:
    """Per-object pooling of pixel values over a label image (objects 1..n), shared by every map."""

    def __init__(self, lab: np.ndarray, n: int, valid: np.ndarray) -> None:
        self.lab, self.n, self.valid = np.ascontiguousarray(lab, dtype=np.int32), n, valid
        self.counts = label_counts(self.lab, n)[1:].astype(np.float64)
        self.denom = np.maximum(self.counts, 1.0)

    def relative(self, v: np.ndarray) -> np.ndarray:
        """``v`` minus its pixel-count-weighted median over the valid objects (0 if none)."""
        ref = _wmedian(v[self.valid], self.counts[self.valid]) if self.valid.any() else 0.0
        return v - ref


@dataclass(frozen=True)
class _Centred:
    """A map's transformed values (flat, float32) and the centre and spread of their robust z.

    ``cs`` None: no finite value, the robust z is 0 everywhere (as :func:`noisestat.heatmap.robust_z`).
    """

    x: np.ndarray
    cs: tuple[float, float] | None


def _pooled(z: _Centred, pool: _Pooling) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-object sums of the clipped robust z of ``z``: total, count above / below +-Z_TAIL, Z_BIN histogram."""
    nbins = int(round(2 * Z_CLIP / Z_BIN)) + 1
    args = (pool.lab, pool.n, np.float32(Z_CLIP), np.float32(Z_TAIL), np.float32(Z_BIN), nbins)
    if z.cs is None:
        return pool_z(np.zeros_like(z.x), *args)
    return pool_robust_z(z.x, np.float32(z.cs[0]), np.float32(z.cs[1]), *args)


def _map_stats(z: _Centred, pool: _Pooling) -> dict[str, np.ndarray]:
    """The statistics :data:`MAP_STATS` of the robust z of ``z``, clipped to +-Z_CLIP, over each object.

    One pass (:func:`~noisestat.localizers._fusion_kernels.pool_robust_z`)
    computes the robust z ``(x - median) / spread`` in float32 (as
    :func:`noisestat.heatmap.robust_z`), clips it and gives the same sums as
    ``np.bincount`` with weights ``z``, ``z > Z_TAIL``, ``z < -Z_TAIL`` and the
    per-object histogram of the Z_BIN bins ``rint((z + Z_CLIP) / Z_BIN)`` (float32).
    """
    st: dict[str, np.ndarray] = {}
    total, hi, lo, hist = _pooled(z, pool)
    st["mean"] = total[1:] / pool.denom
    st["absmean"] = np.abs(st["mean"])
    st["hi"] = hi[1:].astype(np.float64) / pool.denom
    st["lo"] = lo[1:].astype(np.float64) / pool.denom
    cum = np.cumsum(hist[1:], axis=1)
    for p in (10, 50, 90):
        first = np.argmax(cum >= (p / 100.0) * pool.counts[:, None], axis=1)
        st[f"p{p}"] = first * Z_BIN - Z_CLIP
    st["absp50"] = np.abs(st["p50"])
    return st


def map_transform(m: str) -> tuple[str, float | None]:
    """The transform of map ``m``'s raw values before the robust z (see :data:`FUSED_MAPS`)."""
    return FUSED_MAPS.get(m) or OTHER_TRANSFORMS.get(m) or LOG


def _transformed(m: str, raw: np.ndarray, eps: np.float32) -> np.ndarray:
    """``raw`` of map ``m`` on the scale of its :func:`map_transform`."""
    kind, floor = map_transform(m)
    if kind == "linear":
        return np.asarray(raw, np.float32)
    if kind == "logit":
        p = np.clip(raw, np.float32(floor), np.float32(1.0 - floor))
        return np.log(p / (np.float32(1.0) - p))
    return np.log(np.maximum(raw, eps if floor is None else np.float32(floor)))


def _map_z(m: str, raw: np.ndarray, eps: np.float32) -> _Centred:
    """The robust z of map ``m``'s transformed raw map: its flat values with their median and spread.

    Needs no objects: it runs in the map's task (the z itself is computed while pooling).
    """
    x = np.ascontiguousarray(_transformed(m, raw, eps), dtype=np.float32).reshape(-1)
    return _Centred(x, robust_centre_scale(x))


def _map_columns(m: str, raw: np.ndarray, eps: np.float32, pool: _Pooling) -> dict[str, np.ndarray]:
    """Feature columns of map ``m`` (its raw map ``raw``): each statistic as is, relative, |relative|."""
    return _z_columns(m, _map_z(m, raw, eps), pool)


def _z_columns(m: str, z: _Centred, pool: _Pooling) -> dict[str, np.ndarray]:
    """:func:`_map_columns` from the map's robust z (:func:`_map_z`)."""
    st = _map_stats(z, pool)  # clipped to +-Z_CLIP there
    cols: dict[str, np.ndarray] = {}
    for s in MAP_STATS:
        r = pool.relative(st[s])
        cols[f"{m}_{s}"], cols[f"{m}_{s}_rel"], cols[f"{m}_{s}_absrel"] = st[s], r, np.abs(r)
    return cols


def _predict(model: dict[str, Any], feats: _Features) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Logit and probability per object, and each group's additive contribution to the logit."""
    if list(model["features"]) != list(feats.names):  # pragma: no cover - guarded by model_key
        raise RuntimeError("fusion model features do not match the computed features; refit the model")
    mean = np.asarray(model["mean"], np.float64)
    scale = np.asarray(model["scale"], np.float64)
    coef = np.asarray(model["coef"], np.float64)
    zs = (feats.x - mean) / scale
    terms = zs * coef
    logit = float(model["intercept"]) + terms.sum(axis=1)
    contrib: dict[str, np.ndarray] = {}
    for j, name in enumerate(feats.names):
        g = _feature_group(name, feats.maps_used)
        contrib[g] = contrib.get(g, 0.0) + terms[:, j]
    prob = 1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))
    return logit, prob, contrib


@register("fusion", kind="localizer")
def fusion_localizer(
    image: Any,
    *,
    maps: str = DEFAULT_MAPS,
    segmenter: str = "slic_merge",
    n_objects: int = 32,
    min_pixels: int = 256,
    feature_maps: str = "",
) -> Localization:
    """Fuse object-level noise features with dense maps by a logistic model fitted on synthetic splices.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
    maps : str, default "median_residual,wavelet_mad,ela,adq,jpeg_ghost,dct_hist"
        Comma-separated registered dense maps; each must be one the model was
        fitted with (``load_model()["maps"]``, :data:`FUSED_MAPS`: the noise
        maps, ELA and the JPEG maps ADQ, JPEG ghost and DCT-histogram
        periodicity; ``kurtosis`` and ``blocking_grid`` are slower and added
        little on the synthetic splices, so they are not fitted). Maps that do
        not apply to the image (ELA and the JPEG maps on a never-compressed
        input, ADQ / dct_hist without an aligned double-compression trace) are
        left out and the model fitted without them is used.
    segmenter : str, default "slic_merge"
        Segmentation backend of the object localizer (the model was fitted with
        the default).
    n_objects : int, default 32
        Target number of objects (the model was fitted with the default).
    min_pixels : int, default 256
        Objects with fewer usable pixels are invalid (value 0, never selected).
    feature_maps : str or list of str, default ""
        Extra feature maps (``"onnx:PATH"`` specs, see the object
        localizer's ``feature_maps``). Each map ``F`` (H, W, K) enters as the
        dense map ``log(max(sqrt(mean_k F_k^2), 1e-6))``, pooled per object like
        the fused maps (:data:`MAP_STATS` of its clipped robust z, as is,
        relative and absolute relative), as features ``"<scheme>_<name>_<stat>"``
        of the objects' details and ``extras["feature_map_columns"]``. The
        packaged model was fitted without them, so they do not change the
        probability (refit with ``benchmarks/fit_fusion.py`` to use them).

    Returns
    -------
    Localization
        ``heatmap.values``: the model's probability that the object is spliced,
        painted on the object's pixels (0 on invalid objects); ``heatmap.raw``:
        the model's log-odds; ``heatmap.params["map_stats"]``: per map used,
        its scalar params (its global statistics, e.g. ``adq``'s
        ``trace_found``). ``mask``: objects with probability >= 0.5.
        ``score``: the largest object probability (NaN when the object
        localizer found fewer than two comparable objects; the heatmap is then
        not applicable). ``objects``: per-object features, probability and
        selection. ``extras``: ``"labels"``, ``"dissimilarity"`` (from the
        object localizer), ``"objects_values"`` (its per-object values),
        ``"feature_names"``, ``"features"`` (n_objects x n_features),
        ``"contributions"`` (per group - ``"objects"`` and each map - its
        additive share of every object's log-odds), ``"intercept"``,
        ``"maps_used"``, ``"maps_not_applicable"`` (name -> note),
        ``"model"`` (the model key) and ``"map_heatmaps"`` (name -> the
        :class:`Heatmap` of each map used: the integrity score of the
        calibrated result reads each one's own score, see
        :data:`noisestat.decisions.integrity.STACKED`; they stay alive as long
        as the result, 8 bytes per pixel per map).

    Raises
    ------
    ValueError
        Unknown or unfitted map names, invalid parameters.
    TypeError
        Parameters of the wrong type.
    RuntimeError
        The packaged model file is missing.

    Notes
    -----
    For object ``i`` with feature vector ``x_i`` (see
    :data:`OBJECT_FEATURES` and :data:`MAP_STATS`; map statistics pool
    ``z = clip(robust_z(t(raw)), -6, 6)`` over the object's pixels, ``t`` the
    map's :func:`map_transform`, as is and
    relative to the image's other objects),
    ``p_i = 1 / (1 + exp(-(b + sum_k w_k (x_ik - mu_k) / s_k)))`` with the
    standardisation ``mu, s`` and the coefficients ``w, b`` of the packaged
    model. The mapping is fixed, so 0.5 means the same on every image.
    The model was fitted by ``benchmarks/fit_fusion.py`` on synthetic splices
    only; ``load_model()["provenance"]`` records seed, sample count and
    versions.

    References
    ----------
    .. [1] S. Lyu, X. Pan, X. Zhang, "Exposing region splicing forgeries with
       blind local noise estimation", IJCV 110(2):202-221, 2014.
       DOI 10.1007/s11263-013-0688-y

    Examples
    --------
    >>> from noisestat.synth import demo_splice
    >>> from noisestat.localizers.fusion import fusion_localizer
    >>> loc = fusion_localizer(demo_splice().image)
    >>> loc.mask.shape, 0.0 <= loc.score <= 1.0
    ((400, 600), True)
    """
    model = load_model()
    names = _parse_maps(maps, tuple(model["maps"]))
    n_objects = check_int(n_objects, "n_objects", minimum=2, maximum=1000)
    min_pixels = check_int(min_pixels, "min_pixels", minimum=16)
    if not isinstance(segmenter, str):
        raise TypeError(f"segmenter must be a string, got {segmenter!r}")
    params = dict(maps=",".join(names), segmenter=segmenter, n_objects=n_objects, min_pixels=min_pixels)
    specs = _parse_feature_maps(feature_maps)
    t0 = time.perf_counter()
    img = as_image(image, min_size=16)
    feats = _object_features(img, maps=names, segmenter=segmenter, n_objects=n_objects, min_pixels=min_pixels)
    extra_cols: dict[str, np.ndarray] = {}
    if specs:
        params["feature_maps"] = ",".join(specs)
        extra_cols, params["feature_providers"] = _extra_map_columns(img, specs, feats)
    t1 = time.perf_counter()
    key = model_key(feats.maps_used)
    sub = model["models"].get(key)
    if sub is None:  # pragma: no cover - every subset of the fitted maps is in the file
        raise RuntimeError(f"fusion model has no entry for maps {key!r}; refit with benchmarks/fit_fusion.py")
    pred = _predict_objects(sub, feats)
    sel = feats.valid & (pred.prob >= 0.5)
    details = _fusion_details(feats, pred, sel, extra_cols)
    t2 = time.perf_counter()
    timings = {**feats.timings, "model": t2 - t1, "total": t2 - t0}
    labels = feats.labels
    hm = Heatmap(values=paint_labels(np.r_[0.0, pred.prob].astype(np.float32), labels),
                 raw=paint_labels(np.r_[0.0, pred.logit].astype(np.float32), labels), method="fusion",
                 params={**params, "map_stats": feats.map_stats},
                 units="log-odds of the fusion model (per object)", timings=timings,
                 applicable=pred.applicable, note=_fusion_note(feats))
    score = float(pred.prob[feats.valid].max()) if pred.applicable else float("nan")
    extras = _fusion_extras(feats, pred, sub, key)
    if extra_cols:
        extras["feature_map_columns"] = extra_cols
    return Localization(heatmap=hm, mask=paint_labels(np.r_[False, sel], labels), score=score, method="fusion",
                        params=params, objects=details, extras=extras, timings=timings)


def _extra_map_columns(
    img: LoadedImage, specs: tuple[str, ...], feats: _Features
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-object columns of the extra feature maps (see ``feature_maps``) and the providers' info."""
    energy, info = _feature_maps(img, specs)
    pool = _Pooling(feats.labels.ravel(), feats.x.shape[0], feats.valid)
    cols: dict[str, np.ndarray] = {}
    for name, e in energy.items():
        cols.update(_map_columns(name, np.sqrt(e).astype(np.float32), np.float32(1e-6), pool))
    return cols, info


@dataclass(frozen=True)
class _Prediction:
    """The model's output per object: 0 and no contributions on invalid objects or when not applicable."""

    logit: np.ndarray  # (n,)
    prob: np.ndarray  # (n,)
    contrib: dict[str, np.ndarray]  # group -> (n,) share of the logit
    applicable: bool  # the object localizer compared objects and at least one is valid


def _predict_objects(sub: dict[str, Any], feats: _Features) -> _Prediction:
    """:func:`_predict` on the valid objects of ``feats`` (zeros elsewhere)."""
    n = feats.x.shape[0]
    logit = np.zeros(n)
    prob = np.zeros(n)
    contrib: dict[str, np.ndarray] = {}
    applicable = bool(feats.objects.applicable) and bool(feats.valid.any())
    if applicable:
        lg, pr, contrib = _predict(sub, feats)
        logit[feats.valid] = lg[feats.valid]
        prob[feats.valid] = pr[feats.valid]
        contrib = {g: np.where(feats.valid, c, 0.0) for g, c in contrib.items()}
    return _Prediction(logit, prob, contrib, applicable)


def _fusion_note(feats: _Features) -> str:
    """The object localizer's note and the maps left out."""
    note = feats.objects.heatmap.note
    if feats.not_applicable:
        note = "; ".join(filter(None, [note, "left out: " + ", ".join(feats.not_applicable)]))
    return note


def _fusion_details(
    feats: _Features, pred: _Prediction, sel: np.ndarray, extra: dict[str, np.ndarray] | None = None
) -> tuple[ObjectDetail, ...]:
    """Per-object details: the object localizer's geometry, the model's features and probability."""
    extra = extra or {}
    return tuple(
        ObjectDetail(
            label=o.label,
            bbox=o.bbox,
            area=o.area,
            features={**{k: float(feats.x[i, j]) for j, k in enumerate(feats.names)},
                      **{k: float(v[i]) for k, v in extra.items()}},
            score=float(pred.prob[i]),
            selected=bool(sel[i]),
            valid=bool(feats.valid[i]),
            note=o.note,
        )
        for i, o in enumerate(feats.objects.objects or ())
    )


def _fusion_extras(feats: _Features, pred: _Prediction, sub: dict[str, Any], key: str) -> dict[str, Any]:
    """``Localization.extras`` of :func:`fusion_localizer`."""
    return {
        "labels": feats.labels,
        "dissimilarity": feats.objects.extras.get("dissimilarity"),
        "objects_values": np.array([o.score for o in feats.objects.objects or ()]),
        "feature_names": feats.names,
        "features": feats.x,
        "contributions": pred.contrib,
        "intercept": float(sub["intercept"]),
        "maps_used": feats.maps_used,
        "maps_not_applicable": dict(feats.not_applicable),
        "model": key,
        "map_heatmaps": feats.heatmaps,
    }


def map_subsets(maps: Sequence[str]) -> list[tuple[str, ...]]:
    """Every subset (including the empty one) of ``maps``, sorted; one model is fitted per subset."""
    m = sorted(set(maps))
    return [c for r in range(len(m) + 1) for c in itertools.combinations(m, r)]
