"""Objects of the object localizer from overlapping instances (Mask R-CNN), as the seed paper uses them.

The objects are the instances (in the segmenter's order) and, when any pixel
is left, the rest of the image. An object's foreground is its mask; its
background is the rest of its box, or, when that has fewer than
``min_pixels`` pixels, the rest of the image. Overlapping masks cannot share
one label image, so the objects are put into layers of non-overlapping masks
(greedily, in order); each layer is a :class:`~noisestat.types.Segmentation`
(label 0 = not in this layer's objects) whose boxes are the objects'
background boxes, and the feature table runs once per layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..types import Instances, Segmentation

__all__ = ["InstanceObjects", "instance_objects", "layered_features"]


@dataclasses.dataclass(frozen=True)
class InstanceObjects:
    """The objects built from instances: masks, reported and background boxes, layers."""

    masks: np.ndarray  # (n, H, W) bool: instances, then the rest of the image (if any pixel is left)
    boxes: np.ndarray  # (n, 4) the reported boxes (the segmenter's; the rest's bounding box)
    bg_boxes: np.ndarray  # (n, 4) the boxes whose remainder is the background (the whole image on fallback)
    bg_whole_image: np.ndarray  # (n,) bool: background = the rest of the image
    small: np.ndarray  # (n,) bool: mask below min_pixels (invalid)
    has_rest: bool
    layers: tuple[tuple[int, ...], ...]  # object indices per layer
    display: Segmentation  # flattened labels (first covering instance; rest = n), reported boxes


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def instance_objects(inst: Instances, *, min_pixels: int) -> InstanceObjects:
    """Objects, background boxes and layers of ``inst`` (see the module docstring)."""
    h, w = inst.shape
    masks = [np.asarray(m) for m in inst.masks]
    boxes = [tuple(int(v) for v in b) for b in inst.boxes]
    covered = np.zeros((h, w), bool)
    for m in masks:
        covered |= m
    has_rest = bool((~covered).any())
    if has_rest:
        masks.append(~covered)
        boxes.append(_bbox(~covered))
    n = len(masks)
    bg_boxes = np.array(boxes, np.int64).reshape(n, 4)
    whole = np.zeros(n, bool)
    small = np.zeros(n, bool)
    for i, m in enumerate(masks):
        r0, c0, r1, c1 = boxes[i]
        remainder = (r1 - r0) * (c1 - c0) - int(m[r0:r1, c0:c1].sum())
        if remainder < min_pixels:
            bg_boxes[i] = (0, 0, h, w)
            whole[i] = True
        small[i] = int(m.sum()) < min_pixels
    layers: list[list[int]] = []
    unions: list[np.ndarray] = []
    for i, m in enumerate(masks):
        for k, u in enumerate(unions):
            if not (u & m).any():
                layers[k].append(i)
                u |= m
                break
        else:
            layers.append([i])
            unions.append(m.copy())
    display = inst.labels()
    if has_rest:
        display[~covered] = n
    seg = Segmentation(labels=display, boxes=np.array(boxes, np.int64).reshape(n, 4), method=inst.method,
                       params=dict(inst.params), instances=inst)
    return InstanceObjects(np.array(masks, bool).reshape(n, h, w), np.array(boxes, np.int64).reshape(n, 4),
                           bg_boxes, whole, small, has_rest, tuple(tuple(x) for x in layers), seg)


def layered_features(
    objs: InstanceObjects, compute: Callable[[Segmentation], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Run ``compute(layer_segmentation)`` per layer and gather the per-object outputs in object order.

    Per-object outputs (``*_fg``, ``*_bg``, ``area``, ``brightness``: one value
    per layer object) are scattered to their objects; whole-image outputs (of
    shape (1,)) are taken from the first layer. Objects whose mask has fewer
    than ``min_pixels`` pixels get NaN foreground features (invalid).
    """
    n = objs.masks.shape[0]
    out: dict[str, np.ndarray] = {}
    for k, members in enumerate(objs.layers):
        labels = np.zeros(objs.masks.shape[1:], np.int32)
        for j, i in enumerate(members):
            labels[objs.masks[i]] = j + 1
        seg = Segmentation(labels=labels, boxes=objs.bg_boxes[list(members)], method="instances-layer")
        f = compute(seg)
        for key, v in f.items():
            per_object = key.endswith(("_fg", "_bg")) or key in ("area", "brightness")
            if per_object:
                dst = out.setdefault(key, np.full(n, np.nan))
                dst[list(members)] = v
            elif k == 0:
                out[key] = v
    for key in out:
        if key.endswith("_fg"):
            out[key][objs.small] = np.nan
    return out
