"""Pixel-level and image-level evaluation metrics.

Conventions (all functions)
---------------------------
* ``truth`` is boolean, True = spliced. A prediction is positive where
  ``score >= threshold``.
* Undefined values are ``NaN``, never 0: TPR without spliced pixels, FPR
  without pristine pixels, precision without predicted positives, F1 / IoU
  when there are neither true nor predicted positives, MCC when any marginal of
  the confusion table is empty, AUC unless both classes are present, AP
  without positives. Means skip NaN and report how many values were defined.
* Best-threshold metrics sweep *every* distinct score value exactly (plus the
  "predict nothing" threshold), so they equal an exhaustive search. They are
  NaN on images without spliced pixels.
* ``orientation="best"`` is the "better of map and inverted map" convention:
  per image, the orientation with the higher AUC is chosen and every metric is
  then reported in that orientation (``ImageMetrics.orientation`` says which).
* :func:`summarize` returns either per-image means or pooled-pixel values;
  its output says which (``"aggregation"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Confusion",
    "confusion",
    "threshold_sweep",
    "metric_curve",
    "roc_auc",
    "average_precision",
    "best_threshold",
    "ImageMetrics",
    "evaluate_map",
    "dont_care_band",
    "summarize",
    "detection_metrics",
]

_NAN = float("nan")
HIST_BINS = 4096


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b > 0 else _NAN


@dataclass(frozen=True)
class Confusion:
    """Confusion counts of one binary prediction (pixels)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def tpr(self) -> float:
        """Recall / true-positive rate; NaN without positives."""
        return _div(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> float:
        """False-positive rate; NaN without negatives."""
        return _div(self.fp, self.fp + self.tn)

    @property
    def precision(self) -> float:
        """Precision; NaN without predicted positives."""
        return _div(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> float:
        """F1 = 2TP / (2TP + FP + FN); NaN when the denominator is 0."""
        return _div(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        """Intersection over union TP / (TP + FP + FN); NaN when 0/0."""
        return _div(self.tp, self.tp + self.fp + self.fn)

    @property
    def mcc(self) -> float:
        """Matthews correlation coefficient; NaN when any marginal is empty."""
        tp, fp, fn, tn = (float(v) for v in (self.tp, self.fp, self.fn, self.tn))
        d = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
        return (tp * tn - fp * fn) / np.sqrt(d) if d > 0 else _NAN

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


def _prep(score: Any, truth: Any, valid: Any = None) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score)
    t = np.asarray(truth)
    if s.shape != t.shape:
        raise ValueError(f"truth: shape {t.shape} does not match the prediction's {s.shape}")
    if s.dtype == bool:
        s = s.astype(np.float64)
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise TypeError(f"score: dtype {s.dtype} is not numeric")
    s = s.astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError("score: contains NaN; replace undefined scores before evaluating")
    t = t.astype(bool) if t.dtype == bool else (t != 0)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != s.shape:
            raise ValueError(f"valid: shape {v.shape} does not match the prediction's {s.shape}")
        s, t = s[v], t[v]
    return s.ravel(), t.ravel()


def confusion(pred: Any, truth: Any, *, valid: Any = None) -> Confusion:
    """Confusion counts of a binary prediction against ``truth``.

    Parameters
    ----------
    pred, truth : array_like of bool, shape (H, W)
    valid : array_like of bool, shape (H, W), optional
        Pixels to count (e.g. from :func:`dont_care_band`).
    """
    p, t = _prep(np.asarray(pred) != 0, truth, valid)
    p = p > 0
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Confusion(tp, fp, fn, int(t.size - tp - fp - fn))


def threshold_sweep(score: Any, truth: Any, *, valid: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Exact sweep over all distinct score values.

    Returns
    -------
    thresholds : ndarray, shape (k,)
        Distinct score values in decreasing order (positive = ``score >= t``).
    tp, fp : ndarray of int64, shape (k,)
        Counts at each threshold.
    n_pos, n_neg : int
        Number of positive and negative pixels.
    """
    s, t = _prep(score, truth, valid)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    t_sorted = t[order]
    tps = np.cumsum(t_sorted, dtype=np.int64)
    fps = np.arange(1, s.size + 1, dtype=np.int64) - tps
    if s.size:
        last = np.r_[np.nonzero(np.diff(s_sorted))[0], s.size - 1]
    else:
        last = np.zeros(0, dtype=np.int64)
    n_pos = int(t.sum())
    return s_sorted[last], tps[last], fps[last], n_pos, int(t.size - n_pos)


def _auc_from_counts(tp: np.ndarray, fp: np.ndarray, n_pos: int, n_neg: int) -> float:
    if n_pos == 0 or n_neg == 0:
        return _NAN
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) * 0.5))


def _ap_from_counts(tp: np.ndarray, fp: np.ndarray, n_pos: int) -> float:
    if n_pos == 0 or tp.size == 0:
        return _NAN
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(score: Any, truth: Any, *, valid: Any = None) -> float:
    """Area under the ROC curve (ties handled exactly, as the Mann-Whitney U); NaN unless both classes occur."""
    _, tp, fp, n_pos, n_neg = threshold_sweep(score, truth, valid=valid)
    return _auc_from_counts(tp, fp, n_pos, n_neg)


def average_precision(score: Any, truth: Any, *, valid: Any = None) -> float:
    """Average precision ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds; NaN without positives."""
    _, tp, fp, n_pos, _ = threshold_sweep(score, truth, valid=valid)
    return _ap_from_counts(tp, fp, n_pos)


def metric_curve(tp: np.ndarray, fp: np.ndarray, n_pos: float, n_neg: float, metric: str) -> np.ndarray:
    """F1 or MCC at every threshold of a sweep, from cumulative counts.

    Parameters
    ----------
    tp, fp : ndarray, shape (T,)
        True and false positives at each threshold (e.g. from
        :func:`threshold_sweep`).
    n_pos, n_neg : float
        Numbers of positive and negative pixels.
    metric : {"f1", "mcc", "iou"}

    Returns
    -------
    ndarray, float64, shape (T,)
        The metric at each threshold; NaN where it is undefined (a zero
        denominator), never 0.

    Examples
    --------
    >>> metric_curve(np.array([0, 1, 2]), np.array([0, 0, 2]), 2, 2, "f1")
    array([0.        , 0.66666667, 0.66666667])
    """
    tp = tp.astype(np.float64)
    fp = fp.astype(np.float64)
    fn = n_pos - tp
    tn = n_neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "f1":
            d = 2 * tp + fp + fn
            return np.where(d > 0, 2 * tp / np.where(d > 0, d, 1), np.nan)
        if metric == "mcc":
            d = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
            return np.where(d > 0, (tp * tn - fp * fn) / np.sqrt(np.where(d > 0, d, 1)), np.nan)
        if metric == "iou":
            d = tp + fp + fn
            return np.where(d > 0, tp / np.where(d > 0, d, 1), np.nan)
    raise ValueError(f"metric={metric!r} is not supported; choose 'f1', 'mcc' or 'iou'")


def best_threshold(score: Any, truth: Any, *, metric: str = "f1", valid: Any = None) -> tuple[float, float]:
    """Threshold maximising ``metric`` over every distinct score value (and "predict nothing").

    Returns
    -------
    threshold, value : float
        ``threshold`` is ``inf`` when predicting nothing is best; ``value`` is
        NaN when the metric is undefined at every threshold.
    """
    thr, tp, fp, n_pos, n_neg = threshold_sweep(score, truth, valid=valid)
    thr = np.r_[np.inf, thr]
    tp = np.r_[0, tp]
    fp = np.r_[0, fp]
    curve = metric_curve(tp, fp, n_pos, n_neg, metric)
    if not np.isfinite(curve).any():
        return _NAN, _NAN
    i = int(np.nanargmax(curve))
    return float(thr[i]), float(curve[i])


@dataclass(frozen=True)
class ImageMetrics:
    """Pixel-level metrics of one map against one ground-truth mask (per image).

    ``orientation`` is ``"as_is"`` or ``"inverted"`` (the map was replaced by
    ``1 - map`` under the better-of convention). Fixed-threshold values use
    ``threshold``; ``*_best`` values use the best threshold of that metric.
    ``hist_pos`` / ``hist_neg`` are score histograms on [0, 1] used for pooled
    AUC/AP.
    """

    auc: float
    ap: float
    f1_best: float
    mcc_best: float
    iou_best: float
    threshold_f1_best: float
    threshold: float
    confusion: Confusion
    orientation: str
    n_pixels: int
    n_positive: int
    hist_pos: np.ndarray = field(repr=False, compare=False)
    hist_neg: np.ndarray = field(repr=False, compare=False)

    @property
    def f1(self) -> float:
        return self.confusion.f1

    @property
    def mcc(self) -> float:
        return self.confusion.mcc

    @property
    def tpr(self) -> float:
        return self.confusion.tpr

    @property
    def fpr(self) -> float:
        return self.confusion.fpr

    @property
    def precision(self) -> float:
        return self.confusion.precision

    @property
    def iou(self) -> float:
        return self.confusion.iou

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly dict (NaN kept as float NaN)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("hist_pos", "hist_neg", "confusion")}
        d.update(tp=self.confusion.tp, fp=self.confusion.fp, fn=self.confusion.fn, tn=self.confusion.tn)
        for k in ("f1", "mcc", "tpr", "fpr", "precision", "iou"):
            d[k] = getattr(self, k)
        d["aggregation"] = "per_image"
        return d


ORIENTATIONS = ("as_is", "best")


def evaluate_map(
    score: Any,
    truth: Any,
    *,
    threshold: float = 0.5,
    orientation: str = "as_is",
    valid: Any = None,
) -> ImageMetrics:
    """Evaluate one heatmap (or binary mask) against its ground truth.

    Parameters
    ----------
    score : array_like, shape (H, W)
        Heatmap in [0, 1] (higher = more likely spliced) or a binary mask.
    truth : array_like of bool, shape (H, W)
        Ground truth, True = spliced.
    threshold : float, default 0.5
        Fixed threshold for TPR/FPR/precision/F1/MCC/IoU.
    orientation : {"as_is", "best"}, default "as_is"
        ``"best"``: use ``1 - score`` when its AUC is higher (ties keep the map as is).
    valid : array_like of bool, shape (H, W), optional
        Pixels that count (e.g. from :func:`dont_care_band`).

    Returns
    -------
    ImageMetrics

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.metrics import evaluate_map
    >>> t = np.zeros((4, 4), bool); t[:2] = True
    >>> m = evaluate_map(np.where(t, 0.9, 0.1), t)
    >>> m.auc, m.f1
    (1.0, 1.0)
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation={orientation!r} is not supported; choose one of {ORIENTATIONS}")
    s = np.asarray(score, dtype=np.float64) if np.asarray(score).dtype != bool else np.asarray(score, float)
    thr, tp, fp, n_pos, n_neg = threshold_sweep(s, truth, valid=valid)
    auc = _auc_from_counts(tp, fp, n_pos, n_neg)
    orient = "as_is"
    if orientation == "best" and np.isfinite(auc) and auc < 0.5:
        s = 1.0 - s
        orient = "inverted"
        thr, tp, fp, n_pos, n_neg = threshold_sweep(s, truth, valid=valid)
        auc = _auc_from_counts(tp, fp, n_pos, n_neg)
    ap = _ap_from_counts(tp, fp, n_pos)
    thr_all = np.r_[np.inf, thr]
    tp_all, fp_all = np.r_[0, tp], np.r_[0, fp]
    best = {}
    for metric in ("f1", "mcc", "iou"):
        c = metric_curve(tp_all, fp_all, n_pos, n_neg, metric)
        defined = np.isfinite(c).any() and n_pos > 0  # no spliced pixels: best F1/IoU/MCC undefined
        best[metric] = (float(np.nanmax(c)), float(thr_all[int(np.nanargmax(c))])) if defined else (_NAN, _NAN)
    conf = confusion(s >= threshold, truth, valid=valid)
    flat_s, flat_t = _prep(s, truth, valid)
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    clipped = np.clip(flat_s, 0.0, 1.0)
    hp = np.histogram(clipped[flat_t], bins=edges)[0]
    hn = np.histogram(clipped[~flat_t], bins=edges)[0]
    return ImageMetrics(
        auc=auc,
        ap=ap,
        f1_best=best["f1"][0],
        mcc_best=best["mcc"][0],
        iou_best=best["iou"][0],
        threshold_f1_best=best["f1"][1],
        threshold=float(threshold),
        confusion=conf,
        orientation=orient,
        n_pixels=int(n_pos + n_neg),
        n_positive=int(n_pos),
        hist_pos=hp,
        hist_neg=hn,
    )


def dont_care_band(truth: Any, width: int) -> np.ndarray:
    """Valid-pixel mask excluding a band of ``width`` pixels on each side of the mask boundary.

    Returns
    -------
    ndarray of bool, shape (H, W)
        False inside the band (pixels not counted), True elsewhere.
    """
    from scipy import ndimage

    t = np.asarray(truth) != 0
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 0:
        raise ValueError(f"width={width!r} must be a non-negative integer")
    if width == 0:
        return np.ones_like(t, dtype=bool)
    st = ndimage.generate_binary_structure(2, 1)
    grown = ndimage.binary_dilation(t, st, iterations=int(width))
    shrunk = ndimage.binary_erosion(t, st, iterations=int(width), border_value=1)
    return ~(grown & ~shrunk)


_MEAN_KEYS = ("auc", "ap", "f1_best", "mcc_best", "iou_best", "f1", "mcc", "tpr", "fpr", "precision", "iou")


def summarize(results: Sequence[ImageMetrics], *, aggregation: str = "per_image") -> dict[str, Any]:
    """Aggregate per-image metrics.

    Parameters
    ----------
    results : sequence of ImageMetrics
    aggregation : {"per_image", "pooled"}, default "per_image"
        ``"per_image"``: NaN-skipping mean of each metric over images, with
        ``n_defined[<metric>]`` the number of images where it was defined.
        ``"pooled"``: confusion counts summed over all pixels of all images
        (fixed-threshold metrics are exact); ``auc``/``ap`` from the summed
        score histograms (binned to 1/4096 on [0, 1]).

    Returns
    -------
    dict
        Metric values plus ``"aggregation"``, ``"n_images"`` and ``"orientations"``.
    """
    if aggregation not in ("per_image", "pooled"):
        raise ValueError(f"aggregation={aggregation!r} is not supported; choose 'per_image' or 'pooled'")
    res = list(results)
    out: dict[str, Any] = {"aggregation": aggregation, "n_images": len(res)}
    out["orientations"] = {o: sum(r.orientation == o for r in res) for o in ("as_is", "inverted")}
    if aggregation == "per_image":
        n_def = {}
        for k in _MEAN_KEYS:
            vals = np.array([getattr(r, k) for r in res], dtype=np.float64)
            ok = np.isfinite(vals)
            n_def[k] = int(ok.sum())
            out[k] = float(vals[ok].mean()) if ok.any() else _NAN
        out["n_defined"] = n_def
        return out
    total = Confusion(0, 0, 0, 0)
    for r in res:
        total = total + r.confusion
    for k in ("f1", "mcc", "tpr", "fpr", "precision", "iou"):
        out[k] = getattr(total, k)
    out.update(tp=total.tp, fp=total.fp, fn=total.fn, tn=total.tn)
    if res:
        hp = np.sum([r.hist_pos for r in res], axis=0)
        hn = np.sum([r.hist_neg for r in res], axis=0)
        tp = np.cumsum(hp[::-1])
        fp = np.cumsum(hn[::-1])
        n_pos, n_neg = int(hp.sum()), int(hn.sum())
        keep = np.r_[np.diff(tp + fp) > 0, True] if tp.size else tp.astype(bool)
        out["auc"] = _auc_from_counts(tp, fp, n_pos, n_neg)
        out["ap"] = _ap_from_counts(tp[keep], fp[keep], n_pos)
        curve = metric_curve(np.r_[0, tp], np.r_[0, fp], n_pos, n_neg, "f1")
        out["f1_best"] = float(np.nanmax(curve)) if np.isfinite(curve).any() else _NAN
    else:
        out["auc"] = out["ap"] = out["f1_best"] = _NAN
    return out


def detection_metrics(scores: Any, labels: Any, *, threshold: float = 0.5) -> dict[str, float]:
    """Image-level detection metrics from one score per image.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Detection scores (higher = more likely spliced); NaN scores (method
        not applicable) are left out and counted in ``n_undefined``.
    labels : array_like of bool, shape (n,)
        True for spliced images.
    threshold : float, default 0.5
        The decision threshold of ``balanced_accuracy``, ``tpr`` and ``tnr``
        (``score >= threshold`` flags an image; 0.5 for calibrated scores).

    Returns
    -------
    dict
        ``auc``, ``ap``, ``balanced_accuracy_best`` (at the best threshold),
        ``threshold_best``, ``tpr_at_fpr_5`` over the images with a finite
        score; ``balanced_accuracy`` = (``tpr`` + ``tnr``) / 2 of
        ``score >= threshold`` over all images, a NaN score counting as not
        flagged (NaN without both classes); ``n``, ``n_undefined``.

    Examples
    --------
    >>> m = detection_metrics([0.9, 0.6, 0.4, 0.1], [True, True, False, False])
    >>> m["auc"], m["balanced_accuracy"]
    (1.0, 1.0)
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"labels: length {y.size} does not match scores' {s.size}")
    threshold = float(threshold)
    flagged = np.nan_to_num(s, nan=-np.inf) >= threshold
    tpr = float(flagged[y].mean()) if y.any() else _NAN
    tnr = float((~flagged[~y]).mean()) if (~y).any() else _NAN
    at = {"balanced_accuracy": 0.5 * (tpr + tnr), "tpr": tpr, "tnr": tnr, "threshold": threshold}
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    out = {"n": int(s.size), "n_undefined": int((~ok).sum())}
    thr, tp, fp, n_pos, n_neg = threshold_sweep(s, y)
    out["auc"] = _auc_from_counts(tp, fp, n_pos, n_neg)
    out["ap"] = _ap_from_counts(tp, fp, n_pos)
    if n_pos and n_neg:
        bacc = 0.5 * (tp / n_pos + 1 - fp / n_neg)
        i = int(np.argmax(bacc))
        out["balanced_accuracy_best"] = float(bacc[i])
        out["threshold_best"] = float(thr[i])
        fpr = fp / n_neg
        ok5 = fpr <= 0.05
        out["tpr_at_fpr_5"] = float((tp[ok5] / n_pos).max()) if ok5.any() else 0.0
    else:
        out["balanced_accuracy_best"] = out["threshold_best"] = out["tpr_at_fpr_5"] = _NAN
    out.update(at)
    return out
