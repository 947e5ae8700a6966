"""Image and mask input/output.

:func:`load_image` is the single entry point that turns a file or an array
into a :class:`~noisestat.types.LoadedImage` (float32 pixels on the data's
native scale plus :class:`~noisestat.types.ImageInfo` metadata).

Conventions
-----------
* 8-bit data stays on 0-255; 16-bit data keeps its native 0-65535 scale
  (``info.white_level`` records the saturation value).
* Palette (``P``) images are converted to RGB, ``1`` (bilevel) to 0/255
  grayscale, ``LA``/``RGBA``/``PA`` lose their alpha channel (recorded in
  ``info.alpha_dropped``), ``CMYK`` and ``YCbCr`` are converted to RGB with
  Pillow's plain (non colour-managed) conversion (recorded in
  ``info.converted_from``). 32-bit float files (grayscale through Pillow,
  RGB TIFFs through OpenCV) are taken on the 0-255 scale like float arrays.
  Other modes (``LAB``, ``HSV``, integer data beyond 16 bits) are refused
  with a ``ValueError``. Bilevel images load (masks are often 1-bit), but
  :func:`as_image`, the methods' intake, refuses them: two levels carry no
  statistics to analyse.
* Float data (arrays or files) whose values all lie in [0, 1] is read on the
  0-255 scale with a ``UserWarning`` saying so (pass ``value_range=(0, 1)``).
* Animated or multi-page files: the first frame is read, with a ``UserWarning``.
* EXIF orientation is recorded, never applied: masks are drawn on stored pixels.
* Images with more than ``max_pixels`` pixels are refused before decoding
  (decompression-bomb guard).
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .types import ImageInfo, LoadedImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "LOCALIZE_BYTES_PER_PIXEL",
    "ImageTooLargeError",
    "available_memory",
    "auto_max_pixels",
    "MASK_CONVENTIONS",
    "load_image",
    "load_mask",
    "as_image",
    "as_region_mask",
    "array_to_loaded",
    "jpeg_quality_from_tables",
    "ijg_luma_table",
    "save_gray_png",
    "heatmap_to_gray",
    "save_heatmap_png",
    "save_mask_png",
    "save_rgb_png",
    "overlay",
]

#: Default decompression-bomb guard: 250 megapixels (about 3 GB as float32 RGB).
DEFAULT_MAX_PIXELS = 250_000_000

#: Peak memory of one ``noisestat localize`` image, in bytes per pixel, that
#: :func:`auto_max_pixels` budgets for: loading (float32 RGB, 12 B/px, plus the
#: decoder's 3-6 B/px), the method and the decision models, and the writers
#: (at most 10 B/px beyond the heatmap). ``benchmarks/memory_limits.py`` measured
#: 48-105 B/px of peak RSS at 12 MP over the registered methods (largest:
#: multiscale_contrast) and 51 B/px for ela at 100 MP; this is the largest plus
#: about 50 % margin.
LOCALIZE_BYTES_PER_PIXEL = 160


class ImageTooLargeError(ValueError):
    """An image with more pixels than ``max_pixels`` (refused before decoding).

    Attributes: ``path``, ``pixels`` (None when unknown), ``limit`` and ``size`` ((w, h) or None).
    """

    def __init__(self, path: Any, pixels: int | None, limit: int, *, size: tuple[int, int] | None = None,
                 how: str = "raise max_pixels to load it") -> None:
        self.path, self.pixels, self.limit, self.size = path, pixels, limit, size
        what = (f"image of {size[0]}x{size[1]} = {pixels} pixels" if size is not None and pixels is not None
                else "image")
        super().__init__(f"{path}: {what} exceeds max_pixels={limit}; {how}")


def available_memory() -> int | None:
    """Bytes this process may still allocate: the least of MemAvailable, the cgroup's free memory and RLIMIT_AS.

    None when nothing is known (not Linux). Read when called, never at import.
    """
    limits: list[int] = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    for cur, mx in (("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.max"),
                    ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            top = Path(mx).read_text().strip()
            if top.isdigit() and int(top) < 1 << 60:
                limits.append(int(top) - int(Path(cur).read_text().strip()))
                break
        except (OSError, ValueError):
            continue
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as fh:
                vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits.append(soft - vm)
    except (ImportError, OSError, ValueError, AttributeError):
        pass
    return max(0, min(limits)) if limits else None


def auto_max_pixels(*, available: int | None = None, bytes_per_pixel: int = LOCALIZE_BYTES_PER_PIXEL,
                    ceiling: int = DEFAULT_MAX_PIXELS) -> int:
    """The largest image (pixels) that fits in memory: ``min(ceiling, available // bytes_per_pixel)``.

    Parameters
    ----------
    available : int, optional
        Bytes available; default :func:`available_memory` (``ceiling`` when unknown).
    bytes_per_pixel : int, default LOCALIZE_BYTES_PER_PIXEL
        Peak bytes per pixel budgeted for one image.
    ceiling : int, default DEFAULT_MAX_PIXELS
        Never more than this (the decompression-bomb guard).

    Examples
    --------
    >>> auto_max_pixels(available=8 * 2**30, bytes_per_pixel=160)
    53687091
    """
    if available is None:
        available = available_memory()
    if available is None:
        return int(ceiling)
    return int(max(1, min(ceiling, available // max(1, bytes_per_pixel))))

_PIL_LIMIT_LOCK = threading.Lock()

# writers and converters work on row blocks of about this many pixels (bounded temporaries)
_CHUNK_PIXELS = 1 << 18

# IJG (libjpeg) standard luminance quantisation table, natural (row-major) order.
_IJG_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)


def ijg_luma_table(quality: float) -> np.ndarray:
    """The IJG (libjpeg, Pillow, OpenCV) luminance quantisation table at a quality.

    Parameters
    ----------
    quality : float
        IJG quality, 1-100 (rounded to the nearest integer).

    Returns
    -------
    ndarray, int64, shape (8, 8)
        ``clip(floor((T * s + 50) / 100), 1, 255)`` with ``T`` the standard table
        (ITU-T T.81 Annex K) and ``s = 5000 // q`` (integer division) below 50, ``200 - 2q`` from 50
        (baseline tables, as libjpeg's ``jpeg_set_quality(..., force_baseline=TRUE)``).

    Raises
    ------
    ValueError
        ``quality`` outside 1-100.

    Examples
    --------
    >>> int(ijg_luma_table(50)[0, 0]), int(ijg_luma_table(90)[0, 0])
    (16, 3)
    """
    q = int(round(float(quality)))
    if not 1 <= q <= 100:
        raise ValueError(f"quality={quality!r} is outside 1-100; pass an IJG quality")
    scale = float(5000 // q if q < 50 else 200 - 2 * q)  # libjpeg: integer division
    return np.clip(np.floor((_IJG_LUMA * scale + 50.0) / 100.0), 1, 255).astype(np.int64).reshape(8, 8)


def jpeg_quality_from_tables(luma_table: Any) -> float:
    """Estimate the IJG quality (1-100) that produced a luminance quantisation table.

    The table is compared with the IJG standard table scaled for every quality
    1..100 (``scale = 5000/q`` below 50, ``200 - 2q`` from 50); the quality
    with the smallest mean absolute difference is returned. Tables from other
    encoders get the nearest IJG quality.

    Parameters
    ----------
    luma_table : sequence of 64 numbers
        Luminance quantisation table in natural (row-major) order, as Pillow
        reports it in ``Image.quantization[0]``.

    Returns
    -------
    float
        Estimated quality.
    """
    t = np.asarray(luma_table, dtype=np.float64).ravel()
    if t.size != 64:
        raise ValueError(f"luma_table has {t.size} entries; a JPEG quantisation table has 64")
    best_q, best_err = 50, np.inf
    for q in range(1, 101):
        err = float(np.mean(np.abs(ijg_luma_table(q).ravel() - t)))
        if err < best_err:
            best_q, best_err = q, err
    return float(best_q)


def load_image(
    image: Any,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    value_range: tuple[float, float] | None = None,
) -> LoadedImage:
    """Load an image file or array as float32 pixels plus metadata.

    Parameters
    ----------
    image : str, os.PathLike, ndarray of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), or LoadedImage
        File path or pixel array (channel axis last). Integer arrays are read on
        their dtype's scale; float arrays are taken on the 0-255 scale unless
        ``value_range`` says otherwise. A LoadedImage is returned unchanged.
    max_pixels : int or None, default 250_000_000
        Refuse images with more pixels than this before decoding them
        (decompression-bomb guard). ``None`` disables the guard.
    value_range : (float, float), optional
        For float arrays only: the (black, white) values of the data; pixels
        are rescaled onto 0-255. Never clipped.

    Returns
    -------
    LoadedImage
        ``pixels`` float32 of shape (H, W, C), C in {1, 3}, C-contiguous and
        read-only, and ``info`` (:class:`~noisestat.types.ImageInfo`).

    Raises
    ------
    TypeError
        Unsupported input type or dtype.
    ValueError
        Missing, unreadable, truncated or unsupported file; NaN/inf values;
        more than ``max_pixels`` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.io import load_image
    >>> img = load_image(np.zeros((4, 5, 3), np.uint8))
    >>> img.pixels.shape, img.info.bit_depth
    ((4, 5, 3), 8)
    """
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, (str, os.PathLike)):
        return _load_file(Path(image), max_pixels=max_pixels)
    if isinstance(image, (bytes, bytearray)):
        raise TypeError("image: raw bytes are not supported; pass a file path or an array")
    if isinstance(image, np.ndarray) or hasattr(image, "__array__"):
        arr = np.asarray(image)
        if max_pixels is not None and arr.ndim >= 2 and arr.shape[0] * arr.shape[1] > max_pixels:
            raise ImageTooLargeError("image: array", arr.shape[0] * arr.shape[1], max_pixels,
                                     size=(arr.shape[1], arr.shape[0]),
                                     how="raise max_pixels or process tiles")
        return array_to_loaded(arr, value_range=value_range, name="image")
    raise TypeError(
        f"image: expected a file path, a numpy array or a LoadedImage, got {type(image).__name__}"
    )


def as_image(
    image: Any,
    *,
    name: str = "image",
    min_size: int = 1,
    value_range: tuple[float, float] | None = None,
) -> LoadedImage:
    """Return ``image`` as a validated :class:`LoadedImage`.

    Accepts a :class:`LoadedImage`, a file path, or an array of shape (H, W),
    (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped). Integer arrays are read
    on their dtype's scale; float arrays are taken on the 0-255 scale unless
    ``value_range`` says otherwise (values are never clipped).

    Raises
    ------
    TypeError
        ``image`` is not an array, path or LoadedImage, or has a non-numeric dtype.
    ValueError
        Wrong shape, non-finite values, smaller than ``min_size`` pixels on a
        side, or a bilevel (1-bit) image file (nothing to analyse in two levels).
    """
    if isinstance(image, LoadedImage):
        loaded = image
    else:
        loaded = load_image(image, value_range=value_range)
    if loaded.info.converted_from == "1":
        raise ValueError(
            f"{name}: {loaded.info.source} is a bilevel (1-bit) image: two grey levels carry no noise or "
            f"compression statistics to analyse; pass the original grayscale or colour image"
        )
    h, w = loaded.shape
    if min(h, w) < min_size:
        raise ValueError(
            f"{name}: image of size {h}x{w} is smaller than the minimum {min_size}x{min_size} "
            f"this method needs; pass a larger image or region"
        )
    return loaded


def array_to_loaded(
    arr: np.ndarray, *, value_range: tuple[float, float] | None = None, name: str = "image"
) -> LoadedImage:
    """Convert an in-memory array (see :func:`as_image`)."""
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError(f"{name}: cannot convert {type(arr).__name__} to an array") from exc
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"{name}: dtype {arr.dtype} is not supported; pass an integer or float array"
        )
    alpha = False
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim == 3:
        c = arr.shape[2]
        if c == 4:
            arr = arr[:, :, :3]
            alpha = True
        elif c == 2:
            arr = arr[:, :, :1]
            alpha = True
        elif c not in (1, 3):
            raise ValueError(
                f"{name}: array of shape {arr.shape} has {c} channels; expected (H, W), "
                f"(H, W, 1), (H, W, 3) or (H, W, 4) with the channel axis last"
            )
    else:
        raise ValueError(
            f"{name}: array of shape {arr.shape} is not an image; expected (H, W) or (H, W, C)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0 and arr.min() < 0:
            raise ValueError(f"{name}: signed integer array has negative values")
        bits = arr.dtype.itemsize * 8
        white = float(2**bits - 1) if bits <= 16 else float(arr.max())
        if value_range is not None:
            white = float(value_range[1])
        px = arr.astype(np.float32)
    else:
        bits = arr.dtype.itemsize * 8
        px = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(px)):
            bad = int(np.count_nonzero(~np.isfinite(px)))
            raise ValueError(
                f"{name}: array contains {bad} NaN or infinite values; replace or mask them first"
            )
        white = 255.0
        if value_range is None:
            _warn_unit_range(px, name)
        if value_range is not None:
            lo, hi = (float(v) for v in value_range)
            if not hi > lo:
                raise ValueError(f"value_range={value_range!r} must be (low, high) with high > low")
            # rescale onto 0-255 so that all methods see one scale
            px = (px - lo) * np.float32(255.0 / (hi - lo))
    px = np.ascontiguousarray(px, dtype=np.float32)
    loaded_info = ImageInfo(
        source="<array>",
        format="array",
        mode=str(arr.dtype),
        bit_depth=bits,
        channels=int(px.shape[2]),
        shape=(int(px.shape[0]), int(px.shape[1])),
        white_level=white if np.issubdtype(arr.dtype, np.integer) else 255.0,
        sha256=_sha256_array(arr),
        alpha_dropped=alpha,
    )
    return LoadedImage(px, loaded_info)


def _warn_unit_range(px: np.ndarray, name: str) -> None:
    """Float data that all lies in [0, 1] is probably on the unit scale: say it is read on 0-255."""
    if px.size and px.dtype.kind == "f":
        lo, hi = float(px.min()), float(px.max())
        if 0.0 <= lo and 0.0 < hi <= 1.0:
            warnings.warn(
                f"{name}: float values lie in [{lo:.3g}, {hi:.3g}] and are read on the 0-255 scale (a nearly "
                f"black image); pass value_range=(0, 1) if they are on the unit scale",
                UserWarning, stacklevel=4,
            )


def _sha256_array(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str((arr.shape, arr.dtype.str)).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def as_region_mask(
    mask: Any, shape: tuple[int, int], *, name: str = "mask", nonempty: bool = False
) -> np.ndarray | None:
    """Validate an optional boolean region mask of image shape ``(H, W)``.

    With ``nonempty``, a mask without any True pixel raises ValueError.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.shape != tuple(shape):
        raise ValueError(
            f"{name}: shape {m.shape} does not match the image's {tuple(shape)}; "
            f"pass a boolean mask of the image's height and width"
        )
    if m.dtype != bool:
        if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
            raise TypeError(f"{name}: dtype {m.dtype} is not supported; pass a boolean array")
        m = m != 0
    if nonempty and not m.any():
        raise ValueError(f"{name}: the region is empty (no True pixel); mark the pixels to measure with True")
    return np.ascontiguousarray(m)


def _open_pil(path: Path, max_pixels: int | None):
    from PIL import Image

    def _open():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)

    try:
        im = _open()
    except Image.DecompressionBombError:
        # larger than Pillow's own guard: open lazily (header only) without it, so that the
        # caller's max_pixels decides and its refusal can name the size
        with _PIL_LIMIT_LOCK:
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                im = _open()
            finally:
                Image.MAX_IMAGE_PIXELS = old
    return im


def _load_file(path: Path, *, max_pixels: int | None) -> LoadedImage:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ValueError(f"{path}: file is empty")
    sha = hashlib.sha256(data).hexdigest()
    head = data[:32]
    del data  # the file's bytes are not kept while decoding
    try:
        im = _open_pil(path, max_pixels)
    except UnidentifiedImageError:
        if head[:4] in (b"II*\x00", b"MM\x00*"):  # a TIFF Pillow cannot decode, e.g. float32 RGB
            return _load_tiff_cv2(path, sha, max_pixels)
        raise ValueError(f"{path}: not a readable image file (unknown or corrupt format)") from None
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: cannot open image ({_short(exc)})") from None
    with im:
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            raise ImageTooLargeError(path, w * h, max_pixels, size=(w, h))
        fmt = im.format or path.suffix.lstrip(".").upper()
        mode = im.mode
        n_frames = int(getattr(im, "n_frames", 1) or 1)
        if n_frames > 1:
            warnings.warn(f"{path}: {fmt} with {n_frames} frames; only the first frame is analysed",
                          UserWarning, stacklevel=3)
        is_jpeg = fmt in ("JPEG", "MPO")
        quality = None
        luma_table = None
        if is_jpeg:
            q = getattr(im, "quantization", None) or {}
            if 0 in q and len(q[0]) == 64:
                quality = jpeg_quality_from_tables(q[0])
                luma_table = tuple(int(v) for v in q[0])
        orientation = 1
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:  # broken EXIF must not stop loading
            orientation = 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()
        except Exception as exc:
            raise ValueError(f"{path}: cannot decode image, file truncated or corrupt ({_short(exc)})") from None
        arr, bits, converted, alpha = _pil_to_array(im, path)
    if bits == 8 and fmt in ("PNG", "TIFF") and mode in ("RGB", "RGBA") and _is_16bit_colour(path, head, fmt):
        arr, bits, alpha16 = _load_16bit_colour(path)
        alpha = alpha or alpha16
    if arr.ndim == 2:
        arr = arr[:, :, None]
    is_float = arr.dtype.kind == "f"
    px = _to_float32(arr)
    del arr
    if is_float:
        if not _all_finite(px):
            raise ValueError(f"{path}: image contains NaN or infinite values")
        _warn_unit_range(px, str(path))
    px.flags.writeable = False
    white = float(2**bits - 1) if bits <= 16 and not is_float else 255.0
    info = ImageInfo(
        source=str(path),
        format=fmt,
        mode=mode,
        bit_depth=bits,
        channels=int(px.shape[2]),
        shape=(int(px.shape[0]), int(px.shape[1])),
        white_level=white,
        sha256=sha,
        is_jpeg=is_jpeg,
        jpeg_quality=quality,
        jpeg_luma_table=luma_table,
        orientation=orientation,
        alpha_dropped=alpha,
        converted_from=converted,
    )
    return LoadedImage(px, info)


def _to_float32(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy made by row blocks (no float64 or whole-image temporaries)."""
    if arr.dtype == np.float32 and arr.flags.c_contiguous:
        return arr
    out = np.empty(arr.shape, np.float32)
    rows = max(1, _CHUNK_PIXELS // max(1, arr.shape[1]))
    for r in range(0, arr.shape[0], rows):
        out[r : r + rows] = arr[r : r + rows]
    return out


def _all_finite(a: np.ndarray) -> bool:
    rows = max(1, _CHUNK_PIXELS // max(1, a.shape[1]))
    return all(bool(np.isfinite(a[r : r + rows]).all()) for r in range(0, a.shape[0], rows))


def _load_tiff_cv2(path: Path, sha: str, max_pixels: int | None) -> LoadedImage:
    """A TIFF that Pillow cannot decode (float32 RGB, ...), read with OpenCV; float data on the 0-255 scale."""
    import cv2

    n = cv2.imcount(str(path)) if hasattr(cv2, "imcount") else 1
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError(f"{path}: not a readable image file (unknown or corrupt format)")
    if max_pixels is not None and arr.shape[0] * arr.shape[1] > max_pixels:
        raise ImageTooLargeError(path, arr.shape[0] * arr.shape[1], max_pixels, size=(arr.shape[1], arr.shape[0]))
    if n > 1:
        warnings.warn(f"{path}: TIFF with {n} pages; only the first page is analysed", UserWarning, stacklevel=3)
    alpha = arr.ndim == 3 and arr.shape[2] == 4
    if arr.ndim == 3:
        arr = arr[:, :, 2::-1] if arr.shape[2] >= 3 else arr[:, :, :1]  # OpenCV decodes BGR(A)
    if arr.dtype.kind not in "uf" or arr.dtype.itemsize > 4 or (arr.dtype.kind == "u" and arr.dtype.itemsize > 2):
        raise ValueError(f"{path}: TIFF sample type {arr.dtype} is not supported; convert it to 8- or 16-bit "
                         f"integers or 32-bit float first")
    is_float = arr.dtype.kind == "f"
    bits = arr.dtype.itemsize * 8
    px = _to_float32(arr[:, :, None] if arr.ndim == 2 else np.ascontiguousarray(arr))
    if is_float:
        if not _all_finite(px):
            raise ValueError(f"{path}: image contains NaN or infinite values")
        _warn_unit_range(px, str(path))
    px.flags.writeable = False
    info = ImageInfo(
        source=str(path), format="TIFF", mode=f"{'float' if is_float else 'uint'}{bits}x{px.shape[2]}",
        bit_depth=bits, channels=int(px.shape[2]), shape=(int(px.shape[0]), int(px.shape[1])),
        white_level=255.0 if is_float else float(2**bits - 1), sha256=sha, alpha_dropped=alpha,
    )
    return LoadedImage(px, info)


def _pil_to_array(im, path: Path) -> tuple[np.ndarray, int, str | None, bool]:
    """Return (array, bits, converted_from, alpha_dropped) for a loaded PIL image."""
    mode = im.mode
    if mode == "L":
        return np.asarray(im), 8, None, False
    if mode == "RGB":
        return np.asarray(im), 8, None, False
    if mode == "RGBA":
        return np.asarray(im)[:, :, :3], 8, None, True
    if mode == "LA":
        return np.asarray(im)[:, :, 0], 8, None, True
    if mode == "1":
        return np.asarray(im.convert("L")), 8, "1", False
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        if has_alpha:
            return np.asarray(im.convert("RGBA"))[:, :, :3], 8, mode, True
        return np.asarray(im.convert("RGB")), 8, mode, False
    if mode in ("CMYK", "YCbCr"):
        return np.asarray(im.convert("RGB")), 8, mode, False
    if mode == "F":  # 32-bit float grayscale: taken on the 0-255 scale, like float arrays
        return np.asarray(im, dtype=np.float32), 32, None, False
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16), 16, None, False
    if mode == "I":
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(
                f"{path}: 32-bit integer image with values outside 0-65535 is not supported; "
                f"convert it to 8- or 16-bit first"
            )
        return a.astype(np.uint16), 16, None, False
    raise ValueError(
        f"{path}: pixel mode {mode!r} is not supported; convert the image to grayscale or RGB "
        f"(8 or 16 bit) first"
    )


def _is_16bit_colour(path: Path, data: bytes, fmt: str) -> bool:
    if fmt == "PNG":
        # IHDR: 8-byte signature, 4-byte length, 'IHDR', width, height, then bit depth.
        return len(data) > 24 and data[12:16] == b"IHDR" and data[24] == 16
    if fmt == "TIFF":
        from PIL import Image

        with Image.open(path) as im:
            bps = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
        if isinstance(bps, tuple):
            return any(int(b) == 16 for b in bps)
        return bps is not None and int(bps) == 16
    return False


def _load_16bit_colour(path: Path) -> tuple[np.ndarray, int, bool]:
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ValueError(f"{path}: cannot decode 16-bit colour image")
    alpha = False
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
        alpha = True
    if arr.ndim == 3:
        arr = arr[:, :, ::-1]  # OpenCV decodes BGR
    return np.ascontiguousarray(arr), 16, alpha


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


MASK_CONVENTIONS = ("nonzero", "inverted", "threshold", "color")


def load_mask(
    mask: Any,
    shape: tuple[int, int] | None = None,
    *,
    convention: str = "nonzero",
    threshold: float = 128.0,
    color: tuple[int, int, int] = (255, 0, 0),
    tolerance: float = 32.0,
) -> np.ndarray:
    """Load a ground-truth mask as a boolean array (True = spliced / tampered).

    Parameters
    ----------
    mask : str, os.PathLike or ndarray of shape (H, W) or (H, W, C)
        Mask file or array.
    shape : (int, int), optional
        Expected ``(height, width)`` (the image's stored pixel size). A mask of
        another size raises ``ValueError``; masks are never resized silently.
    convention : {"nonzero", "inverted", "threshold", "color"}, default "nonzero"
        ``"nonzero"``: any non-zero pixel is spliced (CASIA, Columbia-gray, most
        datasets with 255 = spliced). ``"inverted"``: zero (black) pixels are
        spliced (datasets that draw the forged area black on white).
        ``"threshold"``: gray value >= ``threshold`` is spliced (for masks saved
        as JPEG). ``"color"``: pixels within ``tolerance`` (max channel
        difference) of ``color`` are spliced (colour-coded masks such as the
        Columbia uncompressed edge masks).
    threshold : float, default 128
        Gray level for ``convention="threshold"``.
    color : (int, int, int), default (255, 0, 0)
        RGB colour for ``convention="color"``.
    tolerance : float, default 32
        Allowed per-channel difference for ``convention="color"``.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Raises
    ------
    ValueError
        Unreadable file, unknown convention, or a size that does not match ``shape``.
    """
    if convention not in MASK_CONVENTIONS:
        raise ValueError(f"convention={convention!r} is not supported; choose one of {MASK_CONVENTIONS}")
    src = str(mask) if isinstance(mask, (str, os.PathLike)) else "mask"
    if isinstance(mask, (str, os.PathLike)):
        m = load_image(mask).pixels
        m = m[:, :, 0] if m.shape[2] == 1 else m
        white = 255.0
    else:
        m = np.asarray(mask)
        if m.dtype == bool:
            m = m.astype(np.uint8) * 255
        if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
            raise TypeError(f"mask: dtype {m.dtype} is not supported; pass a boolean or numeric array")
        if m.ndim == 3 and m.shape[2] in (1, 4):
            m = m[:, :, 0] if m.shape[2] == 1 else m[:, :, :3]
        if m.ndim not in (2, 3):
            raise ValueError(f"mask: array of shape {m.shape} is not a mask; expected (H, W)")
        m = m.astype(np.float32)
        white = 255.0
    if shape is not None and tuple(m.shape[:2]) != tuple(shape):
        raise ValueError(
            f"{src}: mask size {m.shape[0]}x{m.shape[1]} does not match the image's {shape[0]}x{shape[1]}; "
            f"masks must be drawn on the stored image pixels"
        )
    if convention == "color":
        if m.ndim != 3:
            raise ValueError(f"{src}: convention='color' needs an RGB mask, got a grayscale one")
        c = np.asarray(color, dtype=np.float32).reshape(1, 1, 3)
        return np.ascontiguousarray(np.max(np.abs(m - c), axis=2) <= tolerance)
    gray = m.max(axis=2) if m.ndim == 3 else m
    if convention == "nonzero":
        return np.ascontiguousarray(gray > 0)
    if convention == "inverted":
        return np.ascontiguousarray(gray <= 0)
    return np.ascontiguousarray(gray >= threshold * (white / 255.0))


#: zlib level of the PNGs the writers produce (1: fastest; the pixels do not depend on it)
PNG_COMPRESSION = 1


def _save_png(path: str | os.PathLike | BinaryIO, a: np.ndarray) -> None:
    """Write an 8-bit (H, W), (H, W, 3) RGB or (H, W, 4) RGBA array as a PNG.

    Encoded by OpenCV (loaded by every ``noisestat localize`` anyway) at zlib
    level :data:`PNG_COMPRESSION`: 2-5 times faster than Pillow's default
    level, the same pixels, grey / RGB / RGBA as Pillow's ``fromarray`` would
    write them. Other shapes go to Pillow.
    """
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        from PIL import Image

        Image.fromarray(a).save(path, format="PNG")
        return
    import cv2

    if a.ndim == 3:  # OpenCV encodes BGR(A)
        a = a[:, :, [2, 1, 0, 3]] if a.shape[2] == 4 else a[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:  # pragma: no cover - OpenCV encodes every 8-bit array of these shapes
        raise ValueError(f"cannot encode a {a.shape} array as PNG")
    if hasattr(path, "write"):
        path.write(buf.data)
    else:
        with open(path, "wb") as fh:
            fh.write(buf.data)


def save_gray_png(path: str | os.PathLike | BinaryIO, values: np.ndarray) -> None:
    """Write values in [0, 1] as an 8-bit grayscale PNG (``round(v * 255)``)."""
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"values: expected a 2-D array, got shape {v.shape}")
    out = np.empty(v.shape, np.uint8)
    rows = max(1, _CHUNK_PIXELS // max(1, v.shape[1]))
    for r in range(0, v.shape[0], rows):  # float32 by row blocks: 1 byte per pixel beyond the input
        c = np.nan_to_num(np.asarray(v[r : r + rows], dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        out[r : r + rows] = np.round(np.clip(c, 0.0, 1.0) * np.float32(255.0))
    _save_png(path, out)


def heatmap_to_gray(values: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """8-bit grey levels that keep the order of a heatmap's values (a per-image quantile stretch).

    A value's grey level is ``floor(256 * c / N)`` with ``c`` the number of
    pixels holding a smaller value and ``N`` the number of pixels; with at most
    256 distinct values each gets its own level, spread evenly over 0-255. So
    ``v1 < v2`` gives ``g1 <= g2``, equal values equal levels, and wherever the
    map has contrast the grey levels keep it, however small the values (a map
    with values in [0, 0.004] is not written black). A constant map is
    written as 0 everywhere.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        Heatmap values (NaN is written as the lowest level). float64 maps are compared in float64,
        anything else in float32 (peak memory: the map plus one sorted copy, 8 bytes per pixel for
        float32, and the 1-byte output).

    Returns
    -------
    gray : ndarray of uint8, shape (H, W)
    mapping : dict
        ``{"kind": "quantile", "levels": [...]}``: for each grey level 0-255,
        the smallest value written at that level (None where unused), so that
        a grey level can be read back as a value range. The CLI records it in
        ``<stem>.json``; the lossless values are in ``<stem>.heatmap.npy``.

    Examples
    --------
    >>> g, m = heatmap_to_gray(np.array([[0.0, 0.001], [0.002, 0.004]]))
    >>> g.tolist(), m["kind"]
    ([[0, 85], [170, 255]], 'quantile')
    """
    values = np.asarray(values)
    v = np.nan_to_num(np.asarray(values, dtype=np.float64 if values.dtype == np.float64 else np.float32),
                      nan=-np.inf)
    if v.ndim != 2:
        raise ValueError(f"values: expected a 2-D array, got shape {v.shape}")
    n = v.size
    srt = np.sort(v, axis=None)  # with v: 2 x 4 bytes per pixel for float32 maps, the peak of this function
    first = np.ones(n, bool)
    np.not_equal(srt[1:], srt[:-1], out=first[1:])  # first occurrence of each distinct value
    n_uniq = int(np.count_nonzero(first))
    gray = np.empty(v.shape, np.uint8)
    rows = max(1, _CHUNK_PIXELS // max(1, v.shape[1]))
    levels: list[float | None] = [None] * 256
    if n_uniq <= 256:
        uniq = srt[first]
        del srt, first
        if n_uniq <= 1:
            grey_u = np.zeros(n_uniq, np.uint8)
        else:
            grey_u = np.round(np.arange(n_uniq) * (255.0 / (n_uniq - 1))).astype(np.uint8)
        for r in range(0, v.shape[0], rows):
            gray[r : r + rows] = grey_u[np.searchsorted(uniq, v[r : r + rows])]
        for g, u in zip(grey_u.tolist(), uniq.tolist()):
            if levels[g] is None:
                levels[g] = u if np.isfinite(u) else None
        return gray, {"kind": "quantile", "levels": levels}
    del first
    for r in range(0, v.shape[0], rows):  # level = floor(256 * (number of smaller values) / N)
        below = np.searchsorted(srt, v[r : r + rows], side="left")
        below *= 256
        below //= n
        np.minimum(below, 255, out=below)
        gray[r : r + rows] = below
    for g in range(256):  # the smallest value at level g: the first distinct value at or after ceil(g N / 256)
        q = -(-g * n // 256)
        if q >= n:
            break
        x = srt[q]
        p = int(np.searchsorted(srt, x, side="left"))
        if p < q:  # x starts below this level: take the next distinct value
            p = int(np.searchsorted(srt, x, side="right"))
            if p >= n:
                continue
            x = srt[p]
        if min(255, p * 256 // n) == g:
            levels[g] = float(x) if np.isfinite(x) else None
    return gray, {"kind": "quantile", "levels": levels}


def save_heatmap_png(path: str | os.PathLike | BinaryIO, values: np.ndarray) -> dict[str, Any]:
    """Write a heatmap as a single-channel 8-bit PNG by :func:`heatmap_to_gray`; returns its mapping."""
    gray, mapping = heatmap_to_gray(values)
    _save_png(path, gray)
    return mapping


def save_mask_png(path: str | os.PathLike | BinaryIO, mask: np.ndarray) -> None:
    """Write a boolean mask as a 0/255 8-bit PNG."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask: expected a 2-D array, got shape {m.shape}")
    _save_png(path, (m != 0).astype(np.uint8) * 255)


def save_rgb_png(path: str | os.PathLike | BinaryIO, image: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) array as an 8-bit PNG (floats are taken on 0-255)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype != np.uint8:
        out = np.empty(a.shape, np.uint8)
        rows = max(1, _CHUNK_PIXELS // max(1, a.shape[1]))
        for r in range(0, a.shape[0], rows):
            out[r : r + rows] = np.clip(np.round(np.asarray(a[r : r + rows], dtype=np.float32)), 0, 255)
        a = out
    _save_png(path, a)


def overlay(image: LoadedImage | np.ndarray, heat: np.ndarray, *, alpha: float = 0.6) -> np.ndarray:
    """Blend a heatmap in red over a grayscale copy of the image.

    Parameters
    ----------
    image : LoadedImage or ndarray of shape (H, W[, C])
    heat : ndarray of shape (H, W), values in [0, 1]
    alpha : float, default 0.6
        Opacity of the heatmap where it is 1.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    img = image if isinstance(image, LoadedImage) else load_image(image)
    heat = np.asarray(heat)
    h_img, w_img = img.shape
    if heat.shape != (h_img, w_img):
        raise ValueError(f"heat: shape {heat.shape} does not match the image's {(h_img, w_img)}")
    scale = np.float32(255.0 / max(img.info.white_level, 1e-12))
    px = img.pixels
    out = np.empty((h_img, w_img, 3), np.uint8)
    rows = max(1, _CHUNK_PIXELS // max(1, w_img))
    for r in range(0, h_img, rows):  # float32 by row blocks: the output's 3 bytes per pixel plus a block
        p = px[r : r + rows]
        g = p[:, :, 0] if p.shape[2] == 1 else (0.299 * p[:, :, 0] + 0.587 * p[:, :, 1] + 0.114 * p[:, :, 2])
        base = np.clip(np.asarray(g, np.float32) * scale, 0, 255) * np.float32(0.8)
        hv = np.clip(np.nan_to_num(np.asarray(heat[r : r + rows], dtype=np.float32)), 0.0, 1.0)
        a = np.float32(alpha) * hv
        keep = base * (1 - a)
        out[r : r + rows, :, 0] = np.clip(np.round(keep + np.float32(255.0) * a), 0, 255)
        out[r : r + rows, :, 1] = np.clip(np.round(keep), 0, 255)
        out[r : r + rows, :, 2] = out[r : r + rows, :, 1]
    return out
