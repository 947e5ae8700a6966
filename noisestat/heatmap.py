"""Fixed mapping from a raw statistic to a heatmap in [0, 1].

Heatmap values are comparable across images: they are never min-max
normalised per image. The mapping is a robust z-score of the raw statistic
(median and MAD over the image, or over a reference region) passed through a
logistic function:

.. math::

    z = \\frac{x - \\operatorname{median}(x)}{1.4826\\,\\operatorname{MAD}(x)}, \\qquad
    h = \\frac{1}{1 + \\exp(-(z' - z_0)/s)}

with :math:`z' = |z|` for two-sided statistics (a noise level that is either
higher or lower than the rest of the image is suspicious) and :math:`z' = z`
for one-sided ones. Defaults :math:`z_0 = 2.5`, :math:`s = 0.5`: a pixel 2.5
robust standard deviations away from the image's typical value maps to 0.5.
"""

from __future__ import annotations

import numpy as np

__all__ = ["robust_logistic", "robust_z", "Z_CENTER", "Z_SCALE", "LOG_MIN_SCALE"]

Z_CENTER = 2.5
Z_SCALE = 0.5
#: Smallest spread used for the z-score of a log noise level: a 5 % change in
#: noise level is at most one robust SD. On an image with one uniform noise
#: level, estimation scatter alone would otherwise push pixels past 0.5.
LOG_MIN_SCALE = 0.05


def robust_z(raw: np.ndarray, *, reference: np.ndarray | None = None, min_scale: float = 0.0) -> np.ndarray:
    """Robust z-score of ``raw`` (float32), using ``raw[reference]`` for the statistics.

    ``min_scale`` is a lower bound on the spread (in the units of ``raw``).
    """
    x = np.asarray(raw, dtype=np.float32)
    ref = x if reference is None else x[reference]
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.zeros_like(x)
    med = float(np.median(ref))
    mad = float(np.median(np.abs(ref - med))) * 1.4826
    if not mad > 0:
        # more than half the values equal the median: fall back on the mean
        # absolute deviation, then on an absolute floor
        mad = float(np.mean(np.abs(ref - med))) * 1.2533
    floor = 1e-6 * max(abs(med), 1.0)
    scale = max(mad, floor, float(min_scale))
    z = (x - np.float32(med)) / np.float32(scale)
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def robust_logistic(
    raw: np.ndarray,
    *,
    two_sided: bool = True,
    center: float = Z_CENTER,
    scale: float = Z_SCALE,
    reference: np.ndarray | None = None,
    min_scale: float = 0.0,
) -> np.ndarray:
    """Map ``raw`` to [0, 1] by the package's fixed robust-z logistic (see module doc).

    Maps of log noise levels pass ``min_scale=LOG_MIN_SCALE``.
    """
    z = robust_z(raw, reference=reference, min_scale=min_scale)
    if two_sided:
        z = np.abs(z)
    t = np.clip((z - np.float32(center)) / np.float32(scale), -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(-t))).astype(np.float32)
