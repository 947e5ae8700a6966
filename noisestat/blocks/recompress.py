"""JPEG re-compression in memory (OpenCV / libjpeg), shared by ELA and JPEG ghosts.

The encoder is baseline, without Huffman optimisation, at an IJG quality; the
chroma subsampling is explicit. :func:`encoder_name` records which libjpeg
OpenCV was built with, so a result can say how it was made.

Many qualities of one gray plane (JPEG ghosts): a baseline gray round trip
changes every complete 8x8 block on its own, by an integer function of the
block and the table (libjpeg's default integer DCT). :func:`islow_coefficients`
computes the forward transform once, :func:`roundtrip_block_mse` the block
errors of one table from it, with no entropy coding: 2-3x faster per quality
than :func:`jpeg_roundtrip`. :func:`islow_matches_encoder` checks, once per
process, that OpenCV's encoder gives the same numbers; callers fall back on
:func:`jpeg_roundtrip` when it does not.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..io import ijg_luma_table
from ..types import LoadedImage
from ._recompress_kernels import islow_fdct, requantised_block_mse

__all__ = ["SUBSAMPLINGS", "encoder_name", "encoder_input", "jpeg_roundtrip", "islow_coefficients",
           "roundtrip_block_mse", "islow_matches_encoder"]

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


def _check_plane(src: np.ndarray) -> np.ndarray:
    if not isinstance(src, np.ndarray) or src.dtype != np.uint8 or src.ndim != 2:
        raise TypeError(f"src must be a 2-D uint8 array (a gray plane), got "
                        f"{getattr(src, 'dtype', type(src).__name__)} of shape {getattr(src, 'shape', None)}")
    if min(src.shape) < 8:
        raise ValueError(f"src of shape {src.shape} holds no complete 8x8 block")
    return np.ascontiguousarray(src)


def islow_coefficients(src: np.ndarray) -> np.ndarray:
    """libjpeg's integer forward DCT of every complete 8x8 block of a gray plane.

    Parameters
    ----------
    src : ndarray of uint8, shape (H, W)
        The gray plane (e.g. :func:`encoder_input` with ``channels="luma"``).

    Returns
    -------
    ndarray of int32, shape (H // 8, 64, W // 8)
        ``out[a, 8 u + v, b]``: coefficient (u, v) of block (a, b), level-shifted,
        scaled by 8 as in libjpeg (``JDCT_ISLOW``, 13-bit fixed-point
        Loeffler-Ligtenberg-Moschytz). Memory: 4 bytes per pixel.

    Raises
    ------
    TypeError
        ``src`` not a 2-D uint8 array.
    ValueError
        ``src`` smaller than one block.

    References
    ----------
    .. [1] C. Loeffler, A. Ligtenberg, G. S. Moschytz, "Practical fast 1-D DCT
       algorithms with 11 multiplications", Proc. ICASSP 1989, 988-991.
       https://doi.org/10.1109/ICASSP.1989.266596
    """
    return islow_fdct(_check_plane(src))


def roundtrip_block_mse(src: np.ndarray, *, coefficients: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per 8x8 block, the mean squared difference between ``src`` and its baseline JPEG round trip.

    Parameters
    ----------
    src : ndarray of uint8, shape (H, W)
        The gray plane.
    coefficients : ndarray of int32, shape (H // 8, 64, W // 8)
        :func:`islow_coefficients` of ``src``.
    table : array_like of int, shape (8, 8)
        The luminance quantisation table (natural order, steps 1-255), e.g.
        :func:`noisestat.io.ijg_luma_table`.

    Returns
    -------
    ndarray of float32, shape (H // 8, W // 8)
        The block mean of ``(src - decoded)^2``, equal to that of
        ``jpeg_roundtrip(src, quality=q)`` for the table of quality ``q`` when
        :func:`islow_matches_encoder` is True (the decoder's integer IDCT and
        range limit are reproduced exactly).

    Raises
    ------
    TypeError, ValueError
        Arrays of the wrong type or shape, steps outside 1-255.

    Examples
    --------
    >>> g = (np.arange(256, dtype=np.uint8).reshape(16, 16) * 7) % 200
    >>> g = g.astype(np.uint8)
    >>> c = islow_coefficients(g)
    >>> float(roundtrip_block_mse(g, coefficients=c, table=np.ones((8, 8), int)).max()) < 1
    True
    """
    src = _check_plane(src)
    t = np.asarray(table)
    if t.shape != (8, 8) or not np.issubdtype(t.dtype, np.integer) or t.min() < 1 or t.max() > 255:
        raise ValueError(f"table must be an (8, 8) integer array of steps 1-255, got shape {t.shape}, "
                         f"dtype {t.dtype}")
    hb, wb = src.shape[0] // 8, src.shape[1] // 8
    if not isinstance(coefficients, np.ndarray) or coefficients.shape != (hb, 64, wb) \
            or coefficients.dtype != np.int32:
        raise ValueError(f"coefficients must be islow_coefficients(src): int32 of shape {(hb, 64, wb)}")
    return requantised_block_mse(np.ascontiguousarray(coefficients), src, np.ascontiguousarray(t, np.int64))


@lru_cache(maxsize=1)
def islow_matches_encoder() -> bool:
    """Whether :func:`roundtrip_block_mse` equals OpenCV's encode + decode here (checked once per process).

    Compared on a fixed 48 x 56 gray test plane (random levels, a ramp,
    saturated and flat blocks) at IJG qualities 1-100, step 3, and 100: a
    different DCT in OpenCV's libjpeg would show at once.
    """
    rng = np.random.default_rng(20261203)
    g = rng.integers(0, 256, (48, 56)).astype(np.uint8)
    g[:16, :24] = np.add.outer(np.arange(16) * 9, np.arange(24) * 5).clip(0, 255).astype(np.uint8)
    g[16:24, 24:40] = 255
    g[24:32, 40:] = 0
    g[32:40, :16] = 77
    coef = islow_fdct(g)
    hb, wb = g.shape[0] // 8, g.shape[1] // 8
    for q in [*range(1, 100, 3), 100]:
        dec = jpeg_roundtrip(g, quality=q).astype(np.int64)
        ref = ((g.astype(np.int64) - dec) ** 2).reshape(hb, 8, wb, 8).sum(axis=(1, 3)) / 64.0
        got = requantised_block_mse(coef, g, ijg_luma_table(q))
        if not np.array_equal(ref.astype(np.float32), got):
            return False
    return True
