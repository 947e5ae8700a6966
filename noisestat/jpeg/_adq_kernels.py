"""Numba kernel of the aligned double-JPEG map: the double-quantisation factor smoothed by rounding.

Private module: :mod:`noisestat.jpeg.adq` validates the inputs; the kernel
only sees plain scalars.

:func:`smoothed_dq_factor` evaluates, for the bins ``x = -m..m``,

.. math::

    n_\\sigma(x) = \\frac{q_1}{q_2} \\sum_k \\left[
        \\Phi\\!\\left(\\frac{(x + \\tfrac12) q_2 - q_1 k - b}{\\sigma}\\right) -
        \\Phi\\!\\left(\\frac{(x - \\tfrac12) q_2 - q_1 k - b}{\\sigma}\\right)\\right],

the factor by which the histogram of a coefficient quantised with step ``q1``,
dequantised, moved by a rounding error ``e ~ N(b, sigma^2)`` and quantised again
with step ``q2`` differs from a single quantisation with ``q2`` (Bianchi, De Rosa
& Piva 2011). Only the terms ``k`` within ``8 sigma`` of the bin are summed (the
rest are below ``1e-15``). With ``sigma -> 0`` it is the exact factor
:func:`noisestat.jpeg.adq.dq_factor`.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["smoothed_dq_factor", "mixture_em"]


@jit
def smoothed_dq_factor(m, q1, q2, sig, bias):
    """``n_sigma(x)`` for ``x = -m..m`` (float64, length ``2 m + 1``); ``sig > 0`` in DCT units."""
    out = np.zeros(2 * m + 1, np.float64)
    scale = 1.0 / (sig * math.sqrt(2.0))
    for i in range(2 * m + 1):
        x = i - m
        lo = (x - 0.5) * q2 - bias
        hi = (x + 0.5) * q2 - bias
        k0 = int(math.floor((lo - 8.0 * sig) / q1))
        k1 = int(math.ceil((hi + 8.0 * sig) / q1))
        s = 0.0
        for k in range(k0, k1 + 1):
            t = q1 * k
            s += 0.5 * (math.erf((hi - t) * scale) - math.erf((lo - t) * scale))
        out[i] = s * q1 / q2
    return out


@jit
def mixture_em(h, a1, cols, a0, steps):
    """``(alpha, gain)`` per row of ``a1[:, cols]`` (n, k) for histogram ``h`` (k,) against ``a0`` (k,).

    ``cols`` (k,) int64 picks the bins of ``a1`` (n, K) that enter (no copy of the rows);
    ``h``, ``a0`` and ``a1`` float64, ``a0`` and ``a1`` > 0.
    """
    n, k = a1.shape[0], cols.size
    total = 0.0
    for j in range(k):
        total += h[j]
    alpha = np.full(n, 0.5)
    gain = np.zeros(n)
    for c in range(n):
        a = 0.5
        for _ in range(steps):
            s = 0.0
            for j in range(k):
                t = a * a1[c, cols[j]]
                s += h[j] * t / (t + (1.0 - a) * a0[j])
            a = s / total
        g = 0.0
        for j in range(k):
            g += h[j] * math.log((a * a1[c, cols[j]] + (1.0 - a) * a0[j]) / a0[j])
        alpha[c] = a
        gain[c] = g
    return alpha, gain


@register_warmup
def _warmup():
    smoothed_dq_factor(4, 3.0, 2.0, 0.3, 0.0)
    mixture_em(np.ones(3), np.full((2, 3), 1.0 / 3.0), np.arange(3), np.full(3, 1.0 / 3.0), 2)
