"""Error level analysis (ELA): the residual of one more JPEG compression."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._validate import check_bool, check_choice, check_int
from ..blocks.jpeg import not_jpeg_reason
from ..blocks.recompress import SUBSAMPLINGS, encoder_input, encoder_name, jpeg_roundtrip
from ..heatmap import LOG_MIN_SCALE, robust_logistic
from ..io import as_image
from ..registry import register
from ..types import Heatmap

__all__ = ["ela_map"]

@register("ela", kind="map",
          applies="JPEG input")
def ela_map(
    image: Any,
    *,
    quality: int = 90,
    subsampling: str = "4:2:0",
    window: int = 8,
    force: bool = False,
) -> Heatmap:
    """Error level analysis: local mean of ``|I - JPEG_Q(I)|``.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`).
    quality : int, default 90
        JPEG quality (IJG scale, 1-100) of the re-compression.
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}, default "4:2:0"
        Chroma subsampling of the re-compression (ignored for gray images).
    window : int, default 8
        Side of the box over which the absolute error is averaged (8 = one
        JPEG block).
    force : bool, default False
        Compute the map even when the input is not known to be
        JPEG-compressed (``image.info.is_jpeg`` is False, e.g. an array decoded
        from a JPEG elsewhere).

    Returns
    -------
    Heatmap
        ``raw``: the box mean over ``window x window`` pixels of the
        channel-mean absolute difference between the image and its JPEG
        re-compression, on the input scale (gray levels for 8-bit data);
        ``values``: :func:`noisestat.heatmap.robust_logistic` of ``log(raw)``,
        one-sided (a higher error level than the rest of the image is
        suspicious). For input that is not known to be JPEG-compressed (and
        ``force=False``) ``applicable`` is False, ``values`` and ``raw`` are
        zeros and ``note`` says why.

    Raises
    ------
    ValueError
        Invalid parameters, or an image smaller than ``2 * window`` (two JPEG
        blocks at the default) on a side, like the other methods' minimum sizes.
    TypeError
        Parameters of the wrong type.

    Notes
    -----
    ELA (Krawetz 2007) re-saves the image as JPEG at quality Q and looks at
    ``|I - JPEG_Q(I)|`` per channel. Blocks that were already compressed at
    (about) quality Q change little; content compressed at another quality,
    or never compressed, changes more. MKLab's version uses Q = 90 and the
    channel mean; here the error is also averaged over a ``window`` box
    (OpenCV ``blur``, reflected border) so that ``raw`` is a local level. The
    encoder is fixed (OpenCV's libjpeg-turbo, baseline, no Huffman
    optimisation; recorded in ``params["encoder"]``), as is the chroma
    subsampling: another encoder or subsampling gives other errors. Pixels
    are rounded to 8 bits before encoding (inputs with another white level
    are rescaled to 0-255 first and the error is scaled back).

    ELA says little about never-compressed images (PNG, TIFF, raw arrays):
    the error then mostly follows edges and texture. Such inputs are reported
    as not applicable rather than given a confident-looking map. The error
    also follows edges on JPEG input; per-object comparisons should normalise
    it by local gradient energy.

    References
    ----------
    .. [1] N. Krawetz, "A picture's worth: digital image analysis and forensics",
       Black Hat Briefings, 2007.
    .. [2] M. Zampoglou, S. Papadopoulos and Y. Kompatsiaris, "Large-scale
       evaluation of splicing localization algorithms for web images",
       Multimedia Tools and Applications 76(4), 4801-4834, 2017.
       DOI 10.1007/s11042-016-3795-2

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.maps.ela import ela_map
    >>> img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> ela_map(img).applicable
    False
    >>> bool(ela_map(img, force=True).raw.mean() > 0)
    True
    """
    import cv2

    quality = check_int(quality, "quality", minimum=1, maximum=100)
    subsampling = check_choice(subsampling, "subsampling", SUBSAMPLINGS)
    window = check_int(window, "window", minimum=1)
    force = check_bool(force, "force")
    t0 = time.perf_counter()
    img = as_image(image, min_size=2 * window)
    h, w = img.shape
    params = {"quality": quality, "subsampling": subsampling if img.pixels.shape[2] == 3 else "n/a (gray)",
              "window": window, "force": bool(force), "encoder": encoder_name()}
    if why := not_jpeg_reason(img, force=force):
        return Heatmap.not_applicable(
            (h, w), method="ela", params=params, units="mean |I - JPEG(I)| (input scale)",
            timings={"total": time.perf_counter() - t0},
            note=f"ELA is not applicable ({why}): its re-compression error would mostly show edges and texture",
        )
    scale = img.info.white_level / 255.0
    src = encoder_input(img)
    t1 = time.perf_counter()
    dec = jpeg_roundtrip(src, quality=quality, subsampling=subsampling)
    t2 = time.perf_counter()
    diff = cv2.absdiff(src, dec)
    # box mean of each channel (float32 sums, reflected border), then the channel mean
    box = cv2.boxFilter(diff, cv2.CV_32F, (window, window), normalize=True, borderType=cv2.BORDER_REFLECT)
    if box.ndim == 3:
        box = cv2.transform(box, np.full((1, 3), 1.0 / 3.0))
    raw = np.ascontiguousarray(box.reshape(h, w), dtype=np.float32)
    if scale != 1.0:
        raw *= np.float32(scale)
    floor = 1e-2 * scale
    values = robust_logistic(np.log(np.maximum(raw, np.float32(floor))), two_sided=False, min_scale=LOG_MIN_SCALE)
    return Heatmap(
        values=values,
        raw=raw,
        method="ela",
        params=params,
        units="mean |I - JPEG(I)| (input scale)",
        timings={"prepare": t1 - t0, "jpeg": t2 - t1, "difference": (t3 := time.perf_counter()) - t2, "total": t3 - t0},
    )
