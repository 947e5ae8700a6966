"""Daubechies wavelet filters and the finest diagonal (HH) wavelet subband.

One construction of the orthonormal Daubechies filters (spectral factorisation
of Daubechies' polynomial, Ten Lectures on Wavelets Sec. 6.1) for every user:
the wavelet MAD estimator and map, the object noise floor and the noise term of
the segmentation merge.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .._validate import check_choice

__all__ = [
    "WAVELETS",
    "daubechies_filters",
    "daubechies_highpass",
    "filter_down",
    "diagonal_subband",
    "diagonal_coefficients",
    "diagonal_energy",
]


WAVELETS = ("haar", "db2", "db3", "db4", "db6", "db8")


@lru_cache(maxsize=16)
def _daub(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n == 1:
        h = np.array([1.0, 1.0]) / math.sqrt(2.0)
    else:
        # |Q(e^{iw})|^2 = P(y), y = sin^2(w/2), P(y) = sum_k C(n-1+k, k) y^k (Daubechies 1988).
        pc = [math.comb(n - 1 + k, k) for k in range(n)]
        ys = np.roots(pc[::-1])  # np.roots wants the highest power first
        zs = []
        for y in ys:
            # y = (2 - z - 1/z) / 4  ->  z^2 - (2 - 4y) z + 1 = 0; keep the root inside the unit circle
            r = np.roots([1.0, -(2.0 - 4.0 * y), 1.0])
            zs.append(r[np.argmin(np.abs(r))])
        poly = np.array([1.0 + 0j])
        for _ in range(n):
            poly = np.convolve(poly, [1.0, 1.0])
        for z in zs:
            poly = np.convolve(poly, [1.0, -z])
        h = np.real(poly)
        h = h * (math.sqrt(2.0) / h.sum())
    g = h[::-1] * (-1.0) ** np.arange(h.size)
    return h, g


def daubechies_filters(wavelet: str = "haar") -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal Daubechies analysis filters.

    Parameters
    ----------
    wavelet : {"haar", "db2", "db3", "db4", "db6", "db8"}, default "haar"
        ``"haar"`` is ``db1``; ``dbN`` has ``N`` vanishing moments and ``2N`` taps.

    Returns
    -------
    h, g : ndarray, float64, shape (2N,)
        Low-pass ``h`` (``sum h = sqrt 2``, ``sum h**2 = 1``) and high-pass
        ``g[k] = (-1)**k h[2N-1-k]``, computed by spectral factorisation of
        Daubechies' polynomial (minimum-phase roots).

    Examples
    --------
    >>> h, g = daubechies_filters("db2")
    >>> np.round(h * 4 * np.sqrt(2), 4)  # (1+sqrt3, 3+sqrt3, 3-sqrt3, 1-sqrt3)
    array([ 2.7321,  4.7321,  1.2679, -0.7321])
    """
    wavelet = check_choice(wavelet, "wavelet", WAVELETS)
    n = 1 if wavelet == "haar" else int(wavelet[2:])
    h, g = _daub(n)
    return h.copy(), g.copy()


@lru_cache(maxsize=8)
def daubechies_highpass(n_moments: int) -> np.ndarray:
    """Decomposition high-pass filter of the orthonormal Daubechies wavelet ``db<n>``.

    The high-pass ``g[k] = (-1)^k h[L-1-k]`` of the extremal-phase low-pass
    ``h`` (``sum(h) = sqrt(2)``), built by the package's one construction
    (:func:`daubechies_filters`: Daubechies' polynomial,
    Ten Lectures on Wavelets Sec. 6.1). ``n_moments = 1`` is the Haar wavelet.

    Returns
    -------
    ndarray, shape (2 * n_moments,), float64 (read-only)
    """
    nm = int(n_moments)
    if nm < 1:
        raise ValueError(f"n_moments={nm}; use a value >= 1")
    g = _daub(nm)[1].copy()
    g.flags.writeable = False
    return g


def filter_down(x: np.ndarray, f: np.ndarray, axis: int) -> np.ndarray:
    """Filter and downsample by 2 along one axis: ``y[i] = sum_k f[k] x[2 i + k]``.

    Valid positions only (no border extension): ``(n - len(f)) // 2 + 1``
    outputs along ``axis``.

    Examples
    --------
    >>> filter_down(np.arange(6.0), np.array([1.0, 1.0]), 0)
    array([1., 5., 9.])
    """
    n = (x.shape[axis] - f.size) // 2 + 1
    out = None
    for k, fk in enumerate(f):
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(k, k + 2 * (n - 1) + 1, 2)
        term = fk * x[tuple(sl)]
        out = term if out is None else out + term
    assert out is not None
    return out


def diagonal_subband(channel: np.ndarray, wavelet: str = "haar") -> np.ndarray:
    """Finest-scale diagonal (HH) wavelet coefficients of a 2-D array, valid positions only.

    ``HH[i, j] = sum_{k, l} g[k] g[l] x[2i + k, 2j + l]`` with the high-pass
    filter ``g`` of :func:`daubechies_filters`: no border extension, so
    every coefficient depends only on image pixels. For Haar this is
    ``(a - b - c + d) / 2`` of each 2 x 2 block ``[[a, b], [c, d]]``.

    Parameters
    ----------
    channel : ndarray, shape (H, W)
    wavelet : str, default "haar"

    Returns
    -------
    ndarray, float64, shape ((H - 2N) // 2 + 1, (W - 2N) // 2 + 1)

    Examples
    --------
    >>> diagonal_subband(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[0.]])
    """
    _, g = daubechies_filters(wavelet)
    x = np.asarray(channel, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < g.size:
        raise ValueError(
            f"channel of shape {x.shape} is too small for wavelet={wavelet!r}; "
            f"need a 2-D array of at least {g.size}x{g.size}"
        )
    return filter_down(filter_down(x, g, 0), g, 1)


def diagonal_coefficients(pixels: np.ndarray, wavelet: str = "haar") -> np.ndarray:
    """Finest-scale diagonal coefficients of every channel on the 2 x 2 pixel-block grid.

    Parameters
    ----------
    pixels : ndarray, shape (H, W) or (H, W, C)
        Clean float pixels (channel-last), H and W at least the wavelet's
        support (``2N``).
    wavelet : str, default "haar"
        See :func:`daubechies_filters`.

    Returns
    -------
    ndarray, float64, shape (H // 2, W // 2, C)
        ``D[b, c, ch] = HH_ch[k, l]`` (:func:`diagonal_subband` of channel
        ``ch``) for the coefficient whose support (``2N x 2N`` pixels, rows
        ``2k .. 2k + 2N - 1``) is centred on the pixel block ``(2b, 2b + 1) x
        (2c, 2c + 1)``: ``k = b - (N - 1) // 2``, likewise ``l`` (exact for
        Haar, within half a block for longer filters). Blocks near the border
        without a full coefficient are NaN. A 2-D input gives C = 1.

    Examples
    --------
    >>> x = np.array([[0.0, 2.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    >>> diagonal_coefficients(x)[..., 0]  # Haar HH of the top-left block is (0 - 2 - 2 + 0) / 2
    array([[-2.,  0.],
           [ 0.,  0.]])
    """
    from ._wavelets_kernels import diagonal_grid

    x = np.asarray(pixels)
    _, g = daubechies_filters(wavelet)
    if x.ndim != 2 and x.ndim != 3 or min(x.shape[:2]) < g.size:
        raise ValueError(f"pixels of shape {x.shape} are too small for wavelet={wavelet!r}; need (H, W) or "
                         f"(H, W, C) with H, W >= {g.size}")
    x = x[:, :, None] if x.ndim == 2 else x
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    # the kernel repeats diagonal_subband's arithmetic per channel, bit for bit
    return diagonal_grid(np.ascontiguousarray(x), np.ascontiguousarray(g, dtype=np.float64),
                         (g.size // 2 - 1) // 2)


def diagonal_energy(pixels: np.ndarray, wavelet: str = "haar") -> np.ndarray:
    """Squared finest-scale diagonal coefficients on the 2 x 2 pixel-block grid, mean over channels.

    Parameters
    ----------
    pixels : ndarray, shape (H, W) or (H, W, C)
        Clean float pixels (channel-last), H and W at least the wavelet's
        support (``2N``). With C channels the squared coefficients are
        averaged over the channels.
    wavelet : str, default "haar"
        See :func:`daubechies_filters`.

    Returns
    -------
    ndarray, float64, shape (H // 2, W // 2)
        The mean over channels of the squares of
        :func:`diagonal_coefficients` (same grid; NaN near the border).

    Notes
    -----
    For i.i.d. noise of standard deviation ``sigma``, ``E`` has expectation
    ``sigma ** 2`` (orthonormal filters), so the root mean square of ``E``
    over a region estimates the noise level there.

    Examples
    --------
    >>> x = np.array([[0.0, 2.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    >>> diagonal_energy(x)  # Haar HH of the top-left block is (0 - 2 - 2 + 0) / 2 = -2
    array([[4., 0.],
           [0., 0.]])
    """
    d = diagonal_coefficients(pixels, wavelet)
    return np.mean(d * d, axis=2)
