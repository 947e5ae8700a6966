"""The JPEG file's own coefficients: quantised DCT coefficients and quantisation tables.

A JPEG file stores, per component, the quantised DCT coefficients
``round(C / Q)`` of every 8x8 block; the decoded pixels only approximate them
(rounding and clipping in the inverse transform). Methods that model
quantisation (``adq`` and the other JPEG maps) want the exact values, so this
module reads them from the file behind a :class:`~noisestat.types.LoadedImage`
(with the ``jpeglib`` package, which wraps the IJG libjpeg / libjpeg-turbo
entropy decoder) and falls back to nothing: :func:`read_coefficients` returns
``None`` for every input it cannot read, and :func:`coefficient_status` says why.
:func:`pixel_coefficients` computes the same quantity from pixels (block DCT of
``plane - 128``, divided by the table) for arrays and non-JPEG input.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int
from ..types import LoadedImage, readonly
from .dct import JPEG_BLOCK, block_dct

__all__ = [
    "not_jpeg_reason",
    "JpegCoefficients",
    "read_coefficients",
    "coefficient_status",
    "pixel_coefficients",
    "JPEGLIB_VERSION",
]

#: libjpeg build of ``jpeglib`` used for reading: libjpeg-turbo 2.1 decodes
#: baseline, progressive and arithmetic-coded JPEG (jpeglib's default IJG 6b
#: build has no arithmetic decoder). Reading coefficients is lossless, so the
#: values do not depend on the build.
JPEGLIB_VERSION = "turbo210"

#: ``jpeglib.version`` switches one process-wide library handle; this lock keeps
#: our switch + read + switch back atomic with respect to other threads reading
#: through this module.
_JPEGLIB_LOCK = threading.Lock()

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_HIERARCHICAL = frozenset({0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF})

OK = "ok"


@dataclass(frozen=True)
class JpegCoefficients:
    """Quantised DCT coefficients and quantisation tables of a JPEG file.

    Attributes
    ----------
    components : tuple of ndarray, int16, shape (Hb, Wb, 8, 8)
        Per component (Y, Cb, Cr; or only Y for grayscale), the quantised
        coefficient ``(u, v)`` (natural order: ``u`` vertical, ``v`` horizontal
        frequency) of block ``(a, b)``. Blocks cover the component's pixels
        (``ceil(rows / 8)`` x ``ceil(cols / 8)``; no MCU padding), so
        ``luma[:H // 8, :W // 8]`` is on the grid of
        :func:`~noisestat.blocks.dct.block_dct` applied to ``image.pixels``.
        Read-only.
    tables : tuple of ndarray, int32, shape (8, 8)
        Quantisation table of each component, natural order. Read-only.
    sampling : tuple of (int, int)
        ``(h, v)`` sampling factors per component (``(2, 2), (1, 1), (1, 1)``
        for 4:2:0).
    progressive : bool
        Whether the file is progressive.
    arithmetic : bool
        Whether the file is arithmetic-coded.
    source : str
        Always ``"file"`` (coefficients read from the file, not recomputed).
    """

    components: tuple[np.ndarray, ...]
    tables: tuple[np.ndarray, ...]
    sampling: tuple[tuple[int, int], ...]
    progressive: bool = False
    arithmetic: bool = False
    source: str = "file"

    @property
    def luma(self) -> np.ndarray:
        """Quantised coefficients of component 0 (luma), int16 (Hb, Wb, 8, 8)."""
        return self.components[0]

    @property
    def luma_table(self) -> np.ndarray:
        """Quantisation table of component 0, int32 (8, 8)."""
        return self.tables[0]


class _Unreadable(Exception):
    """The file is unreadable now (not cached: it may become readable again)."""


def not_jpeg_reason(image: LoadedImage, *, force: bool = False) -> str | None:
    """Why a map of a JPEG's history does not apply to ``image``, or None when it does.

    The maps that read a JPEG's compression history (``ela``, ``adq``,
    ``jpeg_ghost``, ...) refuse input that is not known to be JPEG-compressed
    unless the caller passes ``force=True``.

    Examples
    --------
    >>> from noisestat.io import load_image
    >>> not_jpeg_reason(load_image(np.zeros((8, 8), np.uint8)))
    'the input (array) is not known to be JPEG-compressed; pass force=True if the pixels come from a JPEG'
    """
    if image.info.is_jpeg or force:
        return None
    return (f"the input ({image.info.format}) is not known to be JPEG-compressed; "
            f"pass force=True if the pixels come from a JPEG")


def read_coefficients(image: Any) -> JpegCoefficients | None:
    """Quantised DCT coefficients and tables of the JPEG file an image was loaded from.

    Parameters
    ----------
    image : LoadedImage
        An image returned by :func:`noisestat.load_image` /
        :func:`noisestat.io.as_image`. Anything else (arrays, other objects)
        gives ``None``.

    Returns
    -------
    JpegCoefficients or None
        ``None`` when the image does not come from a JPEG file this module can
        read: array input, non-JPEG file, file changed since loading (its
        SHA-256 differs from ``image.info.sha256``) or unreadable, truncated,
        lossless / hierarchical / 12-bit JPEG, CMYK / YCCK or RGB-coded JPEG
        (component 0 is not the luma of ``image.pixels``), or a stream libjpeg
        rejects. :func:`coefficient_status` gives the reason. Never raises for
        such input.

    Notes
    -----
    The file's bytes are re-read and hashed so that the coefficients are those
    of ``image.pixels``; EXIF orientation is never applied by the loader, so
    the block grid of component 0 is the pixel grid. Results are cached by
    ``(source, sha256)`` for the last 4 files, so several maps on one image
    read it once; memory is 2 bytes per pixel for luma plus 1 (4:2:0) to 4
    (4:4:4) for chroma, i.e. at most 6 MB per megapixel per cached file. The
    file is decoded with ``jpeglib`` using libjpeg-turbo 2.1
    (:data:`JPEGLIB_VERSION`), switched in with ``jpeglib.version`` under a
    module lock.

    Examples
    --------
    >>> import numpy as np
    >>> read_coefficients(np.zeros((8, 8))) is None
    True
    """
    return _read(image)[0]


def coefficient_status(image: Any) -> str:
    """Why :func:`read_coefficients` gives ``None`` for ``image``, or ``"ok"``.

    Parameters
    ----------
    image : LoadedImage or any
        As for :func:`read_coefficients`.

    Returns
    -------
    str
        ``"ok"`` when coefficients are available, else one sentence naming the
        reason (e.g. ``"input is not a JPEG file"``, ``"truncated JPEG: ..."``).

    Examples
    --------
    >>> import numpy as np
    >>> coefficient_status(np.zeros((8, 8)))
    'input is an array, not a loaded image file'
    """
    return _read(image)[1]


def _read(image: Any) -> tuple[JpegCoefficients | None, str]:
    if not isinstance(image, LoadedImage):
        return None, "input is an array, not a loaded image file"
    info = image.info
    if not info.is_jpeg or info.source == "<array>":
        return None, "input is not a JPEG file"
    if info.sha256 is None:
        return None, "image has no SHA-256 to check the file against"
    try:
        coef, status = _read_file(str(info.source), str(info.sha256))
    except _Unreadable as exc:
        return None, str(exc)
    if coef is not None:
        hb, wb = coef.luma.shape[:2]
        h, w = image.shape
        if (hb, wb) != (-(-h // JPEG_BLOCK), -(-w // JPEG_BLOCK)):
            return None, f"file has {hb}x{wb} luma blocks, not those of the {h}x{w} pixels"
    return coef, status


@lru_cache(maxsize=4)
def _read_file(source: str, sha256: str) -> tuple[JpegCoefficients | None, str]:
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise _Unreadable(f"cannot re-read {source} ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _Unreadable(f"{source} changed since it was loaded (SHA-256 differs)")
    header = _scan_header(data)
    if isinstance(header, str):
        return None, header
    coef, status = _decode(source, header)
    # libjpeg reads the path itself (no copy is written anywhere): make sure it read the same bytes
    try:
        same = hashlib.sha256(Path(source).read_bytes()).hexdigest() == sha256
    except OSError:
        same = False
    if not same:
        raise _Unreadable(f"{source} changed while its coefficients were read (SHA-256 differs)")
    return coef, status


def _scan_header(data: bytes) -> dict | str:
    """Frame facts from the markers up to the first scan, or the reason it is unusable."""
    if data[:2] != b"\xff\xd8":
        return "not a JPEG stream (no start-of-image marker)"
    pos, sof, adobe = 2, None, None
    while True:
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return "truncated or corrupt JPEG header"
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xD9:
            return "JPEG stream has no image data"
        if marker == 0xDA:
            break
        seg = data[pos + 4 : pos + 2 + length]
        if marker in _SOF_MARKERS and len(seg) >= 6:
            n = seg[5]
            comps = [(seg[6 + 3 * i + 1] >> 4, seg[6 + 3 * i + 1] & 15) for i in range(n) if 8 + 3 * i < len(seg)]
            sof = {"marker": marker, "precision": seg[0], "n": n, "sampling": tuple(comps)}
        elif marker == 0xEE and seg[:5] == b"Adobe" and len(seg) >= 12:
            adobe = seg[11]
        pos += 2 + length
    if sof is None:
        return "JPEG stream has no frame header"
    if data.rfind(b"\xff\xd9") < pos:
        return "truncated JPEG: no end-of-image marker after the scan data"
    return _check_frame(sof, adobe)


def _check_frame(sof: dict, adobe: int | None) -> dict | str:
    m = sof["marker"]
    if m in _LOSSLESS:
        return "lossless JPEG has no DCT coefficients"
    if m in _HIERARCHICAL:
        return "hierarchical JPEG is not supported"
    if sof["precision"] != 8:
        return f"{sof['precision']}-bit JPEG is not supported (8-bit only)"
    if sof["n"] not in (1, 3) or len(sof["sampling"]) != sof["n"]:
        return (f"{sof['n']}-component JPEG (CMYK/YCCK) is not supported: "
                "component 0 is not the luma of the pixels")
    if sof["n"] == 3 and adobe == 0:
        return "RGB-coded JPEG (Adobe transform 0) has no luma component"
    return {**sof, "progressive": m in _PROGRESSIVE, "arithmetic": m in _ARITHMETIC}


def _decode(source: str, header: dict) -> tuple[JpegCoefficients | None, str]:
    try:
        import jpeglib
    except ImportError:
        return None, "the jpeglib package is not installed"
    try:
        with _JPEGLIB_LOCK, jpeglib.version(JPEGLIB_VERSION):
            jp = jpeglib.read_dct(source)
            jp.load()
            planes = [jp.Y] + ([jp.Cb, jp.Cr] if header["n"] == 3 else [])
            slots = [int(s) for s in np.asarray(jp.quant_tbl_no).ravel()]
            qt = np.asarray(jp.qt)
    except Exception as exc:  # libjpeg errors surface as OSError / RuntimeError
        return None, f"libjpeg could not decode the file ({exc})"
    if any(p is None for p in planes) or len(slots) < len(planes):
        return None, "libjpeg returned fewer components than the frame header lists"
    comps = tuple(readonly(np.ascontiguousarray(p, dtype=np.int16)) for p in planes)
    tables = tuple(readonly(np.array(qt[s], dtype=np.int32).reshape(8, 8)) for s in slots[: len(planes)])
    coef = JpegCoefficients(components=comps, tables=tables, sampling=header["sampling"],
                            progressive=header["progressive"], arithmetic=header["arithmetic"])
    return coef, OK


def pixel_coefficients(
    plane: np.ndarray, *, table: np.ndarray | None = None, shift: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """JPEG DCT coefficients recomputed from pixels: block DCT of ``plane - 128``.

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        Pixel values on the 0-255 scale (e.g. ``image.gray()``).
    table : array_like of 64 positive numbers, shape (8, 8) or (64,), optional
        Quantisation table (natural order); when given the coefficients are
        divided by it (not rounded). Default ``None``: no division.
    shift : (int, int), optional
        ``(dy, dx)`` in ``0..7``: the block grid starts at row ``dy``, column
        ``dx``. Default ``(0, 0)``, the JPEG grid of an uncropped image.

    Returns
    -------
    ndarray, float64, shape ((H - dy) // 8, (W - dx) // 8, 8, 8)
        Coefficient ``(u, v)`` of each full block, natural order.

    Raises
    ------
    ValueError
        If ``plane`` is not 2-D, ``table`` has the wrong size or a
        non-positive entry, or ``shift`` is outside ``0..7``.
    TypeError
        If a ``shift`` entry is not an integer.

    Notes
    -----
    For a decoded JPEG ``round(pixel_coefficients(plane, table=Q))`` equals the
    file's quantised coefficients except where the inverse transform's
    rounding and clipping moved a coefficient across a rounding boundary
    (Lin et al. 2009, doi:10.1016/j.patcog.2009.03.019).

    Examples
    --------
    >>> import numpy as np
    >>> c = pixel_coefficients(np.full((16, 16), 130.0), table=np.full(64, 2))
    >>> c.shape, round(float(c[0, 0, 0, 0]), 9)
    ((2, 2, 8, 8), 8.0)
    """
    x = np.asarray(plane, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"plane must be a 2-D array, got shape {x.shape}")
    if not isinstance(shift, (tuple, list)) or len(shift) != 2:
        raise ValueError(f"shift must be a pair (dy, dx), got {shift!r}")
    dy, dx = (check_int(s, "shift", minimum=0, maximum=JPEG_BLOCK - 1) for s in shift)
    c = block_dct(x[dy:, dx:] - 128.0)
    if table is None:
        return c
    q = np.asarray(table, dtype=np.float64)
    if q.size != 64 or not np.all(q > 0):
        raise ValueError(f"table must hold 64 positive numbers, got shape {q.shape}")
    return c / q.reshape(8, 8)
