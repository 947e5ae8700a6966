"""Image-level integrity features: pooled statistics of a heatmap weighted by its reliability.

:func:`image_features` turns a first-stage calibrated heatmap ``p`` (see
:mod:`noisestat.decisions.calibration`), its reliability map ``r`` and the
method's own global statistics into a fixed, named feature vector; the
integrity model (a logistic regression shipped as JSON coefficients) turns
that vector into the probability that the image is manipulated.

With weights :math:`w = r` (pixels where the method cannot be trusted count
little) the pooled statistics are

* ``mean``: :math:`\\operatorname{logit}(\\sum w p / \\sum w)`;
* ``median``: logit of the weighted median of ``p`` (the typical pixel: with
  ``top``, how far the most suspicious part stands out of the rest);
* ``top``: logit of the weighted mean of the top 5 % of ``p`` (a soft max
  that one stray pixel cannot set);
* ``q99``: logit of the weighted 99th percentile of ``p``;
* ``area``: weighted fraction of pixels with ``p >= 0.5``;
* ``spread``: weighted standard deviation of ``p``;
* the method's global statistics (:data:`METHOD_STATS`, e.g. the strength
  of a double-compression trace), read from the result's ``params``;
* for a stacked method (:data:`STACKED`: ``fusion``), the integrity score
  that each of its maps gets on its own (logit), so that e.g. a clear
  double-JPEG trace in ``adq`` counts at the image level as it does alone.

No feature is the JPEG quality or quantisation table, and the mean
reliability is not a feature on its own: it only weights the evidence (on
the fitting set, how much of an image is textured or clipped would
otherwise pass for evidence of a splice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..localizers import FUSED_MAPS

__all__ = ["image_features", "subsample_step", "method_stats", "numeric_params", "GENERIC_FEATURES", "METHOD_STATS",
           "METHOD_GATES", "PATH_GATES", "PIXEL_SPLITS", "pixel_split", "MAX_PIXELS", "logit", "TOP_FRACTION", "EPS", "STACKED", "stacked_feature"]

GENERIC_FEATURES = ("mean", "median", "top", "q99", "area", "spread")
#: share of the (weighted) pixels averaged by the ``top`` feature
TOP_FRACTION = 0.05
#: maps larger than this are pooled on a regular subsample (:func:`image_features`)
MAX_PIXELS = 262144
#: probabilities are clipped to [EPS, 1 - EPS] before a logit
EPS = 1e-4
#: numeric global statistics a method reports in ``params`` (key -> feature name), used as features
METHOD_STATS: dict[str, tuple[str, ...]] = {
    "adq": ("trace", "trace_gain", "trace_found"),
    "cfa": ("trace_strength",),
    "grid_content": ("grid_prominence",),
    "jpeg_ghost": ("fisher", "ghost_share"),
    "nadq": ("shift_evidence",),
    "objects": ("curve_residual", "curve_spread"),
}
#: a method's evidence gate: the statistic (a key of ``params``) that says whether its map carries
#: evidence at all (an aligned double-JPEG trace for ``adq``). When a method has one,
#: :func:`method_stats` returns it as ``gate`` (1 = open, 0 = closed or absent) and
#: :func:`image_features` adds every generic feature times the gate (``<name>_gated``): a linear
#: model can then weigh the map's statistics differently where the trace exists.
METHOD_GATES: dict[str, str] = {
    "adq": "trace_found",
}
#: a method's path statistic (a key of ``params``): whether its map was made of another statistic
#: on this image (``objects``: where its trace test finds a double-JPEG trace, the objects are
#: compared on the double-JPEG map instead of the noise floor). :func:`method_stats` returns it as
#: ``path`` (1 = the other statistic, 0 = the usual one or absent); the final pixel mapping is fitted
#: per path (see :data:`PIXEL_SPLITS`).
PATH_GATES: dict[str, str] = {
    "objects": "trace_found",
}
#: methods whose final pixel mapping is fitted in two parts, split by an integrity feature (1 or 0):
#: where the map is made of another statistic (``objects``: ``path``) or carries evidence only where
#: a trace exists (``adq``: ``gate``, a map of spurious fits without one). The images where the
#: feature is 1 get :attr:`noisestat.decisions.calibration.MethodCalibration.pixel_split`.
PIXEL_SPLITS: dict[str, str] = {
    "objects": "path",
    "adq": "gate",
}


def pixel_split(method: str, stats: Mapping[str, float]) -> bool:
    """Whether ``method``'s split feature (:data:`PIXEL_SPLITS`) is 1 in ``stats`` (False without one)."""
    name = PIXEL_SPLITS.get(method)
    return name is not None and stats.get(name, 0.0) == 1.0


#: stacked methods: a method whose result carries other methods' maps (``extras["map_heatmaps"]``)
#: gets, as further integrity features, each map's own integrity score (:func:`stacked_feature`:
#: ``sub_<map>`` = logit of the score that map's calibration gives it alone; NaN where the map does
#: not apply). Fitted on the maps' out-of-fold scores (:func:`noisestat.decisions.fit.fit_methods`).
STACKED: dict[str, tuple[str, ...]] = {
    "fusion": tuple(FUSED_MAPS),
    # objects computes the adq map on every JPEG (its double-compression trace test) and compares
    # objects on it where the trace exists: that map's own evidence counts at the image level too
    "objects": ("adq",),
}


def stacked_feature(method: str) -> str:
    """The integrity feature name of ``method``'s own score inside a stacked method: ``sub_<method>``."""
    return f"sub_{method}"


def logit(p: Any, eps: float = EPS) -> Any:
    """``log(p / (1 - p))`` of ``p`` clipped to ``[eps, 1 - eps]``."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(q / (1.0 - q))


def _top_order(v: np.ndarray, w: np.ndarray, share: float) -> tuple[np.ndarray, float]:
    """The top of ``np.argsort(v, kind="stable")`` holding at least ``share`` of the weight.

    Returns ``(order, below)``: ``order`` is the tail of the full stable
    ascending order (every element with ``v >= c`` for a cut ``c`` found by
    ``np.partition``; ties keep their index order, as in the full sort) and
    ``below`` the weight of the elements before it. Only the tail is sorted,
    so the cost is a partition plus a sort of a few percent of the pixels.
    """
    n = v.size
    need = share * float(w.sum())
    m = min(n, max(64, int(2 * share * n)))
    while m < n // 2:
        cut = np.partition(v, n - m)[n - m]
        idx = np.flatnonzero(v >= cut)
        top = float(w[idx].sum())
        if top >= need * (1.0 + 1e-9):
            return idx[np.argsort(v[idx], kind="stable")], float(w.sum()) - top
        m *= 4
    return np.argsort(v, kind="stable"), 0.0


def _cut(cw: np.ndarray, target: float, exact: bool) -> int | None:
    """``searchsorted(cw, target, "left")``; None when not ``exact`` and a sum lies within 1e-9 of target.

    The tail sums of :func:`_top_order` are rounded differently from the full
    cumulative sum; only a target that close to a partial sum (uniform
    weights) could then cut elsewhere, and those cases take the full sort.
    """
    k = int(np.searchsorted(cw, target, side="left"))
    tol = 1e-9 * abs(target)
    if not exact and any(0 <= j < cw.size and abs(cw[j] - target) <= tol for j in (k - 1, k)):
        return None
    return k


def _weighted_quantile(v: np.ndarray, w: np.ndarray, q: float) -> float:
    """The value where the cumulative weight (ascending ``v``) first reaches ``q`` of the total."""
    order, below = _top_order(v, w, min(1.0, 1.0 - q + 0.01))
    cw = below + np.cumsum(w[order])
    k = _cut(cw, q * cw[-1], below == 0.0)
    if k is None:
        order = np.argsort(v, kind="stable")
        cw = np.cumsum(w[order])
        k = int(np.searchsorted(cw, q * cw[-1], side="left"))
    return float(v[order[min(k, order.size - 1)]])


def _top_mean(v: np.ndarray, w: np.ndarray, frac: float) -> float:
    """Weighted mean of the largest ``v`` holding ``frac`` of the weight (ties: larger index first)."""
    order, below = _top_order(v, w, min(1.0, frac + 0.01))
    order = order[::-1]
    cw = np.cumsum(w[order])
    k = _cut(cw, frac * (cw[-1] + below), below == 0.0)
    if k is None:
        order = np.argsort(v, kind="stable")[::-1]
        cw = np.cumsum(w[order])
        k = int(np.searchsorted(cw, frac * cw[-1], side="left"))
    sel = order[:k + 1]
    return float(np.sum(v[sel] * w[sel]) / max(np.sum(w[sel]), 1e-12))


def subsample_step(size: int, max_pixels: int) -> int:
    """The grid step :func:`image_features` subsamples a map of ``size`` pixels with (1 when small)."""
    return max(1, int(np.ceil(np.sqrt(size / max_pixels))))


def numeric_params(params: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric (and boolean) entries of ``params``, nested dicts flattened as ``a.b``."""
    out: dict[str, float] = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            out.update({f"{k}.{kk}": vv for kk, vv in numeric_params(v).items()})
        elif isinstance(v, (bool, int, float, np.number)) and np.isfinite(float(v)):
            out[str(k)] = float(v)
    return out


def method_stats(method: str, params: Mapping[str, Any]) -> dict[str, float]:
    """The global statistics of ``method`` listed in :data:`METHOD_STATS`, as features ``stat_<key>``.

    Each value ``v`` enters as ``sign(v) log(1 + |v|)`` (heavy-tailed
    statistics such as a likelihood gain stay on a usable scale); an absent
    or non-finite value is NaN (the model then uses its fitting mean). A
    method with a :data:`METHOD_GATES` entry also gets ``gate``: 1.0 when
    that statistic is true (non-zero), else 0.0; one with a
    :data:`PATH_GATES` entry likewise ``path``.
    """
    out = {}
    for key in METHOD_STATS.get(method, ()):
        v = params.get(key)
        ok = isinstance(v, (bool, int, float, np.number)) and np.isfinite(float(v))
        out[f"stat_{key}"] = float(np.sign(float(v)) * np.log1p(abs(float(v)))) if ok else float("nan")
    for name, table in (("gate", METHOD_GATES), ("path", PATH_GATES)):
        if method in table:
            g = params.get(table[method])
            out[name] = 1.0 if isinstance(g, (bool, int, float, np.number)) and float(g) != 0.0 else 0.0
    return out


def image_features(p: np.ndarray, reliability: np.ndarray, stats: Mapping[str, float] | None = None,
                   *, max_pixels: int = MAX_PIXELS) -> dict[str, float]:
    """Pooled features of heatmap ``p`` weighted by ``reliability`` (both (H, W) in [0, 1]).

    Parameters
    ----------
    p, reliability : ndarray, shape (H, W)
    stats : mapping, optional
        Extra named global statistics, copied as they are.
    max_pixels : int, default 262144
        Larger maps are subsampled on a regular grid first (the features are
        averages; this bounds time and memory).

    Returns
    -------
    dict
        :data:`GENERIC_FEATURES`, then ``stats``; when ``stats`` holds a
        ``gate`` (see :func:`method_stats`), also ``<feature>_gated`` =
        feature x gate for each generic feature.

    Examples
    --------
    >>> import numpy as np
    >>> f = image_features(np.full((8, 8), 0.2), np.ones((8, 8)))
    >>> round(f["area"], 3), round(f["spread"], 3)
    (0.0, 0.0)
    """
    p, reliability = np.asarray(p), np.asarray(reliability)
    step = subsample_step(p.size, max_pixels)
    # subsample first, then float64 (no full-size float64 copies)
    v = np.asarray(p[::step, ::step], dtype=np.float64).ravel()
    r = np.asarray(reliability[::step, ::step], dtype=np.float64).ravel()
    w = r + 1e-6  # all pixels count a little: a map with zero reliability everywhere stays defined
    sw = float(w.sum())
    mean = float(np.sum(w * v) / sw)
    feats = {
        "mean": float(logit(mean)),
        "median": float(logit(_weighted_quantile(v, w, 0.5))),
        "top": float(logit(_top_mean(v, w, TOP_FRACTION))),
        "q99": float(logit(_weighted_quantile(v, w, 0.99))),
        "area": float(np.sum(w * (v >= 0.5)) / sw),
        "spread": float(np.sqrt(max(np.sum(w * (v - mean) ** 2) / sw, 0.0))),
    }
    feats.update({k: float(x) for k, x in (stats or {}).items()})
    if "gate" in feats:
        feats.update({f"{k}_gated": feats[k] * feats["gate"] for k in GENERIC_FEATURES})
    return feats
