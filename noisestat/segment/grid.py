"""Regular tiles: the deterministic content-blind baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_int
from ..registry import register_segmenter
from ..types import LoadedImage

__all__ = ["grid_labels"]


@register_segmenter("grid")
def grid_labels(image: LoadedImage, *, rows: int = 3, cols: int = 3) -> tuple[np.ndarray, dict[str, Any]]:
    """Split the image into ``rows x cols`` near-equal tiles.

    Parameters
    ----------
    image : LoadedImage
    rows, cols : int, default 3
        Number of tile rows and columns. Clamped to the image height / width
        (a 2-pixel-high image has at most 2 tile rows); the values used are
        recorded in the result's ``params``.

    Returns
    -------
    labels : ndarray, shape (H, W), int32
        Pixel row ``r`` lies in tile row ``floor(r * rows / H)`` (columns
        likewise); tile ``(i, j)`` has label ``i * cols + j``.
    info : dict
    """
    rows = check_int(rows, "rows", minimum=1)
    cols = check_int(cols, "cols", minimum=1)
    h, w = image.shape
    rows, cols = min(rows, h), min(cols, w)
    ri = (np.arange(h) * rows) // h
    ci = (np.arange(w) * cols) // w
    labels = (ri[:, None] * cols + ci[None, :]).astype(np.int32)
    return labels, {"rows": rows, "cols": cols}
