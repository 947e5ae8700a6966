"""Multi-scale contrast anomaly map ("non-natural region" enhancement).

The image minus its average pooling at several scales (global, 11x11, 7x7,
3x3) separates its content into nested frequency bands. How local contrast
grows from the finest scale to the coarsest follows the image's own
statistics in untouched areas; a pasted region that was resampled, blurred,
denoised or has a different noise level changes the fine-to-coarse contrast
ratios. The map scores, per pixel, how far the local ratios are from the
image's typical ratios.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import check_int
from ..heatmap import robust_logistic, robust_z
from ..io import as_image
from ..registry import register
from ..types import Heatmap

__all__ = ["multiscale_contrast_map", "contrast_profile", "log_contrast_ratios", "POOL_SIZES"]

#: average-pooling window sides, finest first; the global mean is the last, coarsest scale
POOL_SIZES = (3, 7, 11)
#: local contrasts below EPS_REL * white_level / 255 count as flat
EPS_REL = 1e-3


def _kernel_inputs(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image as C-contiguous float32 planes (C, H, W) and the float64 global mean of each channel."""
    px = np.asarray(pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    planes = np.ascontiguousarray(np.moveaxis(px, 2, 0), dtype=np.float32)
    means = np.array([p.mean(dtype=np.float64) for p in planes])
    return planes, means


def contrast_profile(pixels: np.ndarray, *, window: int = 15, eps: float = 1e-3) -> np.ndarray:
    """Local RMS contrast of the image minus its average pooling at each scale.

    Parameters
    ----------
    pixels : ndarray, shape (H, W, C)
        Image (float; computed from its float32 values), channels last.
    window : int, default 15
        Odd side of the window over which the squared differences are averaged.
    eps : float, default 1e-3
        Added in quadrature to every contrast (keeps logarithms finite in flat areas).

    Returns
    -------
    ndarray, shape (len(POOL_SIZES) + 1, H, W), float64
        ``C_s = sqrt(box_window(mean_c (I_c - pool_s(I_c))**2) + eps**2)`` for
        ``s`` in :data:`POOL_SIZES` and then the global mean.
    """
    from ._multiscale_contrast_kernels import contrast_strips

    px, means = _kernel_inputs(pixels)
    h, w = px.shape[1:]
    out = np.empty((len(POOL_SIZES) + 1, h, w))
    contrast_strips(px, means, int(window), float(eps), True, out, np.empty((0, 0, 0), np.float32))
    return out


def log_contrast_ratios(pixels: np.ndarray, *, window: int = 15, eps: float = 1e-3) -> np.ndarray:
    """``log(C_s / C_s')`` of consecutive scales of :func:`contrast_profile`, float32, shape (3, H, W)."""
    from ._multiscale_contrast_kernels import contrast_strips

    px, means = _kernel_inputs(pixels)
    h, w = px.shape[1:]
    out = np.empty((len(POOL_SIZES), h, w), np.float32)
    contrast_strips(px, means, int(window), float(eps), False, np.empty((0, 0, 0)), out)
    return out


@register("multiscale_contrast", kind="map")
def multiscale_contrast_map(image: Any, *, window: int = 15) -> Heatmap:
    """Anomaly of the local fine-to-coarse contrast profile (image minus multi-scale average pooling).

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`); all channels are used.
    window : int, default 15
        Odd side of the square window over which local contrast is measured.

    Returns
    -------
    Heatmap
        ``raw``: root mean square of the robust z-scores of the three local
        log contrast ratios (unitless, >= 0; about 1 in typical areas);
        ``values``: :func:`noisestat.heatmap.robust_logistic` of ``raw``,
        one-sided (only an unusual profile is suspicious). ``applicable`` is
        False for a constant image.

    Raises
    ------
    ValueError
        Image smaller than ``max(11, window)`` pixels on a side, or an even or
        too small ``window``.
    TypeError
        ``window`` is not an integer.

    Notes
    -----
    With :math:`P_s` the average pooling (stride 1, centred ``s x s`` window,
    half-sample symmetric borders) for :math:`s \\in \\{3, 7, 11\\}` and
    :math:`P_\\infty` the global mean, the differences
    :math:`D_s = I - P_s I` hold the detail finer than scale ``s``. Their local
    RMS contrast over a ``window x window`` box, averaged over colour channels, is

    .. math:: C_s = \\sqrt{\\langle D_s^2 \\rangle_{\\mathrm{window}} + \\epsilon^2},

    with :math:`\\epsilon = 10^{-3}` of the 8-bit scale. The profile
    :math:`r = (\\log C_3/C_7,\\ \\log C_7/C_{11},\\ \\log C_{11}/C_\\infty)` is
    invariant to brightness and contrast changes; each component is turned into
    a robust z-score :math:`z_j` (median and 1.4826 MAD over the image) and the
    anomaly is :math:`\\sqrt{(z_1^2 + z_2^2 + z_3^2)/3}`. Resampling, blurring
    or a different noise level inside a pasted region moves :math:`r_1, r_2`;
    a different illumination or dynamic range moves :math:`r_3`.

    Computation: one Numba kernel (:mod:`._multiscale_contrast_kernels`)
    fuses the box means, squared differences and window energies strip by
    strip in float64, with no full-size temporaries, and writes the log
    ratios as float32.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.maps.multiscale_contrast import multiscale_contrast_map
    >>> img = np.random.default_rng(0).normal(128, 4, (64, 64))
    >>> multiscale_contrast_map(img).shape
    (64, 64)
    """
    window = check_int(window, "window", minimum=3, maximum=255)
    if window % 2 == 0:
        raise ValueError(f"window={window} must be odd so that the window is centred; use {window + 1}")
    t0 = time.perf_counter()
    img = as_image(image, min_size=max(POOL_SIZES[-1], window))
    eps = EPS_REL * img.info.white_level / 255.0
    ratios = log_contrast_ratios(img.pixels, window=window, eps=eps)
    params = {"window": window}
    if np.ptp(img.pixels) == 0:
        return Heatmap.not_applicable(img.shape, method="multiscale_contrast", params=params,
                                      units="robust z (RMS over 3 contrast ratios)",
                                      timings={"total": time.perf_counter() - t0},
                                      note="constant image: no contrast at any scale")
    z2 = np.zeros(img.shape, np.float32)
    for r in ratios:
        z2 += robust_z(r) ** 2
    raw = np.sqrt(z2 / len(ratios))
    values = robust_logistic(raw, two_sided=False)
    return Heatmap(
        values=values,
        raw=raw,
        method="multiscale_contrast",
        params=params,
        units="robust z (RMS over 3 contrast ratios)",
        timings={"total": time.perf_counter() - t0},
    )
