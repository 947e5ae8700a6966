"""Wavelet MAD noise level (Donoho & Johnstone 1994), the classical baseline."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import check_choice, check_int
from ..blocks.wavelets import WAVELETS, daubechies_filters, diagonal_subband, filter_down
from ..io import as_image, as_region_mask
from ..types import NoiseEstimate
from ._common import ZERO_NOTE, rms_of_channels, unusable_pixels

__all__ = ["estimate_noise_mad", "MAD_GAUSS", "MIN_COEFFS"]

#: Phi^{-1}(3/4): median(|X|) / MAD_GAUSS = sigma for X ~ N(0, sigma**2) (Donoho's 0.6745)
MAD_GAUSS = 0.6744897501960817
#: default fewest subband coefficients per channel for a reliable estimate
MIN_COEFFS = 256


def estimate_noise_mad(
    image: Any,
    *,
    mask: Any = None,
    wavelet: str = "haar",
    min_coeffs: int = MIN_COEFFS,
) -> NoiseEstimate:
    """Wavelet MAD noise level: ``median(|HH1|) / 0.6745`` (Donoho & Johnstone 1994).

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`); 8-bit data on 0-255,
        float arrays taken on 0-255.
    mask : array_like of bool, shape (H, W), optional
        Region to measure; only coefficients whose whole support
        (``2N x 2N`` pixels) lies inside it are used.
    wavelet : {"haar", "db2", "db3", "db4", "db6", "db8"}, default "haar"
        Orthonormal Daubechies wavelet of the finest diagonal subband.
        MKLab's NOI1 (Mahdian & Saic 2009) uses ``"db8"``.
    min_coeffs : int, default 256
        Fewest coefficients per channel for a reliable estimate.

    Returns
    -------
    NoiseEstimate
        ``sigma``: root mean square of the per-channel estimates;
        ``n_patches``: number of wavelet coefficients used, summed over
        channels; NaN ``sigma`` when no coefficient is usable.

    Raises
    ------
    TypeError, ValueError
        Invalid image or parameters, image smaller than the wavelet support,
        empty mask, NaN / infinite pixels.

    Notes
    -----
    For i.i.d. Gaussian noise of standard deviation ``sigma`` every
    coefficient of an orthonormal wavelet's diagonal subband is
    ``N(0, sigma**2)`` (``sum_k sum_l (g[k] g[l])**2 = 1``), and
    ``median(|X|) = Phi^{-1}(3/4) sigma = 0.67449 sigma``. Image content
    leaks into the finest subband at edges and texture; the median resists a
    minority of such coefficients, but on textured images the estimate reads
    high: on the package's synthetic test image ``clean_texture`` plus noise
    of sigma 2 / 5 / 10 the Haar estimate is within +10 % / +5 % / +4 %
    (tested; measured +5 % / +2 % / +1 %), db8 within +15 % / +8 % / +6 %.
    On flat regions it is unbiased (within 3 %). Coefficients whose
    support contains a clipped pixel (``<= 0`` or ``>= white_level``) or a
    pixel outside ``mask`` are left out. The relative standard error is
    about ``1.17 / sqrt(n)`` for ``n`` coefficients (the MAD's 37 %
    Gaussian efficiency), 7 % at ``n = 256``.

    References
    ----------
    .. [1] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by
       wavelet shrinkage", Biometrika 81(3), 425-455, 1994.
       :doi:`10.1093/biomet/81.3.425`

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.noise.mad import estimate_noise_mad
    >>> img = 128 + np.random.default_rng(0).normal(0, 5, (128, 128))
    >>> bool(abs(estimate_noise_mad(img).sigma - 5) < 0.3)
    True
    """
    wavelet = check_choice(wavelet, "wavelet", WAVELETS)
    min_coeffs = check_int(min_coeffs, "min_coeffs", minimum=1)
    _, g = daubechies_filters(wavelet)
    loaded = as_image(image, min_size=g.size)
    h, w = loaded.shape
    region = as_region_mask(mask, (h, w), nonempty=True)
    white = float(loaded.info.white_level)
    px = loaded.pixels
    nc = px.shape[2]
    ones = np.ones(g.size)
    sig: list[float] = []
    counts: list[int] = []
    notes: list[str] = []
    for c in range(nc):
        ch = px[:, :, c]
        bad = unusable_pixels(ch, white, region)
        hh = diagonal_subband(ch, wavelet)
        nbad = filter_down(filter_down(bad.astype(np.float64), ones, 0), ones, 1)
        coef = hh[nbad == 0]
        counts.append(int(coef.size))
        if coef.size == 0:
            sig.append(math.nan)
            continue
        sig.append(float(np.median(np.abs(coef))) / MAD_GAUSS)
    finite = [s for s in sig if np.isfinite(s)]
    sigma = rms_of_channels(sig)
    reliable = len(finite) == nc
    for c, n in enumerate(counts):
        cname = f"channel {c}: " if nc > 1 else ""
        if n < min_coeffs:
            notes.append(f"{cname}only {n} usable coefficients (need {min_coeffs})")
            reliable = False
    if not finite:
        notes.append("no estimate possible: no wavelet support free of clipped pixels inside the region")
    elif not sigma > 0:
        notes.append(ZERO_NOTE)
        reliable = False
    return NoiseEstimate(
        sigma=float(sigma), sigma_per_channel=tuple(sig), n_patches=int(sum(counts)), fallback=None,
        method="mad", params={"wavelet": wavelet, "min_coeffs": min_coeffs, "masked": region is not None},
        reliable=bool(reliable), note="; ".join(notes),
    )
