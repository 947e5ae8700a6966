"""Segmentation of an image into objects, for the object-level localizer.

``segment(image, method=...)`` partitions the image into a modest number of
objects (every pixel in exactly one object) and returns a
:class:`~noisestat.types.Segmentation`. Backends live in a small registry so
that another segmenter (e.g. Mask R-CNN through ONNX Runtime) is one
registration: ``@register_segmenter("name")`` (:mod:`noisestat.registry`) on
its function, in a public module of this package, or :func:`register_backend`
from anywhere. Backends are found by importing this package's public modules
when a name is first looked up.

Built-in backends (all deterministic):

``"slic_merge"`` (default)
    SLIC-zero superpixels on a downscaled CIELAB copy, merged by colour /
    texture similarity (:mod:`noisestat.segment.slic`).
``"felzenszwalb"``
    Felzenszwalb-Huttenlocher segments, same merging (:mod:`noisestat.segment.felzenszwalb`).
``"watershed"``
    Compact watershed of the colour gradient, same merging (:mod:`noisestat.segment.watershed`).
``"grid"``
    Regular tiles, content-blind baseline (:mod:`noisestat.segment.grid`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..io import as_image
from ..registry import add_segmenter, check_keywords, get_segmenter, segmenters
from ..types import Instances, LoadedImage, Segmentation
from ._common import boxes_from_labels, normalize_labels, paint_labels

__all__ = ["segment", "backends", "register_backend", "paint_labels", "DEFAULT_BACKEND"]

DEFAULT_BACKEND = "slic_merge"


def register_backend(name: str, func: Callable[..., Any], *, replace: bool = False) -> None:
    """Make ``func`` available as ``segment(image, method=name)``.

    The function form of the ``@register_segmenter(name)`` decorator of
    :mod:`noisestat.registry`, with which the built-in backends register
    themselves beside their definition.

    Parameters
    ----------
    name : str
        Backend name (non-empty, no surrounding spaces).
    func : callable
        ``func(image: LoadedImage, **params) -> labels`` or ``-> (labels, info)``,
        or, for an instance segmenter, ``-> Instances``.
        ``labels`` is an integer array of shape ``(H, W)`` in which every
        distinct value (0 and negative values included) is one object;
        :func:`segment` renumbers them 1..n in increasing order of value.
        ``info`` is an optional dict added to ``Segmentation.params``.
        Parameters should be keyword-only with defaults; invalid values should
        raise ValueError naming the parameter.
    replace : bool, default False
        Allow replacing an already registered backend of the same name.

    Raises
    ------
    TypeError, ValueError
        As :func:`noisestat.registry.add_segmenter` (bad name or function,
        name taken).

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.segment import register_backend, segment
    >>> def halves(image):
    ...     h, w = image.shape
    ...     return np.repeat((np.arange(w) >= w // 2)[None, :], h, axis=0).astype(int)
    >>> register_backend("halves_example", halves, replace=True)
    >>> segment(np.zeros((4, 6)), method="halves_example").n_objects
    2
    """
    add_segmenter(name, func, replace=replace)


def backends() -> tuple[str, ...]:
    """Names of the registered backends, sorted.

    Examples
    --------
    >>> from noisestat.segment import backends
    >>> "slic_merge" in backends()
    True
    """
    return tuple(segmenters())


def segment(image: Any, *, method: str = DEFAULT_BACKEND, **params: Any) -> Segmentation:
    """Partition ``image`` into objects.

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (validated by :func:`noisestat.io.as_image`).
    method : str, default "slic_merge"
        Backend name, one of :func:`backends`.
    **params
        Backend parameters. The content-based backends (``slic_merge``,
        ``felzenszwalb``, ``watershed``) share the region-merging parameters:

        min_objects : int, default 4
            Merging stops when this many objects remain (unless an object is
            still smaller than ``min_area``; ``min_area`` wins).
        max_objects : int, default 16
            Merging continues past ``threshold`` until at most this many remain.
        threshold : float, default 2.0
            Merging stops once the two most similar adjacent objects differ by
            more than this. Distance = Euclidean norm of the difference of
            the objects' features ``(mean L*, mean a*, mean b*) / 10`` (CIE76
            Delta E in units of 10) and ``texture_weight * log(t + 0.5) / 0.5``,
            ``t`` = RMS first difference of L* over adjacent pixel pairs inside
            the object (pairs across object boundaries are left out, so edges
            do not count as texture).
        min_area : float, default 0.01
            Smallest object, as a fraction of the image area (objects below it
            are merged into their most similar neighbour first).
        texture_weight : float, default 1.0
            Weight of the texture term (0 = colour only).
        noise_weight : float, default 0.5
            Weight of the noise term ``noise_weight * log(s + 0.5) / 0.5``,
            ``s`` = RMS of the finest diagonal Haar coefficients of the
            full-resolution image over the object (mean of the colour
            channels, gray levels on 0-255). Keeps regions of different
            noise level apart, so that a spliced region is less often merged
            into its host; 0 = off.
        max_pixels : int, default 131072
            The over-segmenter runs on a copy downscaled (area averaging) to at
            most this many pixels; labels are upsampled by nearest-neighbour
            block replication, so boundaries are accurate to
            ``sqrt(H * W / max_pixels)`` pixels.

        Backend-specific parameters: see ``slic_merge_labels``,
        ``felzenszwalb_labels``, ``watershed_labels``, ``grid_labels``.

    Returns
    -------
    Segmentation
        ``labels`` int32 (H, W) with every pixel in one object 1..n (no 0 =
        unassigned pixel), ``boxes`` (n, 4) end-exclusive
        ``(row0, col0, row1, col1)``, ``params`` = the backend parameters used
        plus backend information (``work_shape``, ``n_superpixels``, and
        ``fallback`` when the content-based backends returned one object for a
        constant image or an image with a side below 8 pixels). An instance
        backend's result carries its :class:`~noisestat.types.Instances` in
        ``instances``; ``labels`` is then their flattened view (0 = no
        instance) and ``boxes`` the instances' boxes.

    Raises
    ------
    ValueError
        Unknown ``method`` or parameter name, or an invalid parameter value
        (the message names it).
    TypeError
        Wrong parameter type; the image is not an array, path or LoadedImage.

    Notes
    -----
    Algorithms.md section 6: the object-level localizer of the seed paper uses
    Mask R-CNN objects; here a classical default (superpixels + region merging)
    stands in. A constant image has no objects to find: the content-based
    backends return it as a single object (``params["fallback"]`` says so);
    ``grid`` tiles it as usual. Output is deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.segment import segment
    >>> img = np.zeros((64, 96, 3), np.uint8)
    >>> img[:, 48:] = (200, 30, 30)
    >>> seg = segment(img, min_objects=2)
    >>> seg.n_objects, seg.boxes.tolist()
    (2, [[0, 0, 64, 48], [0, 48, 64, 96]])
    """
    spec = get_segmenter(method)
    if not spec.var_keyword:
        check_keywords(f"segment(method={method!r})", params, spec.params)
    loaded: LoadedImage = as_image(image)
    out = spec.func(loaded, **params)
    if isinstance(out, Instances):
        if out.shape != loaded.shape:
            raise TypeError(f"backend {method!r} returned instances of shape {out.shape} for an image of "
                            f"shape {loaded.shape}; masks must have the image's shape")
        return Segmentation(labels=out.labels(), boxes=out.boxes, method=method,
                            params={**spec.params, **params, **out.params}, instances=out)
    info: dict[str, Any] = {}
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
        out, info = out
    labels = np.asarray(out)
    if labels.shape != loaded.shape or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"backend {method!r} returned labels of shape {labels.shape} and dtype {labels.dtype}; "
            f"it must return an integer array of the image's shape {loaded.shape}"
        )
    labels = normalize_labels(labels)
    n = int(labels.max())
    used = {**spec.params, **params, **info}
    return Segmentation(labels=labels, boxes=boxes_from_labels(labels, n), method=method, params=used)

