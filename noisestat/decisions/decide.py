"""From a method's own result to the decisions a user gets: calibrated map, mask, reliability, score."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from .._numba import run_tasks
from ..registry import default_method, get_method, heatmap_to_localization
from ..registry import localize as run_method
from ..types import Heatmap, LoadedImage, Localization
from .calibration import Calibration, MethodCalibration, default_calibration, image_norm, load_calibration
from .integrity import (
    MAX_PIXELS,
    STACKED,
    image_features,
    logit,
    method_stats,
    numeric_params,
    pixel_split,
    stacked_feature,
    subsample_step,
)
from .reliability import FAMILY, reliability_map

__all__ = ["decide", "localize", "resolve_calibration", "decision_inputs", "stacked_scores"]


def resolve_calibration(calibration: Any) -> Calibration | None:
    """``None`` -> the packaged calibration; a path -> that file; ``False`` -> no calibration."""
    if calibration is None:
        return default_calibration()
    if calibration is False:
        return None
    if isinstance(calibration, Calibration):
        return calibration
    if isinstance(calibration, (str, Path)):
        return load_calibration(calibration)
    raise TypeError(f"calibration must be None, False, a path or a Calibration, got {type(calibration).__name__}")


def decision_inputs(image: LoadedImage, loc: Localization) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """What the decision models read: uncalibrated values, reliability map, numeric params.

    The numeric params are those of the result and of its heatmap (where a
    method reports its global statistics, e.g. a trace strength), flattened
    by :func:`~noisestat.decisions.integrity.numeric_params`;
    :func:`~noisestat.decisions.integrity.method_stats` picks the features.
    """
    rel = reliability_map(image, loc)
    nums = numeric_params({**loc.params, **loc.heatmap.params})
    return np.asarray(loc.heatmap.values, np.float32), rel, nums


def _uncalibrated(loc: Localization, rel: np.ndarray, note: str) -> Localization:
    hm = dataclasses.replace(loc.heatmap, params={**loc.heatmap.params, "calibration": note})
    return dataclasses.replace(loc, heatmap=hm, reliability=rel, params={**loc.params, "calibration": note})


def _integrity(cal: MethodCalibration, u: np.ndarray, rel: np.ndarray,
               stats: dict[str, float]) -> tuple[dict[str, float], float, np.ndarray]:
    """Integrity features, evidence (the integrity model's probability at the fitting prior, which the
    pixel mapping and the stacked features read) and the pooled subsample of ``u``."""
    # the features pool a regular subsample of the first stage (image_features); the first stage
    # is elementwise, so it is computed on that subsample only (the same values)
    step = subsample_step(u.size, MAX_PIXELS)
    sub = u[::step, ::step]
    feats = image_features(cal.first_stage(sub), rel[::step, ::step], stats)
    return feats, cal.evidence(feats), sub


def stacked_scores(image: LoadedImage, loc: Localization, cal_set: Calibration,
                   names: Collection[str] | None = None) -> dict[str, float]:
    """The stacked integrity features of ``loc`` (see :data:`~noisestat.decisions.integrity.STACKED`).

    For each map ``m`` of ``STACKED[loc.method]`` (only those whose feature
    is in ``names``, when given): ``sub_<m>`` = logit of the integrity score
    that ``m``'s calibration in ``cal_set`` gives the heatmap of ``m`` that
    the result carries in ``extras["map_heatmaps"]``, as if ``m`` had run
    alone (its reliability map, pooled statistics and global statistics).
    NaN where the map did not apply, is not in the result or has no
    calibration. Empty for a method that is not stacked.

    Parameters
    ----------
    image : LoadedImage
        The image the method ran on.
    loc : Localization
        The method's own (uncalibrated) result.
    cal_set : Calibration
        Where each map's calibration is looked up.
    names : collection of str, optional
        Compute only these features (e.g. the integrity model's ``features``).

    Returns
    -------
    dict
        ``sub_<map>`` -> float (logit; NaN as above).
    """
    heatmaps = loc.extras.get("map_heatmaps") or {}
    out: dict[str, float] = {}
    todo: dict[str, tuple[Heatmap, MethodCalibration]] = {}
    for m in STACKED.get(loc.method, ()):
        name = stacked_feature(m)
        if names is not None and name not in names:
            continue
        hm, cal = heatmaps.get(m), cal_set.get(m)
        if hm is None or cal is None or not hm.applicable:
            out[name] = float("nan")
        else:
            todo[m] = (hm, cal)
    # a dense map's reliability depends on its family only: one per family; families and maps are
    # independent steps (run_tasks)
    first: dict[str, Heatmap] = {}
    for m, (hm, _) in todo.items():
        first.setdefault(FAMILY.get(m, "noise"), hm)
    rel_of = dict(zip(first, run_tasks([functools.partial(_map_reliability, image, hm) for hm in first.values()])))

    def score(m: str) -> float:
        hm, cal = todo[m]
        nums = numeric_params(hm.params)  # = decision_inputs' params: the wrapper copies hm.params
        rel = rel_of[FAMILY.get(m, "noise")]
        return float(logit(_integrity(cal, np.asarray(hm.values, np.float32), rel, method_stats(m, nums))[1]))

    out.update(zip(map(stacked_feature, todo), run_tasks([functools.partial(score, m) for m in todo])))
    return {k: out[k] for k in map(stacked_feature, STACKED.get(loc.method, ())) if k in out}


def _map_reliability(image: LoadedImage, hm: Heatmap) -> np.ndarray:
    """The reliability map of a dense map's heatmap, as if the map had run alone."""
    return reliability_map(image, heatmap_to_localization(hm))


def _calibrated(loc: Localization, cal: MethodCalibration, u: np.ndarray, rel: np.ndarray,
                stats: dict[str, float], source: str) -> Localization:
    feats, evidence, sub = _integrity(cal, u, rel, stats)
    norm = image_norm(sub)  # the same subsample (image_norm of u would take it again)
    split = pixel_split(loc.method, stats)
    p = cal.calibrated(u, evidence, norm=norm, split=split)
    score = cal.score(feats)  # at the operating prior (the image offset)
    info = {"file": source, "integrity_features": feats, "evidence": evidence, "image_offset": cal.image_offset}
    objects = _objects_decided(loc, cal, evidence, norm, split)
    hm = dataclasses.replace(loc.heatmap, values=p, params={**loc.heatmap.params, "calibration": info})
    # the stacked maps were read by the integrity score; the calibrated result does not keep them
    extras = {**{k: v for k, v in loc.extras.items() if k != "map_heatmaps"}, "uncalibrated": u}
    return dataclasses.replace(loc, heatmap=hm, mask=p >= 0.5, score=score, reliability=rel, extras=extras,
                               objects=objects, params={**loc.params, "calibration": info})


def _objects_decided(loc: Localization, cal: MethodCalibration, evidence: float,
                     norm: tuple[float, float], split: bool) -> tuple[Any, ...] | None:
    """Object details with the calibrated value as ``score`` and ``selected = score >= 0.5``."""
    labels = loc.extras.get("labels")
    if loc.objects is None or labels is None:
        return loc.objects
    u = np.zeros(len(loc.objects) + 1, np.float32)
    u[np.asarray(labels).ravel()] = np.asarray(loc.heatmap.values).ravel()  # one value per object
    p = cal.calibrated(u, evidence, norm=norm, split=split)
    return tuple(dataclasses.replace(d, score=float(p[d.label]), selected=bool(p[d.label] >= 0.5))
                 for d in loc.objects)


def decide(image: LoadedImage, loc: Localization, *, calibration: Any = None) -> Localization:
    """Turn a method's own result into calibrated decisions (see :mod:`noisestat.decisions.calibration`).

    Parameters
    ----------
    image : LoadedImage
        The image the method ran on.
    loc : Localization
        The method's result (:func:`noisestat.registry.localize`).
    calibration : None, False, path or Calibration, default None
        ``None``: the calibration shipped with noisestat; ``False``: none.

    Returns
    -------
    Localization
        ``heatmap.values`` calibrated probabilities that a pixel is spliced,
        ``mask = heatmap.values >= 0.5``, ``score`` the integrity score (the
        probability that the image is manipulated at the calibration's
        operating prior, so that ``score >= 0.5`` is a decision at about 5 %
        false alarms on the fitting set; NaN when the method does not apply;
        the evidence at the fitting prior and the offset are in
        ``params["calibration"]``), ``reliability`` the reliability map, and the method's own
        values in ``extras["uncalibrated"]``. A method without a calibration
        (``calibration=False``, or a user-registered method the file does not
        cover) keeps its own values, mask and score;
        ``params["calibration"]`` then says so.
    """
    cal_set = resolve_calibration(calibration)
    u, rel, nums = decision_inputs(image, loc)
    stats = method_stats(loc.method, nums)
    cal = cal_set.get(loc.method) if cal_set is not None else None
    if cal is None:
        why = "none requested" if cal_set is None else f"none for method {loc.method!r} in the calibration file"
        return _uncalibrated(loc, rel, f"uncalibrated ({why}): the method's own values, mask and score")
    if not loc.applicable:
        z = np.zeros(loc.heatmap.shape, bool)
        return dataclasses.replace(loc, mask=z, score=float("nan"), reliability=rel,
                                   params={**loc.params, "calibration": {"file": cal_set.source}})
    stats.update(stacked_scores(image, loc, cal_set, cal.features))
    return _calibrated(loc, cal, u, rel, stats, cal_set.source)


def localize(image: Any, *, method: str | None = None, calibration: Any = None, **params: Any) -> Localization:
    """Run a registered method on one image and return calibrated decisions.

    Parameters
    ----------
    image : array_like, str, path or LoadedImage
        The image (see :func:`noisestat.load_image`).
    method : str, optional
        A name from :func:`noisestat.methods`; default
        :func:`noisestat.registry.default_method`.
    calibration : None, False, path or Calibration, default None
        See :func:`decide`.
    **params
        Method parameters (``noisestat.get_method(name).params`` has the defaults).

    Returns
    -------
    Localization
        Calibrated heatmap (probability that each pixel is spliced), its
        decision ``mask = heatmap >= 0.5``, the integrity ``score`` (the
        probability that the image is manipulated), the ``reliability`` map
        and timings.

    Raises
    ------
    ValueError
        Unknown method or parameter, or an input the method cannot use.

    Examples
    --------
    >>> import numpy as np, noisestat
    >>> img = np.random.default_rng(0).normal(128, 5, (64, 64)).clip(0, 255)
    >>> loc = noisestat.localize(img, method="median_residual")
    >>> loc.heatmap.shape, loc.reliability.shape
    ((64, 64), (64, 64))
    >>> bool(np.array_equal(loc.mask, loc.heatmap.values >= 0.5))
    True
    """
    spec = get_method(method if method is not None else default_method())
    t_in = time.perf_counter()
    img = image if isinstance(image, LoadedImage) else _load(image)
    t_load = time.perf_counter() - t_in
    raw = run_method(img, method=spec.name, **params)
    t0 = time.perf_counter()
    out = decide(img, raw, calibration=calibration)
    t1 = time.perf_counter()
    timings = dict(out.timings)
    timings.update(load=t_load, decisions=t1 - t0, total=timings.get("total", 0.0) + t_load + (t1 - t0))
    return dataclasses.replace(out, timings=timings)


def _load(image: Any) -> LoadedImage:
    from ..io import load_image

    return load_image(image)

