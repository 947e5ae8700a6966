"""Result types shared by every noisestat method.

All results are small frozen dataclasses. Arrays inside them are made
read-only so that a result cannot be changed after it was produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "readonly",
    "ImageInfo",
    "LoadedImage",
    "NoiseEstimate",
    "Heatmap",
    "Localization",
    "Segmentation",
    "Instances",
    "ObjectDetail",
]


def readonly(a: Any) -> Any:
    """A read-only view of ``a`` (``None`` stays ``None``).

    Always a view: the caller's own array is never frozen. An array that is
    read-only already is returned as it is.

    Examples
    --------
    >>> x = np.zeros(3)
    >>> v = readonly(x)
    >>> v.flags.writeable, x.flags.writeable
    (False, True)
    """
    if a is None:
        return None
    a = np.asarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@dataclass(frozen=True)
class ImageInfo:
    """Metadata recorded when an image is loaded.

    Attributes
    ----------
    source : str
        File path, or ``"<array>"`` for in-memory input.
    format : str
        Container format (``"JPEG"``, ``"PNG"``, ``"TIFF"``, ``"array"``, ...).
    mode : str
        Original pixel mode (PIL mode name, or the array dtype for arrays).
    bit_depth : int
        Bits per sample of the stored data (8 or 16 for files; 32/64 for float arrays).
    channels : int
        Number of colour channels kept (1 or 3).
    shape : tuple of int
        ``(height, width)`` of the stored pixels.
    white_level : float
        The value of a saturated pixel on the scale of ``pixels`` (255 for
        8-bit data, 65535 for 16-bit data, the upper end of ``value_range``
        for float arrays). Clipped-pixel tests use it.
    sha256 : str or None
        SHA-256 of the input file bytes (or of the array bytes).
    is_jpeg : bool
        Whether the input was JPEG-compressed.
    jpeg_quality : float or None
        Quality estimated from the luminance quantisation table (IJG scale),
        ``None`` when not JPEG.
    jpeg_luma_table : tuple of 64 int or None
        The file's luminance quantisation table in natural (row-major) order,
        ``None`` when not a JPEG file (JPEG-domain maps such as ``adq`` use it).
    orientation : int
        EXIF orientation tag (1 = normal). Pixels are *not* rotated; masks
        are drawn on stored pixels.
    alpha_dropped : bool
        An alpha channel was present and has been dropped.
    converted_from : str or None
        Original mode when pixels were converted (palette, CMYK, LA, ...).
    """

    source: str = "<array>"
    format: str = "array"
    mode: str = ""
    bit_depth: int = 8
    channels: int = 3
    shape: tuple[int, int] = (0, 0)
    white_level: float = 255.0
    sha256: str | None = None
    is_jpeg: bool = False
    jpeg_quality: float | None = None
    jpeg_luma_table: tuple[int, ...] | None = None
    orientation: int = 1
    alpha_dropped: bool = False
    converted_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class LoadedImage:
    """Validated pixels plus metadata, as returned by :func:`noisestat.load_image`.

    Attributes
    ----------
    pixels : ndarray, shape (H, W, C), float32
        C-contiguous, finite, channel-last pixel values on the native scale
        (0-255 for 8-bit data). ``C`` is 1 or 3.
    info : ImageInfo
    """

    pixels: np.ndarray
    info: ImageInfo

    def __post_init__(self) -> None:
        object.__setattr__(self, "pixels", readonly(self.pixels))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    def gray(self) -> np.ndarray:
        """Luma (ITU-R BT.601) as a float32 (H, W) array."""
        p = self.pixels
        if p.shape[2] == 1:
            return np.ascontiguousarray(p[:, :, 0])
        if p.dtype == np.float32:
            from ._types_kernels import luma  # the float32 expression below in one pass (same bits)

            out = np.empty(p.shape[:2], np.float32)
            luma(p, out)
            return out
        return np.ascontiguousarray(
            (0.299 * p[:, :, 0] + 0.587 * p[:, :, 1] + 0.114 * p[:, :, 2]).astype(np.float32)
        )


@dataclass(frozen=True)
class NoiseEstimate:
    """A scalar noise-level estimate.

    Attributes
    ----------
    sigma : float
        Noise standard deviation in image units (0-255 for 8-bit data) for the
        whole input, as the method defines it for colour data. NaN when no
        estimate was possible (see ``reliable`` and ``note``).
    sigma_per_channel : tuple of float
        One estimate per colour channel (NaN where undefined).
    n_patches : int
        Number of patches (or samples) that entered the estimate.
    fallback : str or None
        Which fallback was taken, if any (e.g. ``"patch_size=5"``, ``"mad"``).
    method : str
        Estimator name.
    params : dict
        Parameters used.
    reliable : bool
        False when the estimate rests on too little data or a fallback.
    note : str
        Human-readable explanation when ``reliable`` is False.
    """

    sigma: float
    sigma_per_channel: tuple[float, ...] = ()
    n_patches: int = 0
    fallback: str | None = None
    method: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    reliable: bool = True
    note: str = ""

    def __float__(self) -> float:
        return float(self.sigma)


@dataclass(frozen=True)
class Heatmap:
    """A dense forensic map at full image resolution.

    Attributes
    ----------
    values : ndarray, shape (H, W), float32
        Map in [0, 1]; high = more likely spliced. Obtained from ``raw`` by a
        fixed mapping (see :func:`noisestat.heatmap.robust_logistic`), never
        per-image min-max, so that 0.5 means the same on every image.
    raw : ndarray, shape (H, W), float32
        The underlying statistic in physical units (see ``units``).
    method : str
    params : dict
    units : str
        Units of ``raw`` (e.g. ``"sigma (0-255)"``).
    timings : dict
        Seconds spent in named stages.
    applicable : bool
        False when the method does not apply to this input (e.g. ELA on a
        never-compressed image); ``values`` is then all zeros and ``note``
        says why.
    note : str
    """

    values: np.ndarray
    raw: np.ndarray
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    units: str = ""
    timings: Mapping[str, float] = field(default_factory=dict)
    applicable: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        if v.ndim != 2:
            raise ValueError(f"Heatmap.values must be 2-D, got shape {v.shape}")
        if np.asarray(self.raw).shape != v.shape:
            raise ValueError(
                f"Heatmap.raw shape {np.asarray(self.raw).shape} != values shape {v.shape}"
            )
        object.__setattr__(self, "values", readonly(v.astype(np.float32, copy=False)))
        object.__setattr__(self, "raw", readonly(np.asarray(self.raw, dtype=np.float32)))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    @classmethod
    def not_applicable(
        cls,
        shape: tuple[int, int],
        *,
        method: str,
        note: str,
        params: Mapping[str, Any] | None = None,
        units: str = "",
        timings: Mapping[str, float] | None = None,
    ) -> Heatmap:
        """The result of a method that does not apply to an input: zeros, ``applicable=False``, ``note``.

        Examples
        --------
        >>> hm = Heatmap.not_applicable((2, 3), method="ela", note="ELA is not applicable: not a JPEG")
        >>> hm.applicable, hm.values.shape, float(hm.values.max())
        (False, (2, 3), 0.0)
        """
        z = np.zeros(shape, np.float32)
        return cls(values=z, raw=z, method=method, params=dict(params or {}), units=units,
                   timings=dict(timings or {}), applicable=False, note=note)


@dataclass(frozen=True)
class ObjectDetail:
    """Per-object information of an object-level localizer."""

    label: int
    bbox: tuple[int, int, int, int]  # (row0, col0, row1, col1), end exclusive
    area: int
    features: Mapping[str, float]
    score: float
    selected: bool
    valid: bool = True
    note: str = ""


@dataclass(frozen=True)
class Localization:
    """The result of :func:`noisestat.localize`.

    Attributes
    ----------
    heatmap : Heatmap
    mask : ndarray, shape (H, W), bool
        Binary localisation (True = spliced).
    score : float
        Image-level detection score in [0, 1] (higher = more likely manipulated).
    method : str
    params : dict
    reliability : ndarray, shape (H, W), float32, or None
        Optional per-pixel reliability in [0, 1].
    objects : tuple of ObjectDetail, or None
        Per-object details for object-level methods.
    extras : dict
        Method-specific arrays (e.g. the dissimilarity matrix).
    timings : dict
        Seconds per stage, including ``"total"``.
    """

    heatmap: Heatmap
    mask: np.ndarray
    score: float
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reliability: np.ndarray | None = None
    objects: tuple[ObjectDetail, ...] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.mask, dtype=bool)
        if m.shape != self.heatmap.shape:
            raise ValueError(f"mask shape {m.shape} != heatmap shape {self.heatmap.shape}")
        object.__setattr__(self, "mask", readonly(m))
        if self.reliability is not None:
            object.__setattr__(
                self, "reliability", readonly(np.asarray(self.reliability, dtype=np.float32))
            )

    @property
    def applicable(self) -> bool:
        return self.heatmap.applicable


@dataclass(frozen=True)
class Segmentation:
    """A partition of an image into objects.

    Attributes
    ----------
    labels : ndarray, shape (H, W), int32
        0 = unassigned, 1..n = object labels.
    boxes : ndarray, shape (n, 4), int64
        ``(row0, col0, row1, col1)`` per object (end exclusive), object i at row i-1.
    method : str
    params : dict
    instances : Instances or None
        Set by instance backends (e.g. Mask R-CNN): the possibly overlapping
        instances themselves. ``labels`` / ``boxes`` are then their flattened
        view (each pixel labelled with the first instance, in order, whose
        mask covers it; 0 = no instance), kept for consumers that need a
        partition.
    """

    labels: np.ndarray
    boxes: np.ndarray
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    instances: Instances | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", readonly(np.asarray(self.labels, dtype=np.int32)))
        object.__setattr__(self, "boxes", readonly(np.asarray(self.boxes, dtype=np.int64).reshape(-1, 4)))

    @property
    def n_objects(self) -> int:
        return int(self.boxes.shape[0])

    def foreground(self, label: int) -> np.ndarray:
        """Boolean mask of object ``label`` (1-based) at full resolution."""
        return self.labels == label

    def background(self, label: int) -> np.ndarray:
        """Boolean mask of the object's bounding box minus the object."""
        r0, c0, r1, c1 = (int(v) for v in self.boxes[label - 1])
        out = np.zeros(self.labels.shape, dtype=bool)
        out[r0:r1, c0:c1] = self.labels[r0:r1, c0:c1] != label
        return out


@dataclass(frozen=True)
class Instances:
    """Possibly overlapping object instances with boxes and scores (an instance segmenter's output).

    Attributes
    ----------
    masks : ndarray, shape (n, H, W), bool
        Instance masks at full resolution; masks may overlap.
    boxes : ndarray, shape (n, 4), int64
        ``(row0, col0, row1, col1)`` per instance (end exclusive), as reported
        by the segmenter (a box may be larger than its mask).
    scores : ndarray, shape (n,), float64
        Detection confidences in [0, 1].
    classes : ndarray, shape (n,), int64
        Class ids of the detector (-1 when unknown).
    method : str
    params : dict

    Examples
    --------
    >>> m = np.zeros((1, 4, 6), bool)
    >>> m[0, 1:3, 1:3] = True
    >>> inst = Instances(m, [[0, 0, 4, 4]], [0.9], [1], method="example")
    >>> inst.n_instances, int(inst.foreground(1).sum()), int(inst.background(1).sum())
    (1, 4, 12)
    >>> inst.labels().tolist()[1]
    [0, 1, 1, 0, 0, 0]
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f"masks must have shape (n, H, W), got {masks.shape}")
        n = masks.shape[0]
        boxes = np.asarray(self.boxes, dtype=np.int64).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        classes = np.asarray(self.classes, dtype=np.int64).reshape(-1)
        for name, a in (("boxes", boxes), ("scores", scores), ("classes", classes)):
            if a.shape[0] != n:
                raise ValueError(f"{name} has {a.shape[0]} rows for {n} masks; give one per instance")
        object.__setattr__(self, "masks", readonly(masks))
        object.__setattr__(self, "boxes", readonly(boxes))
        object.__setattr__(self, "scores", readonly(scores))
        object.__setattr__(self, "classes", readonly(classes))

    @property
    def n_instances(self) -> int:
        return int(self.masks.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.masks.shape[1]), int(self.masks.shape[2]))

    def foreground(self, label: int) -> np.ndarray:
        """Mask of instance ``label`` (1-based)."""
        return np.asarray(self.masks[label - 1])

    def background(self, label: int) -> np.ndarray:
        """The instance's box minus its mask."""
        r0, c0, r1, c1 = (int(v) for v in self.boxes[label - 1])
        out = np.zeros(self.shape, dtype=bool)
        out[r0:r1, c0:c1] = ~self.masks[label - 1, r0:r1, c0:c1]
        return out

    def labels(self) -> np.ndarray:
        """Flattened label image: each pixel gets the first instance (1-based) covering it, else 0."""
        out = np.zeros(self.shape, np.int32)
        for i in range(self.n_instances - 1, -1, -1):
            out[self.masks[i]] = i + 1
        return out
