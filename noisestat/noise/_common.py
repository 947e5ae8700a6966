"""Helpers shared by the channel-wise scalar noise estimators (MAD, residual, weak texture)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: note of an estimate that came out exactly 0
ZERO_NOTE = "the estimate is 0: the region shows no noise (constant or noise-free)"


def unusable_pixels(channel: np.ndarray, white: float, region: np.ndarray | None) -> np.ndarray:
    """Boolean map of the pixels an estimator must not use: clipped (``<= 0`` or ``>= white``) or outside ``region``."""
    bad = (channel <= 0) | (channel >= white)
    if region is not None:
        bad |= ~region
    return bad


def rms_of_channels(sigmas: Sequence[float]) -> float:
    """Root mean square of the finite per-channel estimates (NaN when none is finite)."""
    finite = [s for s in sigmas if np.isfinite(s)]
    return math.sqrt(sum(s * s for s in finite) / len(finite)) if finite else math.nan
