"""The package's one dtype / layout helper and small parameter checks.

Every public function that takes an image calls :func:`as_image`; kernels
then only ever see C-contiguous float arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .types import ImageInfo, LoadedImage

__all__ = ["as_image", "as_region_mask", "check_int", "check_float", "check_choice"]


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
        Wrong shape, non-finite values, or smaller than ``min_size`` pixels on a side.
    """
    if isinstance(image, LoadedImage):
        loaded = image
    else:
        from .io import load_image

        loaded = load_image(image, value_range=value_range)
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


def _sha256_array(arr: np.ndarray) -> str:
    import hashlib

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


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as int, or raise TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}={v} is too small; use a value >= {minimum}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}={v} is too large; use a value <= {maximum}")
    return v


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_min: bool = False,
) -> float:
    """Return ``value`` as a finite float, or raise TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}={v} must be finite")
    if minimum is not None and (v < minimum or (exclusive_min and v == minimum)):
        op = ">" if exclusive_min else ">="
        raise ValueError(f"{name}={v} is out of range; use a value {op} {minimum}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}={v} is out of range; use a value <= {maximum}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got {value!r}")
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {choices}")
    return value
