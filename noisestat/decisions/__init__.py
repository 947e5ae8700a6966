"""Decisions a user can trust: calibrated heatmaps, masks, reliability maps and integrity scores.

:func:`localize` runs a registered method (:func:`noisestat.registry.localize`
gives its own, uncalibrated result) and then :func:`decide`: a reliability
map (:mod:`.reliability`), an integrity score from pooled statistics of the
heatmap weighted by it (:mod:`.integrity`), and calibrated probabilities per
pixel (:mod:`.calibration`) whose 0.5 level is the mask. The models are JSON
coefficients fitted on synthetic data (``benchmarks/fit_decisions.py``) and
re-fittable on a user's own benchmark run (``noisestat calibrate-maps``,
:mod:`.fit`).
"""

from .calibration import Calibration, MethodCalibration, default_calibration, load_calibration
from .decide import decide, decision_inputs, localize, resolve_calibration
from .integrity import image_features
from .reliability import reliability_map

__all__ = ["localize", "decide", "decision_inputs", "resolve_calibration", "Calibration", "MethodCalibration",
           "default_calibration", "load_calibration", "image_features", "reliability_map"]
