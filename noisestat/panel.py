"""A one-image PNG panel for analysts: objects, heatmap, reliability and dissimilarity matrix.

:func:`object_panel` draws, side by side,

1. the image with the outlines of the objects of an object-level result
   (numbered as in ``loc.objects`` and the matrix; selected objects tinted
   red),
2. the heatmap (``loc.heatmap.values`` on the fixed [0, 1] scale, dark = 0,
   bright yellow = 1) with the same outlines,
3. the reliability map ``loc.reliability`` (black = the method's statistic
   cannot be trusted there, white = it can), when the result has one,
4. the object dissimilarity matrix ``loc.extras["dissimilarity"]`` with the
   object numbers on its axes (selected objects' numbers in red; undefined
   entries of invalid objects grey).

For dense maps (no objects) the object outlines and the matrix are left out. Only Pillow's ``ImageDraw`` is used (matplotlib is not needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import check_int
from .io import as_image
from .types import Localization

__all__ = ["object_panel", "heat_colors"]

_GAP = 8
_TITLE = 16
_BG = (255, 255, 255)
_OUTLINE = np.array([255, 230, 0], np.float64)
_SELECTED = np.array([255, 40, 40], np.float64)
# dark -> purple -> red -> orange -> yellow (an inferno-like ramp)
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float64)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 with a fixed dark-to-yellow ramp (NaN -> grey)."""
    v = np.asarray(values, dtype=np.float64)
    nan = ~np.isfinite(v)
    t = np.clip(np.where(nan, 0.0, v), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    f = (t - i)[..., None]
    rgb = _RAMP[i] * (1.0 - f) + _RAMP[i + 1] * f
    rgb[nan] = 128.0
    return np.round(rgb).astype(np.uint8)


def _display_rgb(img) -> np.ndarray:
    px = np.asarray(img.pixels, dtype=np.float64) * (255.0 / max(img.info.white_level, 1e-12))
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    return np.clip(np.round(px), 0, 255).astype(np.uint8)


def _resize(a: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    import cv2

    h, w = size
    if a.shape[:2] == (h, w):
        return a
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    src = a.astype(np.float32) if a.dtype == bool else a
    out = cv2.resize(src, (w, h), interpolation=interp)
    return out.astype(a.dtype) if a.dtype == bool else out


def _titled(panel: np.ndarray, title: str):
    from PIL import Image, ImageDraw

    h, w = panel.shape[:2]
    canvas = Image.new("RGB", (w, h + _TITLE), _BG)
    canvas.paste(Image.fromarray(panel), (0, _TITLE))
    ImageDraw.Draw(canvas).text((2, 2), title, fill=(0, 0, 0))
    return canvas


def _number_objects(canvas, labels: np.ndarray, selected: np.ndarray, offset: int) -> None:
    """Write each object's number at its most interior pixel."""
    from PIL import ImageDraw
    from scipy import ndimage as ndi

    draw = ImageDraw.Draw(canvas)
    n = selected.shape[0]
    for i in range(1, n + 1):
        obj = labels == i
        if not obj.any():
            continue
        d = ndi.distance_transform_edt(np.pad(obj, 1))[1:-1, 1:-1]
        r, c = np.unravel_index(int(np.argmax(d)), d.shape)
        text = str(i)
        tw, th = 6 * len(text), 10
        x, y = int(c) - tw // 2, int(r) - th // 2 + offset
        draw.rectangle((x - 1, y - 1, x + tw + 1, y + th + 1), fill=(0, 0, 0))
        draw.text((x, y), text, fill=tuple(int(v) for v in (_SELECTED if selected[i - 1] else _OUTLINE)))


def _matrix_panel(dm: np.ndarray, selected: np.ndarray, height: int):
    from PIL import Image, ImageDraw

    n = dm.shape[0]
    margin = 22
    cell = int(np.clip((height - margin) // max(n, 1), 12, 40))
    side = margin + cell * n
    finite = dm[np.isfinite(dm)]
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    colors = heat_colors(dm / vmax)
    grid = np.repeat(np.repeat(colors, cell, axis=0), cell, axis=1)
    canvas = Image.new("RGB", (side, side), _BG)
    canvas.paste(Image.fromarray(np.ascontiguousarray(grid)), (margin, margin))
    draw = ImageDraw.Draw(canvas)
    step = 1 if cell >= 6 * len(str(n)) + 2 else 2
    for i in range(0, n, step):
        text = str(i + 1)
        color = tuple(int(v) for v in _SELECTED) if selected[i] else (0, 0, 0)
        x = margin + i * cell + (cell - 6 * len(text)) // 2
        y = margin + i * cell + (cell - 10) // 2
        draw.text((x, 6), text, fill=color)
        draw.text((margin - 6 * len(text) - 3, y), text, fill=color)
    return canvas, vmax


def object_panel(image: Any, loc: Localization, *, max_side: int = 1024) -> np.ndarray:
    """Render an analyst panel (image + objects, heatmap, dissimilarity matrix) as an RGB array.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        The image ``loc`` was computed on.
    loc : Localization
        A result of :func:`noisestat.localize`. Object outlines and the matrix
        are drawn when ``loc.extras`` holds ``"labels"`` (and
        ``"dissimilarity"``); otherwise only image and heatmap.
    max_side : int, default 1024
        Image and heatmap are shrunk (area interpolation; labels nearest) so
        that their longer side is at most this many pixels.

    Returns
    -------
    ndarray of uint8, shape (H', W', 3)
        The panel; save it with :func:`noisestat.io.save_rgb_png`.

    Raises
    ------
    TypeError
        ``loc`` is not a Localization.
    ValueError
        ``loc`` does not match the image's size, or ``max_side`` < 16.

    Examples
    --------
    >>> import numpy as np, noisestat
    >>> from noisestat.panel import object_panel
    >>> img = np.random.default_rng(0).normal(128, 5, (64, 96)).clip(0, 255)
    >>> loc = noisestat.localize(img, method="median_residual")
    >>> panel = object_panel(img, loc)
    >>> panel.dtype, panel.shape[2]
    (dtype('uint8'), 3)
    """
    from PIL import Image
    from skimage.segmentation import find_boundaries

    if not isinstance(loc, Localization):
        raise TypeError(f"loc must be a Localization (from noisestat.localize), got {type(loc).__name__}")
    max_side = check_int(max_side, "max_side", minimum=16)
    img = as_image(image)
    if img.shape != loc.heatmap.shape:
        raise ValueError(
            f"loc: its heatmap has shape {loc.heatmap.shape} but the image is {img.shape}; pass the image "
            f"the localization was computed on"
        )
    h, w = img.shape
    s = min(1.0, max_side / max(h, w))
    size = (max(1, round(h * s)), max(1, round(w * s)))
    rgb = _resize(_display_rgb(img), size, nearest=False).astype(np.float64)
    heat = heat_colors(_resize(np.asarray(loc.heatmap.values, np.float32), size, nearest=False))
    heat = heat.astype(np.float64)
    labels = loc.extras.get("labels") if loc.extras else None
    panels = []
    if labels is not None:
        labels = _resize(np.asarray(labels, np.int32), size, nearest=True)
        n = int(labels.max())
        selected = np.zeros(n, bool)
        for o in loc.objects or ():
            if 1 <= o.label <= n:
                selected[o.label - 1] = o.selected
        sel_px = np.r_[False, selected][labels]
        rgb[sel_px] = 0.6 * rgb[sel_px] + 0.4 * _SELECTED
        edges = find_boundaries(labels, mode="inner")
        sel_edges = edges & sel_px
        for a in (rgb, heat):
            a[edges] = _OUTLINE
            a[sel_edges] = _SELECTED
        n_sel = int(selected.sum())
        left = _titled(np.round(rgb).astype(np.uint8), f"{n} objects, {n_sel} selected")
        _number_objects(left, labels, selected, _TITLE)
        panels.append(left)
    else:
        panels.append(_titled(np.round(rgb).astype(np.uint8), "image"))
    title = f"{loc.method}: score {loc.score:.2f}" if np.isfinite(loc.score) else f"{loc.method}: n/a"
    panels.append(_titled(np.round(heat).astype(np.uint8), title))
    if loc.reliability is not None:
        rel = _resize(np.asarray(loc.reliability, np.float32), size, nearest=False)
        grey = np.repeat(np.round(np.clip(rel, 0, 1) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
        panels.append(_titled(grey, f"reliability, mean {float(np.mean(loc.reliability)):.2f}"))
    dm = loc.extras.get("dissimilarity") if loc.extras else None
    if labels is not None and dm is not None and np.asarray(dm).ndim == 2 and np.asarray(dm).shape[0] > 0:
        dm = np.asarray(dm, np.float64)
        sel = np.zeros(dm.shape[0], bool)
        sel[: min(dm.shape[0], selected.shape[0])] = selected[: dm.shape[0]]
        mat, vmax = _matrix_panel(dm, sel, size[0])
        panels.append(_titled(np.asarray(mat), f"1 - cos, 0..{vmax:.3g}"))
    height = max(p.size[1] for p in panels)
    width = sum(p.size[0] for p in panels) + _GAP * (len(panels) - 1)
    canvas = Image.new("RGB", (width, height), _BG)
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.size[0] + _GAP
    return np.asarray(canvas, dtype=np.uint8).copy()
