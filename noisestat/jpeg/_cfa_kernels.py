"""Numba kernel of the CFA map's mixture fit (:mod:`noisestat.jpeg.cfa`).

Private module: the public wrapper validates its inputs; the kernel only sees
C-contiguous float64 / int64 arrays. Serial (the EM is a sequence of passes
over the blocks; results do not depend on the thread count).
"""

from __future__ import annotations

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["em_level_mixture"]


@jit(error_model="numpy")
def em_level_mixture(x, k, mu, v1, v0, pi, max_iter, tol, var_floor):
    """EM of ``x ~ pi N(0, v0) + (1 - pi) N(mu[k], v1[k])`` with ``mu >= 0``, in place on ``mu``, ``v1``.

    One iteration: responsibilities ``r0`` of the zero-mean component, then
    ``pi = mean r0``, ``v0 = sum r0 x^2 / sum r0``, per bin ``j``
    ``mu_j = max(sum r1 x / sum r1, 0)``, ``v1_j = sum r1 (x - mu_j)^2 / sum r1``
    (bins without weight keep their values; variances floored at ``var_floor``).
    Stops when ``pi`` changes by less than ``tol``. Returns ``(pi, v0, iterations)``.
    """
    n = x.size
    nk = mu.size
    r1 = np.empty(n)
    w1 = np.empty(nk)
    m1 = np.empty(nk)
    m2 = np.empty(nk)
    it = 0
    while it < max_iter:
        it += 1
        c0 = pi / np.sqrt(v0)
        s0 = 0.0
        q0 = 0.0
        for j in range(nk):
            w1[j] = 0.0
            m1[j] = 0.0
        for i in range(n):
            j = k[i]
            xi = x[i]
            d = xi - mu[j]
            f0 = c0 * np.exp(-0.5 * xi * xi / v0)
            f1 = (1.0 - pi) / np.sqrt(v1[j]) * np.exp(-0.5 * d * d / v1[j])
            r0 = f0 / max(f0 + f1, 1e-300)
            r1[i] = 1.0 - r0
            s0 += r0
            q0 += r0 * xi * xi
            w1[j] += 1.0 - r0
            m1[j] += (1.0 - r0) * xi
        new_pi = s0 / n
        if s0 > 0.0:
            v0 = max(q0 / s0, var_floor)
        for j in range(nk):
            if w1[j] > 0.0:
                mu[j] = max(m1[j] / w1[j], 0.0)
            m2[j] = 0.0
        for i in range(n):
            j = k[i]
            d = x[i] - mu[j]
            m2[j] += r1[i] * d * d
        for j in range(nk):
            if w1[j] > 0.0:
                v1[j] = max(m2[j] / w1[j], var_floor)
        done = abs(new_pi - pi) < tol
        pi = new_pi
        if done:
            break
    return pi, v0, it


@register_warmup
def _warmup() -> None:
    x = np.random.default_rng(0).normal(0.5, 0.3, 64)
    em_level_mixture(x, np.zeros(64, np.int64), np.full(1, 0.5), np.full(1, 0.1), 0.1, 0.5, 5, 1e-6, 1e-6)
