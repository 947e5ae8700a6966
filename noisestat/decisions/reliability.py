"""Per-pixel reliability of a method's heatmap: where its statistic can be trusted.

A reliability map is an (H, W) float32 array in [0, 1] (1 = the method's
statistic is meaningful here, 0 = it carries no information). It is the
product of components, each a smooth function of a local image property,
chosen per method family (:data:`FAMILY` lists every registered method):

========================  ===================================================  ====================
component                 low where                                            families
========================  ===================================================  ====================
:func:`clipping`          saturated or clipped pixels (at the ends of the      all
                          image's range in any channel) within the window
:func:`flatness`          flat or coarsely quantised areas (local standard     all
                          deviation well below one grey level): no noise to
                          measure, no AC coefficient left for a JPEG trace
:func:`texture`           strong texture and edges (local standard deviation   noise, object
                          far above the noise): noise estimates are biased
object validity           objects without enough usable pixels for a noise     object
                          estimate, unassigned pixels, objects below
                          :data:`MIN_OBJECT_PIXELS` (scaled by their size)
not applicable            the whole image when the method does not apply       all
                          (no JPEG, no double-compression grid, ...)
========================  ===================================================  ====================

The constants are fixed physical levels on the 0-255 scale (not fitted to
any data set), so reliability means the same on every image.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..types import LoadedImage, Localization
from . import _decisions_kernels as _k

__all__ = ["reliability_map", "clipping", "flatness", "texture", "FAMILY", "FAMILIES",
           "WINDOW", "FLAT_SIGMA", "TEXTURE_SIGMA", "MIN_OBJECT_PIXELS"]

#: side of the square window of every local statistic (pixels)
WINDOW = 7
#: local standard deviation (0-255 scale) at which :func:`flatness` is 0.5
FLAT_SIGMA = 1.0
#: local standard deviation (0-255 scale) at which :func:`texture` is 0.5
TEXTURE_SIGMA = 24.0
#: objects with fewer pixels get reliability ``area / MIN_OBJECT_PIXELS``
MIN_OBJECT_PIXELS = 1024

#: the components applied to each family
FAMILIES = {
    "noise": ("clipping", "flatness", "texture"),
    "jpeg": ("clipping", "flatness"),
    "object": ("clipping", "flatness", "texture", "objects"),
}
#: family of every registered method (tests check that every method has one)
FAMILY = {
    "block_pca": "noise", "kurtosis": "noise", "local_pca": "noise", "median_residual": "noise",
    "multiscale_contrast": "noise", "wavelet_mad": "noise",
    "adq": "jpeg", "nadq": "jpeg", "dct_hist": "jpeg", "jpeg_ghost": "jpeg", "blocking_grid": "jpeg",
    "grid_content": "jpeg", "cfa": "jpeg", "ela": "jpeg",
    "objects": "object", "fusion": "object",
}


def _box(x: np.ndarray, window: int) -> np.ndarray:
    return cv2.boxFilter(x, cv2.CV_32F, (window, window), borderType=cv2.BORDER_REFLECT)


def _local_sd(gray: np.ndarray, window: int) -> np.ndarray:
    g = gray.astype(np.float32, copy=False)
    m = _box(g, window)
    m2 = _box(g * g, window)
    return np.sqrt(np.maximum(m2 - m * m, 0.0))


def clipping(image: LoadedImage, *, window: int = WINDOW) -> np.ndarray:
    """1 minus the fraction of clipped pixels (any channel at 0 or at the white level) in the window.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.io import as_image
    >>> img = as_image(np.full((16, 16), 255.0))
    >>> float(clipping(img).max())
    0.0
    """
    px = image.pixels
    top = float(image.info.white_level)
    hit = ((px <= 0.5) | (px >= top - 0.5)).any(axis=2).astype(np.float32)
    return np.clip(1.0 - _box(hit, window), 0.0, 1.0)


def flatness(gray: np.ndarray, *, window: int = WINDOW, sigma: float = FLAT_SIGMA) -> np.ndarray:
    """``s^2 / (s^2 + sigma^2)`` of the local standard deviation ``s``: 0 on flat areas."""
    s2 = _local_sd(gray, window) ** 2
    return (s2 / (s2 + np.float32(sigma) ** 2)).astype(np.float32)


def texture(gray: np.ndarray, *, window: int = WINDOW, sigma: float = TEXTURE_SIGMA) -> np.ndarray:
    """``sigma^2 / (s^2 + sigma^2)`` of the local standard deviation ``s``: low on texture and edges."""
    s2 = _local_sd(gray, window) ** 2
    return (np.float32(sigma) ** 2 / (s2 + np.float32(sigma) ** 2)).astype(np.float32)


def _objects(loc: Localization) -> np.ndarray | None:
    """Per-pixel validity of an object method's objects (None when the method has no objects)."""
    labels = loc.extras.get("labels") if loc.objects is not None else None
    if labels is None:
        return None
    table = np.zeros(len(loc.objects) + 1, np.float32)
    for d in loc.objects:
        table[d.label] = float(d.valid) * min(1.0, d.area / MIN_OBJECT_PIXELS)
    return table[np.asarray(labels)]


def _fused(parts: tuple[str, ...]) -> bool:
    """Whether the fused kernel computes ``parts`` in their order (clipping first, objects last)."""
    base = tuple(p for p in parts if p != "objects")
    return (base in (("clipping",), ("clipping", "flatness"), ("clipping", "texture"),
                     ("clipping", "flatness", "texture"))
            and ("objects" not in parts or parts[-1] == "objects") and parts.count("objects") <= 1)


def reliability_map(image: LoadedImage, loc: Localization, *, family: str | None = None) -> np.ndarray:
    """The reliability map of ``loc`` (a result of ``image``), shape (H, W), float32 in [0, 1].

    Parameters
    ----------
    image : LoadedImage
        The image the method ran on.
    loc : Localization
        The method's (uncalibrated) result.
    family : str, optional
        A key of :data:`FAMILIES`; default ``FAMILY[loc.method]``, or
        ``"noise"`` for a method not in the table.

    Returns
    -------
    ndarray, shape (H, W), float32
        Zero everywhere when the method does not apply to the image.

    Examples
    --------
    >>> import numpy as np, noisestat
    >>> from noisestat.io import as_image
    >>> img = as_image(np.random.default_rng(0).normal(128, 5, (32, 32)))
    >>> loc = noisestat.registry.localize(img, method="median_residual")
    >>> rel = reliability_map(img, loc)
    >>> rel.shape, bool(0.0 <= rel.min() <= rel.max() <= 1.0)
    ((32, 32), True)
    """
    parts = FAMILIES[family or FAMILY.get(loc.method, "noise")]
    if not loc.applicable:
        return np.zeros(image.shape, np.float32)
    if _fused(parts):
        # one fused pass (luma, box means, products): the same float32 values as
        # clipping(image) * flatness(gray) * texture(gray), see _decisions_kernels
        rel = np.empty(image.shape, np.float32)
        _k.reliability(np.ascontiguousarray(image.pixels), float(image.info.white_level), WINDOW,
                       FLAT_SIGMA, TEXTURE_SIGMA, "flatness" in parts, "texture" in parts, rel)
        obj = _objects(loc) if "objects" in parts else None
        if obj is not None:
            rel *= obj
            np.clip(rel, 0.0, 1.0, out=rel)
        return rel
    gray = image.gray()
    comps: dict[str, Any] = {"clipping": lambda: clipping(image), "flatness": lambda: flatness(gray),
                             "texture": lambda: texture(gray), "objects": lambda: _objects(loc)}
    rel = np.ones(image.shape, np.float32)
    for name in parts:
        c = comps[name]()
        if c is not None:
            rel *= c
    return np.clip(rel, 0.0, 1.0).astype(np.float32)
