"""Calibrated heatmaps and integrity scores: the fixed per-method models and how they are applied.

Each registered method has one :class:`MethodCalibration`, stored as plain
JSON coefficients in ``noisestat/decisions/calibration.json`` together with
its provenance (what it was fitted on, the prior, the fitting command).
With :math:`x = \\operatorname{logit}(u)` of the method's own (uncalibrated)
heatmap value :math:`u`:

1. first stage, per pixel: :math:`p_1 = \\sigma(a_1 x + b_1)`;
2. integrity score: :math:`s = \\sigma(\\beta_0 + \\sum_k \\beta_k
   (f_k - \\mu_k)/\\sigma_k)` of the pooled features :math:`f` of
   :math:`p_1` weighted by the reliability map
   (:func:`noisestat.decisions.integrity.image_features`);
3. calibrated heatmap: :math:`p = \\sigma(a x + d z + b + c\\,\\operatorname{logit}(s) + o_p)`
   with :math:`z = (x - m) / s_x` the per-image standardised value (mean
   :math:`m` and standard deviation :math:`s_x` of :math:`x` over the image,
   :func:`image_norm`; ``pixel_z`` = :math:`d`), with :math:`a > 0`,
   :math:`d \\ge 0` and :math:`c \\ge 0`. A method of
   :data:`~noisestat.decisions.integrity.PIXEL_SPLITS` (``objects``, whose map
   is made of the double-JPEG map where a trace exists and of the noise floor
   elsewhere; ``adq``, whose map is evidence only where a trace exists) has a
   second set ``pixel_split`` = :math:`(a, b, c, d)`, fitted on the images
   whose split feature is 1 and used on them. :math:`o_p` is the pixel
   offset (``pixel_offset``; ``pixel_split_offset`` with ``pixel_split``, each
   part chosen on its own images): the shift that gives the fitting set's spliced
   images their best mean mask F1 while its pristine images keep at most
   :data:`~noisestat.decisions.fit.PIXEL_FPR` (1 %) of their pixels at
   ``p >= 0.5`` (:func:`~noisestat.decisions.fit.pixel_offset`), i.e. the
   posterior at an operating pixel prior other than the fitting set's: above
   it for most maps (a pixel posterior at a prior of a few per cent calls too
   little for a useful mask), below it for a map that flags more than the
   budget at the fitting prior.

Within one image :math:`p` is a strictly increasing function of :math:`u`
(per-image F1-best and AUC are unchanged, no ties are added); across images
the evidence that the image was manipulated at all moves the level, so that
``p >= 0.5`` is a decision at the fitting set's pixel prior. :math:`\\sigma` is the
logistic function.

The integrity score a user gets is :math:`s^* = \\sigma(t + o)`, with
:math:`t` the linear predictor of step 2 (:math:`s = \\sigma(t)`, the
*evidence* at the fitting set's prior of about one spliced image in two) and
:math:`o \\le 0` the image offset (``image.offset``): the logit shift that
puts ``s* >= 0.5`` at no more than :data:`~noisestat.decisions.fit.IMAGE_FPR`
(5 %) false alarms on the fitting set's pristine images (out-of-fold), i.e.
the posterior at the operating prior
:math:`\\pi^* = \\sigma(\\operatorname{logit}\\pi_{fit} + o)` recorded in ``fit``
(Neyman-Pearson operating point; 0 where the fitting set's pristine images
already stay below 0.5). Steps 3 and the stacked features read the evidence
:math:`s` they were fitted on, so the offset moves no pixel value.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import _decisions_kernels as _k
from .integrity import MAX_PIXELS, logit, subsample_step

__all__ = ["MethodCalibration", "Calibration", "image_norm", "default_calibration", "load_calibration", "sigmoid",
           "CALIBRATION_FILE", "FORMAT"]

CALIBRATION_FILE = "calibration.json"
FORMAT = 1
#: the uncalibrated value is clipped to [U_EPS, 1 - U_EPS] before its logit
U_EPS = 1e-7


def sigmoid(t: Any) -> Any:
    """The logistic function, overflow-free."""
    t = np.clip(np.asarray(t, dtype=np.float64), -60.0, 60.0)
    return 1.0 / (1.0 + np.exp(-t))


def _sigmoid_logit(u: Any, a: float, b: float, k: float) -> np.ndarray:
    """``sigmoid(a * logit(u, U_EPS) + b + k)`` as float32, in one fused float64 pass (same values)."""
    v = np.asarray(u)
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(np.float64)
    out = np.empty(v.shape, np.float32)
    _k.sigmoid_logit(np.ascontiguousarray(v).reshape(-1), U_EPS, float(a), float(b), float(k), out.reshape(-1))
    return out


#: the per-image scale of ``logit(u)`` is at least this (a constant map has z = 0 everywhere)
NORM_MIN_SCALE = 1e-3


def image_norm(u: Any) -> tuple[float, float]:
    """Per-image location and scale of ``x = logit(u)``: mean and standard deviation (at least
    :data:`NORM_MIN_SCALE`) over the regular subsample the integrity features pool
    (:func:`~noisestat.decisions.integrity.subsample_step`, at most
    :data:`~noisestat.decisions.integrity.MAX_PIXELS` values)."""
    v = np.asarray(u)
    if v.ndim == 2:
        step = subsample_step(v.size, MAX_PIXELS)
        sub = v[::step, ::step]
    else:
        sub = v.ravel()[:: max(1, v.size // MAX_PIXELS)]
    x = logit(sub, U_EPS)
    return float(x.mean()), max(float(x.std()), NORM_MIN_SCALE)


@dataclass(frozen=True)
class MethodCalibration:
    """The fitted decision model of one method (see the module docstring for the equations)."""

    method: str
    stage1: tuple[float, float]
    pixel: tuple[float, float, float]
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    fit: Mapping[str, Any] = field(default_factory=dict)
    pixel_z: float = 0.0
    pixel_split: tuple[float, float, float, float] | None = None
    image_offset: float = 0.0
    pixel_offset: float = 0.0
    pixel_split_offset: float = 0.0

    def __post_init__(self) -> None:
        g = self.pixel_split
        ok_gated = g is None or (len(g) == 4 and g[0] > 0 and g[2] >= 0 and g[3] >= 0)
        if not (self.stage1[0] > 0 and self.pixel[0] > 0 and self.pixel[2] >= 0 and self.pixel_z >= 0
                and ok_gated):
            raise ValueError(f"calibration of {self.method!r}: the slopes must be a1 > 0, a > 0, c >= 0, d >= 0 "
                             f"(strictly increasing mappings); got stage1={self.stage1}, pixel={self.pixel}, "
                             f"pixel_z={self.pixel_z}, pixel_split={g}")
        if not (math.isfinite(self.pixel_offset) and math.isfinite(self.pixel_split_offset)):
            raise ValueError(f"calibration of {self.method!r}: pixel offset must be finite, "
                             f"got {self.pixel_offset!r} (split: {self.pixel_split_offset!r})")
        if not (math.isfinite(self.image_offset) and self.image_offset <= 0.0):
            raise ValueError(f"calibration of {self.method!r}: image offset must be finite and <= 0 (it only ever "
                             f"raises the bar for calling an image manipulated); got {self.image_offset!r}")
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ValueError(f"calibration of {self.method!r}: {n} features but {len(self.mean)} means, "
                             f"{len(self.scale)} scales and {len(self.coef)} coefficients")

    def x(self, u: np.ndarray) -> np.ndarray:
        """The logit of the uncalibrated value (float64)."""
        return logit(u, U_EPS)

    def first_stage(self, u: np.ndarray) -> np.ndarray:
        """:math:`p_1` of the uncalibrated heatmap ``u`` (float32)."""
        a1, b1 = self.stage1
        return _sigmoid_logit(u, a1, b1, 0.0)

    def linear(self, feats: Mapping[str, float]) -> float:
        """The integrity model's linear predictor :math:`t` of one image's feature dict (a missing or
        NaN feature takes its mean)."""
        t = self.intercept
        for name, mu, sd, b in zip(self.features, self.mean, self.scale, self.coef):
            v = feats.get(name, math.nan)
            v = mu if not math.isfinite(v) else v
            t += b * (v - mu) / sd
        return float(t)

    def evidence(self, feats: Mapping[str, float]) -> float:
        """:math:`s = \\sigma(t)`: the probability of manipulation at the fitting set's prior (what the
        final pixel mapping and the stacked features read)."""
        return float(sigmoid(self.linear(feats)))

    def score(self, feats: Mapping[str, float]) -> float:
        """The integrity score a user gets, :math:`\\sigma(t + o)` (see the module docstring)."""
        return float(sigmoid(self.linear(feats) + self.image_offset))

    def pixel_model(self, *, split: bool = False) -> tuple[float, float, float, float]:
        """``(a, b, c, d)`` of the final pixel mapping: ``pixel_split`` on an image whose split
        feature is 1 (``split``) when the calibration has one, else ``pixel`` and ``pixel_z``."""
        if split and self.pixel_split is not None:
            return self.pixel_split
        return (*self.pixel, self.pixel_z)

    def pixel_shift(self, *, split: bool = False) -> float:
        """The pixel offset :math:`o_p` of the mapping :meth:`pixel_model` returns: ``pixel_split_offset``
        with ``pixel_split`` (each part of a split mapping has its own operating point), else
        ``pixel_offset``."""
        return self.pixel_split_offset if split and self.pixel_split is not None else self.pixel_offset

    def calibrated(self, u: np.ndarray, score: float, *, norm: tuple[float, float] | None = None,
                   split: bool = False) -> np.ndarray:
        """The calibrated heatmap :math:`p` (float32).

        ``score``: the image's evidence :math:`s` (:meth:`evidence`, the
        integrity model at the fitting prior, which the mapping was fitted on).
        ``norm``: the image's :func:`image_norm` ``(m, s)`` (computed from
        ``u`` when None; pass it when ``u`` holds only some of the image's
        values, e.g. one per object). With ``z = (x - m) / s`` the mapping
        ``a x + d z`` is, within an image, one line of slope ``a + d / s``.
        ``split``: whether the image's split feature
        (:data:`~noisestat.decisions.integrity.PIXEL_SPLITS`) is 1 (:meth:`pixel_model`).
        """
        a, b, c, d = self.pixel_model(split=split)
        if d > 0:
            m, sd = image_norm(u) if norm is None else norm
            a, b = a + d / sd, b - d * m / sd
        return _sigmoid_logit(u, a, b + self.pixel_shift(split=split), c * float(logit(score)))

    def to_dict(self) -> dict[str, Any]:
        other = {} if self.pixel_split is None else {"pixel_split": list(self.pixel_split)}
        return {"stage1": list(self.stage1), "pixel": list(self.pixel), "pixel_z": self.pixel_z, **other,
                "pixel_offset": self.pixel_offset, "pixel_split_offset": self.pixel_split_offset,
                "image": {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                          "coef": list(self.coef), "intercept": self.intercept, "offset": self.image_offset},
                "fit": dict(self.fit)}

    @classmethod
    def from_dict(cls, method: str, d: Mapping[str, Any]) -> MethodCalibration:
        img = d["image"]
        return cls(method=method, stage1=tuple(float(v) for v in d["stage1"]),
                   pixel=tuple(float(v) for v in d["pixel"]), features=tuple(img["features"]),
                   mean=tuple(float(v) for v in img["mean"]), scale=tuple(float(v) for v in img["scale"]),
                   coef=tuple(float(v) for v in img["coef"]), intercept=float(img["intercept"]),
                   fit=dict(d.get("fit", {})), pixel_z=float(d.get("pixel_z", 0.0)),
                   pixel_split=None if d.get("pixel_split") is None else tuple(float(v) for v in d["pixel_split"]),
                   image_offset=float(img.get("offset", 0.0)), pixel_offset=float(d.get("pixel_offset", 0.0)),
                   pixel_split_offset=float(d.get("pixel_split_offset", 0.0)))


@dataclass(frozen=True)
class Calibration:
    """The calibrations of several methods and where they came from."""

    methods: Mapping[str, MethodCalibration]
    provenance: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def get(self, method: str) -> MethodCalibration | None:
        return self.methods.get(method)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "provenance": dict(self.provenance),
                "methods": {k: v.to_dict() for k, v in sorted(self.methods.items())}}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "") -> Calibration:
        if d.get("format") != FORMAT:
            raise ValueError(f"calibration {source or '(dict)'}: format {d.get('format')!r}, expected {FORMAT}")
        return cls({k: MethodCalibration.from_dict(k, v) for k, v in d["methods"].items()},
                   dict(d.get("provenance", {})), source)


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file written by ``noisestat calibrate-maps`` (or the packaged one).

    Raises
    ------
    ValueError
        The file is not a calibration of this format.
    """
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"calibration={str(path)!r}: cannot read it as JSON ({exc})") from None
    if not isinstance(d, dict) or "methods" not in d:
        raise ValueError(f"calibration={str(path)!r}: not a calibration file (no 'methods' key)")
    return Calibration.from_dict(d, source=str(p))


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The calibration shipped in the package (read once per process)."""
    res = resources.files("noisestat.decisions").joinpath(CALIBRATION_FILE)
    if not res.is_file():
        return Calibration({}, {"note": "no calibration shipped"}, "")
    return Calibration.from_dict(json.loads(res.read_text(encoding="utf-8")), source=CALIBRATION_FILE)
