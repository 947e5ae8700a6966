"""JPEG re-compression in memory (OpenCV / libjpeg), shared by ELA and JPEG ghosts.

The encoder is baseline, without Huffman optimisation, at an IJG quality; the
chroma subsampling is explicit. :func:`encoder_name` records which libjpeg
OpenCV was built with, so a result can say how it was made.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..types import LoadedImage

__all__ = ["SUBSAMPLINGS", "encoder_name", "encoder_input", "jpeg_roundtrip"]

#: chroma subsamplings the encoder accepts
SUBSAMPLINGS = ("4:2:0", "4:2:2", "4:4:4")


@lru_cache(maxsize=1)
def encoder_name() -> str:
    """Name and build of the JPEG encoder, e.g. ``"OpenCV 4.10.0 imencode (libjpeg-turbo ...)"``."""
    import re

    import cv2

    m = re.search(r"JPEG:\s*(.+)", cv2.getBuildInformation())
    lib = m.group(1).strip() if m else "unknown libjpeg"
    return f"OpenCV {cv2.__version__} imencode ({lib}, baseline, no optimisation)"


def encoder_input(img: LoadedImage, *, channels: str = "rgb") -> np.ndarray:
    """The pixels (or their luma) as the encoder's 8-bit input.

    Parameters
    ----------
    img : LoadedImage
    channels : {"rgb", "luma"}, default "rgb"
        ``"rgb"``: the image's channels (gray stays gray); ``"luma"``: its
        BT.601 luma.

    Returns
    -------
    ndarray of uint8, shape (H, W) gray or (H, W, 3) BGR (OpenCV's order)
        On 0-255, rounded to nearest and saturated. The pixels of an 8-bit
        JPEG are already such integers and pass unchanged.

    Examples
    --------
    >>> from noisestat.io import load_image
    >>> encoder_input(load_image(np.full((2, 2, 3), (10, 20, 30), np.uint8)))[0, 0].tolist()  # BGR
    [30, 20, 10]
    """
    import cv2

    px = img.pixels if channels == "rgb" else img.gray()[:, :, None]
    exact = channels == "rgb" and img.info.is_jpeg and img.info.bit_depth == 8 and img.info.white_level == 255.0
    if not exact:
        px = np.clip(px * np.float32(255.0 / img.info.white_level), 0.0, 255.0)
    out = cv2.convertScaleAbs(px[:, :, 0] if px.shape[2] == 1 else px)  # rounds to nearest, saturates
    return out if out.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_RGB2BGR)


def jpeg_roundtrip(src: np.ndarray, *, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """Encode ``src`` as a baseline JPEG in memory and decode it.

    Parameters
    ----------
    src : ndarray of uint8, shape (H, W) gray or (H, W, 3) BGR
        E.g. from :func:`encoder_input`.
    quality : int
        IJG quality 1-100.
    subsampling : {"4:2:0", "4:2:2", "4:4:4"}, default "4:2:0"
        Chroma subsampling (ignored for gray input).

    Returns
    -------
    ndarray of uint8, the shape of ``src``

    Examples
    --------
    >>> flat = np.full((16, 16), 128, np.uint8)
    >>> int(np.abs(jpeg_roundtrip(flat, quality=90).astype(int) - 128).max())
    0
    """
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, 0,
              cv2.IMWRITE_JPEG_PROGRESSIVE, 0]
    if src.ndim == 3:
        factor = {"4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
                  "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
                  "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}[subsampling]
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor]
    ok, buf = cv2.imencode(".jpg", src, params)
    if not ok:  # pragma: no cover - OpenCV failure
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if src.ndim == 2 else cv2.IMREAD_COLOR)
