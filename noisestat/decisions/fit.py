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
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import MethodCalibration, image_norm
from .integrity import (
    PIXEL_SPLITS,
    STACKED,
    image_features,
    logit,
    method_stats,
    pixel_split,
    stacked_feature,
)

__all__ = ["FitItem", "fit_method", "fit_methods", "read_fit_item", "write_decision_inputs", "MIN_SLOPE", "PIXELS_PER_IMAGE"]

MIN_SLOPE = 1e-3
PIXELS_PER_IMAGE = 4096


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


def _integrity(feats: list[dict[str, float]], labels: np.ndarray, seed: int) -> tuple[dict[str, Any], np.ndarray]:
    """Standardised logistic integrity model and its out-of-fold scores."""
    names = list(feats[0])
    f = np.array([[d.get(n, np.nan) for n in names] for d in feats], dtype=np.float64)
    ok = np.isfinite(f)
    mean = np.where(ok, f, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)  # 0 for an all-NaN feature
    f = np.where(np.isfinite(f), f, mean)
    sd = f.std(axis=0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    z = (f - mean) / sd
    oof = np.full(labels.size, labels.mean())
    folds = np.random.default_rng(seed).permutation(labels.size) % 5
    for k in range(5):
        tr = folds != k
        if 0 < labels[tr].sum() < tr.sum():
            oof[~tr] = _logreg(z[tr], labels[tr], 1.0).predict_proba(z[~tr])[:, 1]
    model = _logreg(z, labels, 1.0)
    return ({"features": names, "mean": mean.tolist(), "scale": sd.tolist(), "coef": model.coef_[0].tolist(),
             "intercept": float(model.intercept_[0])}, oof)


def fit_method(method: str, items: Callable[[], Iterable[FitItem]], *, pixels_per_image: int = PIXELS_PER_IMAGE,
               seed: int = 0) -> MethodCalibration:
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

    Returns
    -------
    MethodCalibration
        With ``fit``: numbers of images and pixels, the priors and the
        out-of-fold image AUC and pixel AUC on the fitting set.

    Raises
    ------
    ValueError
        No items, or only one class of images or pixels.
    """
    return _fit_one(method, items, pixels_per_image=pixels_per_image, seed=seed)[0]


def fit_methods(items: Mapping[str, Callable[[], Iterable[FitItem]]], *, targets: Iterable[str] | None = None,
                pixels_per_image: int = PIXELS_PER_IMAGE, seed: int = 0,
                on_error: Callable[[str, ValueError], None] | None = None) -> dict[str, MethodCalibration]:
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
    pixels_per_image, seed
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
            fitted[m], oof[m] = _fit_one(m, its, pixels_per_image=pixels_per_image, seed=seed)
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
             seed: int) -> tuple[MethodCalibration, dict[str, float]]:
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
    image, oof = _integrity(feats, lab, seed)
    ls = logit(oof)[g]
    split = method in PIXEL_SPLITS and all(0 < y[sel].sum() < sel.sum() for sel in (other, ~other))
    usual = ~other if split else np.ones(y.size, bool)
    a, d, b, c = _pixel_model(x[usual], z[usual], ls[usual], y[usual])
    fit = {"n_images": int(lab.size), "n_spliced_images": int(lab.sum()), "n_pixels": int(y.size),
           "spliced_pixel_share": float(y.mean()), "spliced_image_share": float(lab.mean()),
           "pixel_auc": _auc(x, y), "image_auc_out_of_fold": _auc(oof, lab),
           "pixels_per_image": int(pixels_per_image), "seed": int(seed)}
    on_split = None
    if split:
        ap, dp, bp, cp = _pixel_model(x[other], z[other], ls[other], y[other])
        on_split = (max(ap, MIN_SLOPE), bp, cp, dp)
        fit.update(n_pixels_split=int(other.sum()), spliced_pixel_share_split=float(y[other].mean()),
                   pixel_auc_split=_auc(x[other], y[other]), pixel_auc_rest=_auc(x[~other], y[~other]))
    cal = MethodCalibration(method, (a1, b1), (max(a, MIN_SLOPE), b, c), tuple(image["features"]),
                            tuple(image["mean"]), tuple(image["scale"]), tuple(image["coef"]),
                            image["intercept"], fit, pixel_z=d, pixel_split=on_split)
    return cal, dict(zip(keys, oof.tolist()))


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
