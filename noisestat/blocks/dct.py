"""The discrete cosine transform blocks: DCT-II matrix, AC basis bank, 8x8 block DCT, zigzag.

One definition for every method that works in the DCT domain (the kurtosis
map's band-pass bank, the JPEG maps' block coefficients).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["dct_matrix", "dct_bank", "block_dct", "ZIGZAG", "JPEG_BLOCK"]

#: side of a JPEG DCT block
JPEG_BLOCK = 8


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal 1-D DCT-II matrix of size ``n``.

    Parameters
    ----------
    n : int
        Transform size (8 for JPEG).

    Returns
    -------
    ndarray, float64, shape (n, n)
        Row ``u`` is ``alpha_u cos(pi (2 i + 1) u / (2 n))`` with
        ``alpha_0 = sqrt(1/n)`` and ``alpha_u = sqrt(2/n)``; ``D @ x`` is the
        DCT-II of ``x`` and ``D.T`` its inverse.

    Examples
    --------
    >>> d = dct_matrix(8)
    >>> bool(np.allclose(d @ d.T, np.eye(8)))
    True
    """
    i = np.arange(n)
    c = np.empty((n, n))
    for u in range(n):
        alpha = np.sqrt((1.0 if u == 0 else 2.0) / n)
        c[u] = alpha * np.cos(np.pi * (2 * i + 1) * u / (2 * n))
    return c


def dct_bank(n: int) -> np.ndarray:
    """The ``n*n - 1`` AC basis images of the orthonormal n x n DCT-II.

    Parameters
    ----------
    n : int
        Transform size.

    Returns
    -------
    ndarray, float64, shape (n*n - 1, n, n)
        Band ``k`` (row-major over frequencies ``(u, v) != (0, 0)``) is
        ``c_u[i] * c_v[j]`` with the rows ``c_u`` of :func:`dct_matrix`. Each
        band has unit norm and zero sum, so white noise of variance s^2 has
        variance s^2 in every band.

    Examples
    --------
    >>> dct_bank(4).shape
    (15, 4, 4)
    """
    c = dct_matrix(n)
    bank = np.einsum("ui,vj->uvij", c, c).reshape(n * n, n, n)
    return np.ascontiguousarray(bank[1:])


@lru_cache(maxsize=1)
def _jpeg_matrix() -> np.ndarray:
    d = dct_matrix(JPEG_BLOCK)
    d.flags.writeable = False
    return d


def block_dct(plane: np.ndarray) -> np.ndarray:
    """Orthonormal 8x8 block DCT-II (the JPEG transform) on the grid anchored at (0, 0).

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        Pixel values (for JPEG, level-shifted by -128). Rows and columns past
        the last full block are ignored.

    Returns
    -------
    ndarray, float64, shape (H // 8, W // 8, 8, 8)
        ``C[a, b, u, v]``: coefficient ``(u, v)`` of block ``(a, b)``.

    Notes
    -----
    ``C = D B D^T`` per block ``B`` with ``D`` = :func:`dct_matrix` (8): the
    transform of ITU-T T.81 A.3.3 (its ``C(u) C(v) / 4`` scaling is this
    orthonormal one).

    Examples
    --------
    >>> round(float(block_dct(np.full((8, 8), 2.0))[0, 0, 0, 0]), 9)  # DC = 8 * mean
    16.0
    """
    x = np.asarray(plane, dtype=np.float64)
    hb, wb = x.shape[0] // JPEG_BLOCK, x.shape[1] // JPEG_BLOCK
    b = x[: hb * JPEG_BLOCK, : wb * JPEG_BLOCK].reshape(hb, JPEG_BLOCK, wb, JPEG_BLOCK)
    d = _jpeg_matrix()
    return d @ b.transpose(0, 2, 1, 3) @ d.T  # batched matmul: several times faster than einsum


def _zigzag() -> np.ndarray:
    order = sorted(((r, c) for r in range(8) for c in range(8)),
                   key=lambda rc: (rc[0] + rc[1], rc[1] if (rc[0] + rc[1]) % 2 == 0 else rc[0]))
    z = np.array([r * 8 + c for r, c in order], dtype=np.int64)
    z.flags.writeable = False
    return z


#: JPEG zigzag scan: ``ZIGZAG[k]`` is the natural (row-major) index of the k-th coefficient.
ZIGZAG = _zigzag()
