"""Eigenvalues of many small symmetric matrices at once.

The PCA noise estimators need the whole spectrum of thousands of small
covariance matrices (one per window or block, ``d`` up to a few dozen). A
LAPACK call per matrix (``np.linalg.eigvalsh``) spends most of its time in
unblocked level-2 code and per-call overhead (about 170 us for ``d = 48``).
Here the matrices are processed side by side: the Householder reduction to
tridiagonal form runs on ``L`` matrices in lock step, with the matrix index
innermost (``a[i, j, lane]``), so that every step is a unit-stride loop over
lanes that the compiler vectorises; the tridiagonal eigenvalues then come
from the implicit QL iteration, also side by side, each lane with its own
leading index (a lane that meets an exact split is finished alone).

Kernels (Numba, cached, no fastmath: plain IEEE arithmetic, so a lane's result
does not depend on its neighbours or on how the loop was vectorised):

* :func:`tridiagonalize_lanes` -- Householder tridiagonalisation of a stack of
  lanes.
* :func:`tridiagonal_eigenvalues` -- eigenvalues of one symmetric tridiagonal
  matrix, ascending.
* :func:`eigvalsh_lanes` -- both, for the lanes of one stack.

:func:`eigvalsh_batch` is the array-level wrapper (validates, converts, chunks
the batch into lanes); it is what tests compare against ``np.linalg.eigvalsh``.

References
----------
.. [1] G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., Johns
   Hopkins University Press, 2013, sections 5.1.2 (Householder vectors), 8.3.1
   (Householder tridiagonalisation) and 8.3.5 (implicit symmetric QR/QL step).
   ISBN 978-1-4214-0794-4.
.. [2] H. Bowdler, R. S. Martin, C. Reinsch and J. H. Wilkinson, "The QR and QL
   algorithms for symmetric matrices", *Numerische Mathematik* 11 (1968),
   293-306. :doi:`10.1007/BF02166681`
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import jit, register_warmup

__all__ = ["LANES", "eigvalsh_batch", "eigvalsh_lanes", "tridiagonalize_lanes", "tridiagonal_eigenvalues"]

#: matrices reduced side by side by :func:`eigvalsh_batch` and the PCA maps (any count works; long
#: lane loops amortise the vectoriser's run-time checks: 32 lanes of d = 48 are 0.6 MB, within L2)
LANES = 32
#: QL iterations allowed per eigenvalue before the result is declared NaN (LAPACK allows 30)
MAX_QL_ITER = 60
_EPS = float(np.finfo(np.float64).eps)


@jit(fastmath=False)
def tridiagonalize_lanes(a, diag, off):  # pragma: no cover - compiled
    """Reduce each lane of ``a`` to symmetric tridiagonal form (Householder).

    Parameters
    ----------
    a : ndarray (n, n, L), float64, C-contiguous
        ``a[:, :, l]`` is lane ``l``'s symmetric matrix; only its lower
        triangle (``a[i, j]`` with ``j <= i``) is read, and it is overwritten.
    diag : ndarray (n, L), float64
        Output: the diagonal of each tridiagonal matrix.
    off : ndarray (n, L), float64
        Output: ``off[i]`` couples rows ``i`` and ``i + 1``; ``off[n - 1] = 0``.

    Notes
    -----
    Step ``k`` reflects column ``x = a[k+1:, k]`` onto ``alpha e_1`` with
    ``alpha = -sign(x_0) ||x||``, ``v = x - alpha e_1``, ``beta = 2 / v^T v``;
    with ``p = beta A' v`` (``A' = a[k+1:, k+1:]``) and
    ``w = p - (beta p^T v / 2) v``, the trailing block becomes
    ``A' - v w^T - w v^T`` (Golub and Van Loan, Alg. 8.3.1). A zero column
    (``beta = 0``) is already reduced. No scaling: entries up to about
    ``1e150`` in magnitude are safe.
    """
    n, _, nl = a.shape  # a run-time lane count: numba's loop vectoriser then handles the lane loops
    v = np.empty((n, nl))
    p = np.empty((n, nl))
    beta = np.empty(nl)
    for k in range(n - 2):
        beta[:] = 0.0
        for i in range(k + 1, n):
            for q in range(nl):
                beta[q] += a[i, k, q] * a[i, k, q]  # ||x||^2 for now
        for q in range(nl):
            x0 = a[k + 1, k, q]
            norm2 = beta[q]
            alpha = -math.copysign(math.sqrt(norm2), x0)
            vv = 2.0 * (norm2 + abs(x0) * math.sqrt(norm2))  # v^T v
            v[k + 1, q] = x0 - alpha
            beta[q] = 2.0 / vv if vv > 0.0 else 0.0
            off[k, q] = alpha if vv > 0.0 else x0
            diag[k, q] = a[k, k, q]
        for i in range(k + 2, n):
            for q in range(nl):
                v[i, q] = a[i, k, q]
        _reflect_trailing(a, v, p, beta, k + 1)
    if n >= 2:
        for q in range(nl):
            diag[n - 2, q] = a[n - 2, n - 2, q]
            off[n - 2, q] = a[n - 1, n - 2, q]
    for q in range(nl):
        diag[n - 1, q] = a[n - 1, n - 1, q]
        off[n - 1, q] = 0.0


@jit(fastmath=False)
def _reflect_trailing(a, v, p, beta, s):  # pragma: no cover - compiled
    """``A' <- A' - v w^T - w v^T`` on the lower triangle of ``a[s:, s:]`` of every lane (see above)."""
    n, _, nl = a.shape
    acc = np.empty(nl)
    kk = np.zeros(nl)
    p[s:] = 0.0
    for i in range(s, n):  # p = A' v from the lower triangle
        for q in range(nl):
            acc[q] = a[i, i, q] * v[i, q]
        for j in range(s, i):
            for q in range(nl):
                acc[q] += a[i, j, q] * v[j, q]
                p[j, q] += a[i, j, q] * v[i, q]
        for q in range(nl):
            p[i, q] += acc[q]
    for i in range(s, n):
        for q in range(nl):
            p[i, q] *= beta[q]
            kk[q] += p[i, q] * v[i, q]
    for q in range(nl):
        kk[q] *= 0.5 * beta[q]
    for i in range(s, n):
        for q in range(nl):
            p[i, q] -= kk[q] * v[i, q]  # p is now w
    for i in range(s, n):
        for j in range(s, i + 1):
            for q in range(nl):
                a[i, j, q] -= v[i, q] * p[j, q] + p[i, q] * v[j, q]


@jit(fastmath=False)
def tridiagonal_eigenvalues(d, e):  # pragma: no cover - compiled
    """Eigenvalues of the symmetric tridiagonal matrix ``(d, e)``, in place, ascending.

    Parameters
    ----------
    d : ndarray (n,), float64
        Diagonal; overwritten with the eigenvalues in ascending order.
    e : ndarray (n,), float64
        ``e[i]`` couples ``i`` and ``i + 1`` (``e[n - 1]`` is ignored);
        destroyed.

    Returns
    -------
    bool
        False if an eigenvalue did not converge in :data:`MAX_QL_ITER`
        iterations (``d`` is then all NaN).

    Notes
    -----
    Implicit QL with Wilkinson's shift (Bowdler et al. 1968): for the
    leading unreduced block ``l..m`` (``|e_m| <= eps (|d_m| + |d_{m+1}|)``
    splits it), the shift is the eigenvalue of the leading 2x2 closer to
    ``d_l``, and a sweep of plane rotations from ``m`` up to ``l`` chases the
    bulge; ``d_l`` has converged when ``e_l`` is negligible.
    """
    n = d.shape[0]
    e[n - 1] = 0.0
    for lo in range(n):
        it = 0
        while True:
            m = lo
            while m < n - 1 and abs(e[m]) > _EPS * (abs(d[m]) + abs(d[m + 1])):
                m += 1
            if m == lo:
                break
            if it == MAX_QL_ITER:
                d[:] = np.nan
                return False
            it += 1
            _ql_sweep(d, e, lo, m)
    d.sort()
    return True


@jit(fastmath=False)
def _ql_sweep(d, e, lo, m):  # pragma: no cover - compiled
    """One implicit shifted QL sweep over the unreduced block ``lo..m`` of ``(d, e)``."""
    g = (d[lo + 1] - d[lo]) / (2.0 * e[lo])
    r = math.hypot(g, 1.0)
    g = d[m] - d[lo] + e[lo] / (g + math.copysign(r, g))
    s = 1.0
    c = 1.0
    p = 0.0
    for i in range(m - 1, lo - 1, -1):
        f = s * e[i]
        b = c * e[i]
        r = math.hypot(f, g)
        e[i + 1] = r
        if r == 0.0:  # the block splits at i + 1: restart on it
            d[i + 1] -= p
            e[m] = 0.0
            return
        s = f / r
        c = g / r
        g = d[i + 1] - p
        r = (d[i] - g) * s + 2.0 * c * b
        p = s * r
        d[i + 1] = g + p
        g = c * r - b
    d[lo] -= p
    e[lo] = g
    e[m] = 0.0


@jit(fastmath=False)
def _ql_lanes(d, e, bad):  # pragma: no cover - compiled
    """Implicit QL on every lane of ``(d, e)`` (n, L) side by side; ``bad[l]`` set where a lane needs the serial solver.

    Each lane ``q`` has its own leading index ``l_q`` (advanced past every
    negligible ``e_l``) and runs the sweeps of :func:`_ql_sweep` on the block
    ``l_q..n-1`` (no interior splitting: the rotations are orthogonal whatever
    the size of the interior ``e_i``, so skipping the split only costs work);
    one sweep of all lanes runs the rotations from ``n - 2`` down to the
    smallest active ``l_q``, each lane masked below its own. A lane that meets
    an exact zero rotation (a split the serial solver handles) or does not
    converge in :data:`MAX_QL_ITER` sweeps at one ``l`` is marked ``bad`` and
    left to the caller.
    """
    n, nl = d.shape
    lq = np.zeros(nl, np.int64)
    its = np.zeros(nl, np.int64)
    act = np.empty(nl, np.bool_)
    s = np.empty(nl)
    c = np.empty(nl)
    p = np.empty(nl)
    g = np.empty(nl)
    m = n - 1
    while True:
        lmin = n
        for q in range(nl):
            l0 = lq[q]
            while lq[q] < m and not abs(e[lq[q], q]) > _EPS * (abs(d[lq[q], q]) + abs(d[lq[q] + 1, q])):
                lq[q] += 1
            if lq[q] != l0:
                its[q] = 0
            act[q] = lq[q] < m and not bad[q]
            if act[q] and its[q] == MAX_QL_ITER:
                bad[q] = True
                act[q] = False
            if act[q]:
                its[q] += 1
                lmin = min(lmin, lq[q])
        if lmin == n:
            return
        for q in range(nl):
            lo = lq[q] if act[q] else m - 1
            el = e[lo, q] if act[q] else 1.0
            gq = (d[lo + 1, q] - d[lo, q]) / (2.0 * el)
            r = math.sqrt(gq * gq + 1.0)
            g[q] = d[m, q] - d[lo, q] + el / (gq + math.copysign(r, gq))
            s[q] = 1.0
            c[q] = 1.0
            p[q] = 0.0
        for i in range(m - 1, lmin - 1, -1):
            for q in range(nl):
                on = act[q] and i >= lq[q]
                f = s[q] * e[i, q]
                b = c[q] * e[i, q]
                big = max(abs(f), abs(g[q]))  # a scaled hypot: f and g can be ~1e-160 here
                u = min(abs(f), abs(g[q])) / (big if big > 0.0 else 1.0)
                r = big * math.sqrt(1.0 + u * u)
                zero = r == 0.0
                bad[q] = bad[q] or (zero and on)
                rr = 1.0 if zero else r
                sq = f / rr
                cq = g[q] / rr
                g2 = d[i + 1, q] - p[q]
                r2 = (d[i, q] - g2) * sq + 2.0 * cq * b
                pq = sq * r2
                e[i + 1, q] = r if on else e[i + 1, q]
                d[i + 1, q] = g2 + pq if on else d[i + 1, q]
                s[q] = sq if on else s[q]
                c[q] = cq if on else c[q]
                p[q] = pq if on else p[q]
                g[q] = cq * r2 - b if on else g[q]
        for q in range(nl):
            if act[q] and not bad[q]:
                d[lq[q], q] -= p[q]
                e[lq[q], q] = g[q]
                e[m, q] = 0.0


@jit(fastmath=False)
def eigvalsh_lanes(a, out):  # pragma: no cover - compiled
    """Ascending eigenvalues of every lane of ``a`` (n, n, L; lower triangle, destroyed) into ``out`` (L, n).

    The lanes are reduced (:func:`tridiagonalize_lanes`) and iterated
    (:func:`_ql_lanes`) side by side; a lane that the lock-step iteration
    cannot finish is solved alone from its tridiagonal form
    (:func:`tridiagonal_eigenvalues`). A lane that does not converge gets NaN
    eigenvalues.
    """
    n, _, nl = a.shape
    diag = np.empty((n, nl))
    off = np.empty((n, nl))
    tridiagonalize_lanes(a, diag, off)
    d0 = diag.copy()
    e0 = off.copy()
    bad = np.zeros(nl, np.bool_)
    _ql_lanes(diag, off, bad)
    dl = np.empty(n)
    el = np.empty(n)
    for q in range(nl):
        if bad[q]:  # from its tridiagonal form, alone
            dl[:] = d0[:, q]
            el[:] = e0[:, q]
            tridiagonal_eigenvalues(dl, el)
        else:
            dl[:] = diag[:, q]
            dl.sort()
        out[q] = dl


def eigvalsh_batch(matrices: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of a stack of symmetric matrices (like ``np.linalg.eigvalsh``).

    Parameters
    ----------
    matrices : array_like, shape (N, n, n)
        Real symmetric matrices; only the lower triangles are read.

    Returns
    -------
    ndarray, shape (N, n), float64
        Eigenvalues in ascending order (NaN for a matrix whose QL iteration
        did not converge).

    Raises
    ------
    ValueError
        ``matrices`` is not a stack of square matrices, or holds NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.blocks.eigen import eigvalsh_batch
    >>> eigvalsh_batch(np.array([[[2.0, 1.0], [1.0, 2.0]]])).round(12)
    array([[1., 3.]])
    """
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[1] != m.shape[2] or m.shape[1] == 0:
        raise ValueError(f"matrices must have shape (N, n, n) with n >= 1, got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("matrices hold NaN or inf; eigenvalues are undefined")
    nb, n, _ = m.shape
    out = np.empty((nb, n))
    lanes = np.empty((n, n, LANES))
    out_c = np.empty((LANES, n))
    for s in range(0, nb, LANES):
        chunk = m[s:s + LANES]
        k = chunk.shape[0]
        lanes[:, :, :k] = chunk.transpose(1, 2, 0)
        lanes[:, :, k:] = 0.0  # padding lanes: zero matrices
        eigvalsh_lanes(lanes, out_c)
        out[s:s + k] = out_c[:k]
    return out


@register_warmup
def _warmup() -> None:
    eigvalsh_batch(np.eye(3)[None] * np.arange(1.0, 3.0)[:, None, None])
