"""Block-wise wavelet MAD noise map (Mahdian & Saic 2009; MKLab "NOI1")."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import check_choice, check_int
from ..heatmap import LOG_MIN_SCALE, expand_grid, robust_logistic_blocks, robust_logistic_grid
from ..io import as_image
from ..registry import register
from ..types import Heatmap

__all__ = ["wavelet_mad_map"]

_WAVELETS = {"db8": 8, "haar": 1}


@register("wavelet_mad", kind="map")
def wavelet_mad_map(image: Any, *, wavelet: str = "db8", block: int = 8) -> Heatmap:
    """Dense map of the local noise level from the finest diagonal wavelet subband.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`); colour is converted to
        luma (ITU-R BT.601).
    wavelet : {"db8", "haar"}, default "db8"
        Orthonormal wavelet of the one-level decomposition: Daubechies with 8
        vanishing moments (16 taps, as in the paper) or Haar (2 taps: finer
        localisation, more leakage of image texture).
    block : int, default 8
        Side of the non-overlapping blocks *in subband coordinates* (a block
        covers ``2 * block`` image pixels on a side).

    Returns
    -------
    Heatmap
        ``raw``: the block's noise standard deviation ``median(|HH|) / 0.6745``
        at every pixel of the block, on the input scale (0-255 for 8-bit data);
        ``values``: :func:`noisestat.heatmap.robust_logistic` of ``log(raw)``,
        two-sided.

    Raises
    ------
    ValueError
        Image smaller than ``2 * block`` pixels on a side, or invalid parameters.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    Mahdian & Saic (2009), Sec. 3: the diagonal detail coefficients of the
    finest scale of an orthonormal wavelet transform are dominated by noise,
    and the robust median estimator (Donoho & Johnstone 1994)

    .. math:: \\hat\\sigma = \\operatorname{median}(|HH|) / 0.6745

    gives the noise level of each block; 0.6745 is the median of |N(0, 1)|.
    Since the transform is orthonormal, white noise of variance s^2 has
    variance s^2 in HH. The subband is computed directly (no PyWavelets):
    ``HH[k, l] = sum_ij g[i] g[j] x(2k + L/2 - i, 2l + L/2 - j)``, ``g`` the
    decomposition high-pass (derived from Daubechies' construction), with
    half-sample symmetric extension at the image border; coefficient (k, l)
    sits on image pixels (2k, 2l)-(2k+1, 2l+1), so the map is aligned with
    the image. The subband is tiled with non-overlapping ``block x block``
    blocks from the origin (one more, edge-aligned block covers a remainder)
    and each image pixel takes the value of the block that holds its
    coefficient. As in MKLab's NOI1 the luma channel is used; MKLab keeps the
    map at the block grid (about H/16 x W/16), here it is expanded to full
    resolution. Flat saturated blocks read 0 (floored before the log).

    References
    ----------
    .. [1] B. Mahdian and S. Saic, "Using noise inconsistencies for blind image
       forensics", Image and Vision Computing 27(10), 1497-1503, 2009.
       DOI 10.1016/j.imavis.2009.02.001
    .. [2] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by
       wavelet shrinkage", Biometrika 81(3), 425-455, 1994.
       DOI 10.1093/biomet/81.3.425

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.maps.wavelet_mad import wavelet_mad_map
    >>> rng = np.random.default_rng(0)
    >>> img = 128 + rng.normal(0, 2, (128, 128))
    >>> img[:, 64:] += rng.normal(0, 6, (128, 64))
    >>> hm = wavelet_mad_map(img)
    >>> round(float(np.median(hm.raw[:, :64])))
    2
    """
    from ..blocks.tiling import block_index
    from ..blocks.wavelets import daubechies_highpass
    from ._wavelet_mad_kernels import expand_pair, luma_block_sigma

    wavelet = check_choice(wavelet, "wavelet", tuple(_WAVELETS))
    block = check_int(block, "block", minimum=2)
    t0 = time.perf_counter()
    img = as_image(image, min_size=2 * block)
    h, w = img.shape
    px = img.pixels
    if px.dtype != np.float32 or not px.flags.c_contiguous or px.flags.writeable:
        # one compiled kernel variant: read-only C-contiguous float32, as LoadedImage holds its pixels
        px = np.ascontiguousarray(px, dtype=np.float32).copy()
        px.setflags(write=False)
    t1 = time.perf_counter()
    # luma, HH subband and block medians in two passes (the subband is never stored)
    sigma = luma_block_sigma(px, daubechies_highpass(_WAVELETS[wavelet]), block)
    t2 = time.perf_counter()
    rows, cols = block_index(h, block, stride=2), block_index(w, block, stride=2)
    floor = 1e-3 * img.info.white_level / 255.0
    # the logistic of the block values (the same values as on the expanded raw map), expanded with raw
    logs = np.log(np.maximum(sigma.astype(np.float32), np.float32(floor)))
    blocks = robust_logistic_blocks(logs, rows, cols, min_scale=LOG_MIN_SCALE)
    if blocks is None:
        raw = expand_grid(sigma, rows, cols)
        values = robust_logistic_grid(logs, rows, cols, min_scale=LOG_MIN_SCALE)
    else:
        raw, values = expand_pair(sigma, blocks, rows, cols)
    return Heatmap(
        values=values,
        raw=raw,
        method="wavelet_mad",
        params={"wavelet": wavelet, "block": block, "channel": "luma BT.601",
                "boundary": "half-sample symmetric"},
        units="sigma (input scale)",
        timings={"prepare": t1 - t0, "wavelet": t2 - t1, "expand": (t3 := time.perf_counter()) - t2, "total": t3 - t0},
    )
