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
  of a double-compression trace), read from the result's ``params``.

No feature is the JPEG quality or quantisation table, and the mean
reliability is not a feature on its own: it only weights the evidence (on
the fitting set, how much of an image is textured or clipped would
otherwise pass for evidence of a splice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["image_features", "method_stats", "numeric_params", "GENERIC_FEATURES", "METHOD_STATS", "logit", "TOP_FRACTION",
           "EPS"]

GENERIC_FEATURES = ("mean", "median", "top", "q99", "area", "spread")
#: share of the (weighted) pixels averaged by the ``top`` feature
TOP_FRACTION = 0.05
#: probabilities are clipped to [EPS, 1 - EPS] before a logit
EPS = 1e-4
#: numeric global statistics a method reports in ``params`` (key -> feature name), used as features
METHOD_STATS: dict[str, tuple[str, ...]] = {
    "adq": ("trace", "trace_gain", "trace_found"),
    "cfa": ("trace_strength",),
    "grid_content": ("grid_prominence",),
    "jpeg_ghost": ("fisher", "ghost_share"),
    "nadq": ("shift_evidence",),
}


def logit(p: Any, eps: float = EPS) -> Any:
    """``log(p / (1 - p))`` of ``p`` clipped to ``[eps, 1 - eps]``."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(q / (1.0 - q))


def _weighted_quantile(v: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(v, kind="stable")
    cw = np.cumsum(w[order])
    k = int(np.searchsorted(cw, q * cw[-1], side="left"))
    return float(v[order][min(k, v.size - 1)])


def _top_mean(v: np.ndarray, w: np.ndarray, frac: float) -> float:
    order = np.argsort(v, kind="stable")[::-1]
    cw = np.cumsum(w[order])
    k = int(np.searchsorted(cw, frac * cw[-1], side="left")) + 1
    sel = order[:k]
    return float(np.sum(v[sel] * w[sel]) / max(np.sum(w[sel]), 1e-12))


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
    or non-finite value is NaN (the model then uses its fitting mean).
    """
    out = {}
    for key in METHOD_STATS.get(method, ()):
        v = params.get(key)
        ok = isinstance(v, (bool, int, float, np.number)) and np.isfinite(float(v))
        out[f"stat_{key}"] = float(np.sign(v) * np.log1p(abs(float(v)))) if ok else float("nan")
    return out


def image_features(p: np.ndarray, reliability: np.ndarray, stats: Mapping[str, float] | None = None,
                   *, max_pixels: int = 262144) -> dict[str, float]:
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
        :data:`GENERIC_FEATURES` then ``stats``.

    Examples
    --------
    >>> import numpy as np
    >>> f = image_features(np.full((8, 8), 0.2), np.ones((8, 8)))
    >>> round(f["area"], 3), round(f["spread"], 3)
    (0.0, 0.0)
    """
    v = np.asarray(p, dtype=np.float64)
    r = np.asarray(reliability, dtype=np.float64)
    step = max(1, int(np.ceil(np.sqrt(v.size / max_pixels))))
    v, r = v[::step, ::step].ravel(), r[::step, ::step].ravel()
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
    return feats
