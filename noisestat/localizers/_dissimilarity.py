"""Cosine-dissimilarity matrix, Algorithm 1 and feature standardisation.

Plain numpy: the matrices are n_objects x n_objects (a few to a few dozen), so
there is nothing for a JIT kernel to gain here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cosine_dissimilarity", "algorithm1", "standardize_features", "Z_FLOOR"]

#: Minimum spread (log units) of a feature across objects used for z-scores:
#: a 10 % difference in noise level is one unit. Keeps near-identical objects
#: from producing huge z-scores out of estimation noise.
Z_FLOOR = 0.1


def cosine_dissimilarity(features: np.ndarray) -> np.ndarray:
    """``DM[i, j] = 1 - cos(S_i, S_j)`` for the rows ``S_i`` of ``features``.

    Parameters
    ----------
    features : ndarray, shape (n, d)
        One feature vector per object. Rows must be finite.

    Returns
    -------
    ndarray, shape (n, n), float64
        Symmetric, zero diagonal. A zero row has no direction: its
        dissimilarity to every other row is defined as 1 (orthogonal), and 0
        to another zero row.

    Notes
    -----
    For non-negative features (the paper's noise levels) ``DM`` lies in
    [0, 1]; for signed features in [0, 2]. The paper's localizer uses
    :math:`L_D(S_i, S_j) = 1 - \\frac{S_i \\cdot S_j}{\\|S_i\\|\\,\\|S_j\\|}`.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features: expected shape (n, d), got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features: contains NaN or inf; drop invalid objects first")
    norms = np.sqrt(np.sum(f * f, axis=1))
    zero = norms == 0
    unit = np.where(zero[:, None], 0.0, f / np.where(zero, 1.0, norms)[:, None])
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    dm = 1.0 - cos
    both_zero = zero[:, None] & zero[None, :]
    dm[both_zero] = 0.0
    np.fill_diagonal(dm, 0.0)
    return (dm + dm.T) * 0.5


def algorithm1(dm: np.ndarray) -> tuple[int, tuple[int, int], np.ndarray]:
    """The paper's Algorithm 1 on a dissimilarity matrix.

    1. Find the pair ``(a, b)`` of maximum dissimilarity ``DM[a, b]``.
    2. Of the two, the object whose summed dissimilarity to all others is
       larger is reported as spliced.

    Parameters
    ----------
    dm : ndarray, shape (n, n)
        Symmetric dissimilarity matrix, n >= 2.

    Returns
    -------
    spliced : int
        Index of the selected object (the lower index on an exact tie).
    pair : (int, int)
        The maximum-dissimilarity pair ``(a, b)`` with ``a < b`` (first in
        row-major order on ties).
    totals : ndarray, shape (n,)
        ``sum_k DM[i, k]`` for every object.
    """
    d = np.asarray(dm, dtype=np.float64)
    n = d.shape[0]
    if d.ndim != 2 or d.shape[1] != n or n < 2:
        raise ValueError(f"dm: expected a square matrix with n >= 2, got shape {d.shape}")
    iu = np.triu_indices(n, k=1)
    k = int(np.argmax(d[iu]))
    a, b = int(iu[0][k]), int(iu[1][k])
    totals = d.sum(axis=1)
    spliced = a if totals[a] >= totals[b] else b
    return spliced, (a, b), totals


def standardize_features(
    log_features: np.ndarray, *, reference: np.ndarray | None = None, floor: float = Z_FLOOR
) -> np.ndarray:
    """Robust z-scores of log features across objects, anchored for cosine use.

    Parameters
    ----------
    log_features : ndarray, shape (n, d)
        Logarithms of positive features (noise levels, ratios), one row per object.
    reference : ndarray, shape (d,), optional
        Typical value of each feature. Default: the median over objects (used
        with three or more objects; with fewer, pass the whole-image value).
    floor : float, default 0.1
        Minimum spread per feature (log units).

    Returns
    -------
    ndarray, shape (n, d + 1)
        ``[1, z_1, ..., z_d]`` per object. The leading constant anchors the
        vectors: a typical object (all ``z`` near 0) points along the first
        axis, and ``1 - cos`` to it grows monotonically with the object's
        distance, ``1 - 1 / sqrt(1 + |z|^2)``. Without the anchor, cosine
        would be blind to how *far* an object deviates.
    """
    x = np.asarray(log_features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"log_features: expected shape (n, d), got {x.shape}")
    med = np.median(x, axis=0) if reference is None else np.asarray(reference, dtype=np.float64)
    spread = 1.4826 * np.median(np.abs(x - np.median(x, axis=0)), axis=0) if x.shape[0] >= 3 else np.zeros(x.shape[1])
    spread = np.maximum(spread, floor)
    z = (x - med) / spread
    return np.hstack([np.ones((x.shape[0], 1)), z])
