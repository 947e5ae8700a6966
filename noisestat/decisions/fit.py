"""Fitting the decision models of :mod:`noisestat.decisions.calibration` from labelled results.

The input is, per image, what :func:`noisestat.decisions.decision_inputs`
returns (the method's uncalibrated heatmap, its reliability map and global
statistics), the true mask and whether the image is spliced. The fit has
three logistic regressions (scikit-learn, L2):

1. the first-stage pixel mapping :math:`(a_1, b_1)` on pixels sampled
   uniformly from every image (``pixels_per_image`` each, so every image
   weighs the same);
2. the integrity model on one feature vector per image, standardised, with
   ``C = 1``; its scores used by step 3 are out-of-fold (5 folds) so that
   the pixel stage does not learn from optimistic scores;
3. the final pixel mapping :math:`(a, d, b, c)` on the same pixels, with
   the per-image standardised value :math:`z` and the image's out-of-fold
   :math:`\\operatorname{logit}(s)` as further inputs; for a method of
   :data:`~noisestat.decisions.integrity.PIXEL_SPLITS`, once on the images
   whose split feature is 0 (``pixel``, ``pixel_z``) and once on those where
   it is 1 (``pixel_split``), when both have spliced and pristine pixels.

Then the image offset :math:`o` of the integrity score (see
:mod:`noisestat.decisions.calibration`): the largest :math:`o \\le 0` that
leaves at most a share ``image_fpr`` (default :data:`IMAGE_FPR`, 5 %) of the
fitting set's pristine images at ``score >= 0.5``, on their out-of-fold
linear predictors (the threshold sits half-way between the two pristine
scores it separates). Last the pixel offset :math:`o_p`
(:func:`pixel_offset`): of -6, -5.9, ..., 6, the one whose masks
``p >= 0.5`` have the best mean F1 on the fitting set's spliced images (on
the sampled pixels) while the fitting set's pristine images keep a mean of
at most ``pixel_fpr`` (default :data:`PIXEL_FPR`, 1 %) of their pixels
flagged; a split mapping (:data:`~noisestat.decisions.integrity.PIXEL_SPLITS`)
gets one offset per part, each chosen on the images of its part.

A slope that comes out non-positive (the statistic carries no positive
evidence on the fitting set) is replaced by :data:`MIN_SLOPE`, keeping every
mapping strictly increasing; ``c < 0`` is refitted with ``c = 0``. The prior
that sets where 0.5 falls is the fitting set's own (its share of spliced
pixels and of spliced images), recorded in ``fit``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import MethodCalibration, image_norm, sigmoid
from .integrity import (
    PIXEL_SPLITS,
    STACKED,
    image_features,
    logit,
    method_stats,
    pixel_split,
    stacked_feature,
)

__all__ = ["FitItem", "fit_method", "fit_methods", "read_fit_item", "write_decision_inputs", "image_offset",
           "pixel_offset", "MIN_SLOPE", "PIXELS_PER_IMAGE", "IMAGE_FPR", "PIXEL_FPR", "PIXEL_OFFSETS"]

MIN_SLOPE = 1e-3
PIXELS_PER_IMAGE = 4096
#: default share of the fitting set's pristine images allowed at ``score >= 0.5`` (:func:`image_offset`)
IMAGE_FPR = 0.05
#: default mean share of the fitting set's pristine pixels allowed at ``p >= 0.5`` (:func:`pixel_offset`)
PIXEL_FPR = 0.01
#: the pixel offsets :func:`pixel_offset` chooses from (logit units)
PIXEL_OFFSETS = tuple(round(0.1 * k, 1) for k in range(-60, 61))


@dataclass(frozen=True)
class FitItem:
    """One labelled result: uncalibrated map, reliability, truth (None = all pristine), label."""

    key: str
    u: np.ndarray
    reliability: np.ndarray
    truth: np.ndarray | None
    spliced: bool
    stats: Mapping[str, float] = field(default_factory=dict)


def write_decision_inputs(path: str | os.PathLike, *, uncalibrated: np.ndarray, reliability: np.ndarray,
                          truth: np.ndarray | None, applicable: bool, params: Mapping[str, float]) -> None:
    """Write one result's decision inputs as the ``.decision.npz`` that :func:`read_fit_item` reads."""
    u = np.asarray(uncalibrated, dtype=np.float32)
    t = np.zeros(u.shape, bool) if truth is None else np.asarray(truth, bool)
    np.savez_compressed(path, uncalibrated=u, reliability=np.asarray(reliability, np.float16),
                        truth=np.packbits(t), shape=np.array(u.shape), applicable=np.array(bool(applicable)),
                        params=np.array(json.dumps(dict(params))))


def read_fit_item(path: str | os.PathLike, *, method: str, key: str, spliced: bool) -> FitItem | None:
    """The :class:`FitItem` of one saved ``.decision.npz`` (None when the method did not apply)."""
    with np.load(path, allow_pickle=False) as z:
        if not bool(z["applicable"]):
            return None
        shape = tuple(int(v) for v in z["shape"])
        truth = np.unpackbits(z["truth"], count=shape[0] * shape[1]).reshape(shape).astype(bool)
        return FitItem(key=key, u=z["uncalibrated"], reliability=z["reliability"].astype(np.float32),
                       truth=truth, spliced=spliced,
                       stats=method_stats(method, json.loads(str(z["params"]))))


def _sample(item: FitItem, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, zlib.crc32(item.key.encode())])
    n = item.u.size
    idx = rng.choice(n, size=min(k, n), replace=False)
    y = np.zeros(idx.size, bool) if item.truth is None else np.asarray(item.truth).ravel()[idx]
    return logit(np.asarray(item.u).ravel()[idx], 1e-7), y


def _logreg(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000).fit(x, y)


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < y.size else float("nan")


def _pixels(items: Iterable[FitItem], k: int, seed: int, method: str) -> tuple[np.ndarray, ...]:
    """Sampled ``x = logit(u)``, truth, image index, per-image standardised ``z`` and whether the image's
    split feature is 1 (:func:`~noisestat.decisions.integrity.pixel_split`) of every item."""
    xs, ys, gs, zs, opens = [], [], [], [], []
    for i, it in enumerate(items):
        x, y = _sample(it, k, seed)
        m, sd = image_norm(it.u)
        xs.append(x)
        ys.append(y)
        gs.append(np.full(x.size, i))
        zs.append((x - m) / sd)
        opens.append(np.full(x.size, pixel_split(method, it.stats)))
    if not xs:
        raise ValueError("no applicable results to fit on (the method applies to none of the images)")
    return tuple(np.concatenate(v) for v in (xs, ys, gs, zs, opens))


def image_offset(pristine: Any, *, fpr: float = IMAGE_FPR) -> float:
    """The image offset: the largest ``o <= 0`` with at most a share ``fpr`` of ``pristine + o >= 0``.

    Parameters
    ----------
    pristine : array_like, shape (n,)
        Linear predictors (logits) of the integrity score on pristine images
        (out-of-fold on the fitting set); non-finite values are ignored.
    fpr : float, default 0.05
        Allowed share of pristine images at ``score >= 0.5``, in [0, 1).

    Returns
    -------
    float
        ``o``: 0 when no more than ``floor(fpr * n)`` of the values are >= 0;
        else minus the mid-point between the largest value that must fall
        below 0 and the next larger one (minus that value and a margin of
        1e-9 when there is no larger one or it ties). 0 without finite
        values.

    Raises
    ------
    ValueError
        ``fpr`` outside [0, 1).

    Examples
    --------
    >>> round(image_offset([-2.0, -1.0, 0.5, 1.0, 3.0], fpr=0.2), 6)
    -2.0
    """
    if not (isinstance(fpr, (int, float, np.number)) and 0.0 <= float(fpr) < 1.0):
        raise ValueError(f"fpr must be a share in [0, 1), got {fpr!r}")
    t = np.sort(np.asarray(pristine, dtype=np.float64).ravel())
    t = t[np.isfinite(t)]
    if t.size == 0:
        return 0.0
    k = int(np.floor(float(fpr) * t.size + 1e-9))  # values allowed at or above 0
    cut = t[t.size - k - 1]  # the largest value that must fall below 0
    nxt = t[t.size - k] if k > 0 else cut  # no larger value may stay at or above 0
    o = -0.5 * (cut + nxt) if nxt - cut > 2e-9 else -cut - 1e-9  # ties with ``cut`` fall below 0 too
    return float(min(0.0, o))


def pixel_offset(logits: Any, truth: Any, image: Any, spliced: Any, *, fpr: float = PIXEL_FPR,
                 offsets: tuple[float, ...] = PIXEL_OFFSETS) -> tuple[float, float, float]:
    """The pixel offset: of ``offsets``, the one with the best mean mask F1 within the false-alarm budget.

    Parameters
    ----------
    logits : array_like, shape (n,)
        Linear predictors of the final pixel mapping at sampled pixels.
    truth : array_like of bool, shape (n,)
        Whether each sampled pixel is spliced.
    image : array_like of int, shape (n,)
        The image index of each sampled pixel (0 .. m - 1).
    spliced : array_like of bool, shape (m,)
        Whether each image is spliced.
    fpr : float, default 0.01
        Budget: the mean over pristine images of the share of their sampled
        pixels at ``logits + o >= 0``.
    offsets : tuple of float, default ``-6, -5.9, ..., 6``
        Candidates (finite).

    Returns
    -------
    (offset, f1, fpr) : tuple of float
        The offset that maximises the mean over spliced images of the F1 of
        the sampled mask (``2 TP / (2 TP + FP + FN)``, 0 for an empty mask of
        an image with spliced pixels; on ties the offset nearest 0, the lower
        one of ``-o`` and ``o``) among those within the budget (0 when none
        is, with NaN F1 and share), and its F1 and pristine share.

    Raises
    ------
    ValueError
        ``fpr`` outside [0, 1] or an offset that is not finite.

    Examples
    --------
    >>> o, f1, fp = pixel_offset([-1.0, -1.0, -3.0, -3.0], [True, True, False, False], [0, 0, 1, 1],
    ...                          [True, False], fpr=0.0)
    >>> o, f1, fp
    (1.0, 1.0, 0.0)
    """
    if not (isinstance(fpr, (int, float, np.number)) and 0.0 <= float(fpr) <= 1.0):
        raise ValueError(f"fpr must be a share in [0, 1], got {fpr!r}")
    cand = sorted((float(o) for o in offsets), key=lambda o: (abs(o), o))
    if not cand or not all(math.isfinite(o) for o in cand):
        raise ValueError(f"offsets must be finite numbers (at least one), got {offsets!r}")
    t = np.asarray(logits, np.float64).ravel()
    y = np.asarray(truth, bool).ravel()
    g = np.asarray(image, np.int64).ravel()
    sp = np.asarray(spliced, bool).ravel()
    m = sp.size
    n_img = np.bincount(g, minlength=m).astype(np.float64)
    pos = np.bincount(g, weights=y, minlength=m)
    best = (0.0, -1.0, 0.0)
    for o in cand:
        flag = t + o >= 0
        tp = np.bincount(g, weights=flag & y, minlength=m)
        fl = np.bincount(g, weights=flag, minlength=m)
        den = fl + pos  # 2 TP + FP + FN
        f1 = np.where(den > 0, 2.0 * tp / np.maximum(den, 1e-300), 0.0)
        f1_mean = float(f1[sp & (n_img > 0)].mean()) if np.any(sp & (n_img > 0)) else float("nan")
        pr = ~sp & (n_img > 0)
        fp = float(np.mean(fl[pr] / n_img[pr])) if np.any(pr) else 0.0
        if fp <= fpr and f1_mean > best[1]:
            best = (float(o), f1_mean, fp)
    if best[1] < 0:  # no offset within the budget (or no spliced image): leave the map as fitted
        return 0.0, float("nan"), float("nan")
    return best


def _integrity(feats: list[dict[str, float]], labels: np.ndarray,
               seed: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Standardised logistic integrity model, its out-of-fold scores and their linear predictors."""
    names = list(feats[0])
    f = np.array([[d.get(n, np.nan) for n in names] for d in feats], dtype=np.float64)
    ok = np.isfinite(f)
    mean = np.where(ok, f, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)  # 0 for an all-NaN feature
    f = np.where(np.isfinite(f), f, mean)
    sd = f.std(axis=0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    z = (f - mean) / sd
    oof = np.full(labels.size, labels.mean())
    oof_t = np.full(labels.size, float(np.log(labels.mean() / (1.0 - labels.mean()))))
    folds = np.random.default_rng(seed).permutation(labels.size) % 5
    for k in range(5):
        tr = folds != k
        if 0 < labels[tr].sum() < tr.sum():
            fold = _logreg(z[tr], labels[tr], 1.0)
            oof[~tr] = fold.predict_proba(z[~tr])[:, 1]
            oof_t[~tr] = fold.decision_function(z[~tr])
    model = _logreg(z, labels, 1.0)
    return ({"features": names, "mean": mean.tolist(), "scale": sd.tolist(), "coef": model.coef_[0].tolist(),
             "intercept": float(model.intercept_[0])}, oof, oof_t)


def fit_method(method: str, items: Callable[[], Iterable[FitItem]], *, pixels_per_image: int = PIXELS_PER_IMAGE,
               seed: int = 0, image_fpr: float = IMAGE_FPR, pixel_fpr: float = PIXEL_FPR) -> MethodCalibration:
    """Fit one method's decision models on labelled results.

    Parameters
    ----------
    method : str
    items : callable
        Returns a fresh iterable of :class:`FitItem` (it is iterated twice;
        only applicable results belong in it). Needs spliced and pristine
        images.
    pixels_per_image : int, default 4096
    seed : int, default 0
    image_fpr : float, default 0.05
        Share of the pristine images allowed at ``score >= 0.5`` (out-of-fold;
        :func:`image_offset`).
    pixel_fpr : float, default 0.01
        Mean share of the pristine images' pixels allowed at ``p >= 0.5``
        (:func:`pixel_offset`).

    Returns
    -------
    MethodCalibration
        With ``fit``: numbers of images and pixels, the priors (the fitting
        set's and the operating prior of the score), the out-of-fold image
        AUC, TPR and FPR at 0.5 and the pixel AUC on the fitting set.

    Raises
    ------
    ValueError
        No items, or only one class of images or pixels.
    """
    return _fit_one(method, items, pixels_per_image=pixels_per_image, seed=seed, image_fpr=image_fpr,
                    pixel_fpr=pixel_fpr)[0]


def fit_methods(items: Mapping[str, Callable[[], Iterable[FitItem]]], *, targets: Iterable[str] | None = None,
                pixels_per_image: int = PIXELS_PER_IMAGE, seed: int = 0, image_fpr: float = IMAGE_FPR,
                pixel_fpr: float = PIXEL_FPR, on_error: Callable[[str, ValueError], None] | None = None) -> dict[str, MethodCalibration]:
    """Fit several methods; a stacked method also learns from its maps' out-of-fold scores.

    Parameters
    ----------
    items : mapping
        Method name -> a callable as in :func:`fit_method`; the items of
        different methods for the same image share their ``key``.
    targets : iterable of str, optional
        The methods to return (default: all of ``items``). The maps of a
        stacked target (:data:`~noisestat.decisions.integrity.STACKED`) that
        are in ``items`` are fitted too, first.
    pixels_per_image, seed, image_fpr, pixel_fpr
        As in :func:`fit_method`.
    on_error : callable, optional
        Called with ``(method, error)`` for a method that cannot be fitted
        (it is then left out); default: the ``ValueError`` is raised.

    Returns
    -------
    dict
        Method name -> :class:`MethodCalibration`, for ``targets``.

    Notes
    -----
    For a stacked method ``M`` and each of its maps ``m`` fitted here, every
    item of ``M`` gets the statistic ``sub_<m>`` = logit of ``m``'s
    out-of-fold integrity score on the same image (NaN where ``m`` gave no
    result), so the integrity model of ``M`` is not fitted on its maps'
    in-sample scores. At inference,
    :func:`noisestat.decisions.decide.stacked_scores` computes the same
    feature from the map that ``M``'s result carries.
    """
    targets = list(items) if targets is None else list(targets)
    need = set(targets) | {m for t in targets for m in STACKED.get(t, ()) if m in items}
    fitted: dict[str, MethodCalibration] = {}
    oof: dict[str, dict[str, float]] = {}
    for m in sorted(need, key=lambda m: (m in STACKED, m)):  # the maps of a stacked method first
        subs = [s for s in STACKED.get(m, ()) if s in oof]
        its = items[m] if not subs else functools.partial(_with_sub_scores, items[m], subs, oof)
        try:
            fitted[m], oof[m] = _fit_one(m, its, pixels_per_image=pixels_per_image, seed=seed, image_fpr=image_fpr,
                                         pixel_fpr=pixel_fpr)
        except ValueError as exc:
            if on_error is None:
                raise
            on_error(m, exc)
    return {m: fitted[m] for m in targets if m in fitted}


def _with_sub_scores(items: Callable[[], Iterable[FitItem]], subs: list[str],
                     oof: Mapping[str, Mapping[str, float]]) -> Iterable[FitItem]:
    """``items()`` with each map's out-of-fold score on the same image as statistic ``sub_<map>``."""
    for it in items():
        extra = {stacked_feature(s): float(logit(oof[s][it.key])) if it.key in oof[s] else float("nan")
                 for s in subs}
        yield dataclasses.replace(it, stats={**it.stats, **extra})


def _fit_one(method: str, items: Callable[[], Iterable[FitItem]], *, pixels_per_image: int,
             seed: int, image_fpr: float = IMAGE_FPR,
             pixel_fpr: float = PIXEL_FPR) -> tuple[MethodCalibration, dict[str, float]]:
    """:func:`fit_method`, and the out-of-fold integrity score of every item (by key)."""
    x, y, g, z, other = _pixels(items(), pixels_per_image, seed, method)
    if not 0 < y.sum() < y.size:
        raise ValueError(f"method {method!r}: the fitting pixels must include spliced and pristine ones")
    m1 = _logreg(x[:, None], y, 1e4)
    a1, b1 = max(float(m1.coef_[0, 0]), MIN_SLOPE), float(m1.intercept_[0])
    stage1 = MethodCalibration(method, (a1, b1), (1.0, 0.0, 0.0), (), (), (), (), 0.0)
    feats, labels, keys = [], [], []
    for it in items():
        feats.append(image_features(stage1.first_stage(it.u), it.reliability, it.stats))
        labels.append(it.spliced)
        keys.append(it.key)
    lab = np.array(labels, bool)
    if not 0 < lab.sum() < lab.size:
        raise ValueError(f"method {method!r}: the fitting set needs spliced and pristine images")
    image, oof, oof_t = _integrity(feats, lab, seed)
    offset = image_offset(oof_t[~lab], fpr=image_fpr)
    ls = logit(oof)[g]
    split = method in PIXEL_SPLITS and all(0 < y[sel].sum() < sel.sum() for sel in (other, ~other))
    usual = ~other if split else np.ones(y.size, bool)
    a, d, b, c = _pixel_model(x[usual], z[usual], ls[usual], y[usual])
    fit = {"n_images": int(lab.size), "n_spliced_images": int(lab.sum()), "n_pixels": int(y.size),
           "spliced_pixel_share": float(y.mean()), "spliced_image_share": float(lab.mean()),
           "pixel_auc": _auc(x, y), "image_auc_out_of_fold": _auc(oof, lab),
           "pixels_per_image": int(pixels_per_image), "seed": int(seed),
           "image_fpr_target": float(image_fpr), "image_offset": offset,
           "image_fpr_out_of_fold_at_fitting_prior": float(np.mean(oof_t[~lab] >= 0.0)),
           "image_fpr_out_of_fold": float(np.mean(oof_t[~lab] + offset >= 0.0)),
           "image_tpr_out_of_fold": float(np.mean(oof_t[lab] + offset >= 0.0)),
           "operating_prior": float(sigmoid(np.log(lab.mean() / (1.0 - lab.mean())) + offset))}
    on_split = None
    if split:
        ap, dp, bp, cp = _pixel_model(x[other], z[other], ls[other], y[other])
        on_split = (max(ap, MIN_SLOPE), bp, cp, dp)
        fit.update(n_pixels_split=int(other.sum()), spliced_pixel_share_split=float(y[other].mean()),
                   pixel_auc_split=_auc(x[other], y[other]), pixel_auc_rest=_auc(x[~other], y[~other]))
    cal = MethodCalibration(method, (a1, b1), (max(a, MIN_SLOPE), b, c), tuple(image["features"]),
                            tuple(image["mean"]), tuple(image["scale"]), tuple(image["coef"]),
                            image["intercept"], fit, pixel_z=d, pixel_split=on_split, image_offset=offset)
    t = _pixel_logits(cal, x, z, ls, other & split)
    o_px, f1, fp = pixel_offset(t[usual], y[usual], g[usual], lab, fpr=pixel_fpr)
    fit.update(pixel_fpr_target=float(pixel_fpr), pixel_offset=o_px, mask_f1_fitting_set=f1,
               mask_pristine_share_fitting_set=fp)
    o_split = 0.0
    if split:  # each part of a split mapping meets the budget on its own images
        o_split, f1s, fps = pixel_offset(t[other], y[other], g[other], lab, fpr=pixel_fpr)
        fit.update(pixel_split_offset=o_split, mask_f1_fitting_set_split=f1s,
                   mask_pristine_share_fitting_set_split=fps)
    return (dataclasses.replace(cal, pixel_offset=o_px, pixel_split_offset=o_split),
            dict(zip(keys, oof.tolist())))


def _pixel_logits(cal: MethodCalibration, x: np.ndarray, z: np.ndarray, ls: np.ndarray,
                  split: np.ndarray) -> np.ndarray:
    """The final pixel mapping's linear predictor (without the pixel offset) at the sampled pixels."""
    out = np.empty(x.size)
    for sel, on in ((~split, False), (split, True)):
        a, b, c, d = cal.pixel_model(split=on)
        out[sel] = a * x[sel] + d * z[sel] + b + c * ls[sel]
    return out


def _pixel_model(x: np.ndarray, z: np.ndarray, ls: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(a, d, b, c)`` of ``sigmoid(a x + d z + b + c ls)``; an input whose coefficient comes out
    negative is dropped and the rest refitted (``d, c >= 0``, so the mapping keeps increasing)."""
    cols = {"z": z, "ls": ls}
    while True:
        m = _logreg(np.column_stack([x, *cols.values()]), y, 1e4)
        coef = dict(zip(["x", *cols], m.coef_[0].tolist()))
        neg = [k for k in cols if coef[k] < 0]
        if not neg:
            return coef["x"], coef.get("z", 0.0), float(m.intercept_[0]), coef.get("ls", 0.0)
        del cols[min(neg, key=lambda k: coef[k])]
