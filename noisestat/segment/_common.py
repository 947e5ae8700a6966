"""Shared machinery of the segmentation backends.

* :func:`work_image` - the downscaled CIELAB copy the over-segmenters run on;
* :func:`upscale_labels` - nearest-neighbour block replication back to full size;
* :func:`merge_regions` - greedy hierarchical merging of adjacent regions by
  colour / texture similarity, with a minimum object area and bounds on the
  number of objects (the "region merging" of algorithms.md section 6);
* :func:`normalize_labels` / :func:`boxes_from_labels` - the common output form.

Nothing here imports Numba; scikit-image is imported lazily by the backends.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_float, check_int
from ..types import LoadedImage

#: colour difference (CIE76 Delta E, L* on 0-100) that counts as one unit of distance
COLOUR_SCALE = 10.0
#: texture difference (natural log of the RMS first difference of L*) that counts as one unit
TEXTURE_SCALE = 0.5
#: offset (L* units) inside the texture logarithm, so that flat regions do not go to -inf
TEXTURE_FLOOR = 0.5
#: noise difference (natural log of the RMS finest diagonal Haar coefficient, gray levels
#: on a 0-255 scale) that counts as one unit
NOISE_SCALE = 0.5
#: offset (gray levels) inside the noise logarithm
NOISE_FLOOR = 0.5
#: images with a side shorter than this are returned as one object by the content-based backends
MIN_SIDE = 8


@dataclass(frozen=True)
class WorkImage:
    """The downscaled image the over-segmenters see.

    Attributes
    ----------
    lab : ndarray, shape (h, w, 3), float32
        CIELAB (L* in 0-100) of the downscaled image; gray input has a* = b* = 0.
    full_shape : tuple of int
        ``(H, W)`` of the input.
    """

    lab: np.ndarray
    full_shape: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.lab.shape[0]), int(self.lab.shape[1]))


def is_degenerate(image: LoadedImage) -> str | None:
    """Why ``image`` cannot be segmented by content, or None.

    Returns a note for images with a side below :data:`MIN_SIDE` pixels and for
    constant images (peak-to-peak below ``1e-6 * white_level``).
    """
    h, w = image.shape
    if min(h, w) < MIN_SIDE:
        return f"image of {h}x{w} pixels is smaller than {MIN_SIDE}x{MIN_SIDE}: one object"
    px = image.pixels
    if float(px.max()) - float(px.min()) <= 1e-6 * max(float(image.info.white_level), 1.0):
        return "constant image: one object"
    return None


def work_shape(shape: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """Size of the working copy: ``shape`` scaled down to at most ``max_pixels`` pixels."""
    h, w = shape
    if h * w <= max_pixels:
        return (h, w)
    s = math.sqrt(max_pixels / (h * w))
    return (max(1, min(h, int(h * s))), max(1, min(w, int(w * s))))


def work_image(image: LoadedImage, max_pixels: int) -> WorkImage:
    """Downscale (area averaging) to at most ``max_pixels`` pixels, convert to CIELAB."""
    import cv2

    h, w = image.shape
    sh, sw = work_shape((h, w), max_pixels)
    px = image.pixels
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    if (sh, sw) != (h, w):
        small = cv2.resize(px, (sw, sh), interpolation=cv2.INTER_AREA)
    else:
        small = np.array(px, dtype=np.float32)
    white = max(float(image.info.white_level), 1e-12)
    small = np.clip(small * np.float32(1.0 / white), 0.0, 1.0).astype(np.float32)
    lab = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2Lab)
    return WorkImage(np.ascontiguousarray(lab), (h, w))


def upscale_labels(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour block replication of ``small`` to ``shape`` (keeps connectivity)."""
    h, w = small.shape
    big_h, big_w = shape
    if (h, w) == (big_h, big_w):
        return np.ascontiguousarray(small, dtype=np.int32)
    from ._common_kernels import take2d

    ri = np.minimum(((np.arange(big_h) + 0.5) * (h / big_h)).astype(np.intp), h - 1)
    ci = np.minimum(((np.arange(big_w) + 0.5) * (w / big_w)).astype(np.intp), w - 1)
    return take2d(np.ascontiguousarray(small, dtype=np.int32), ri, ci)


def sequential(labels: np.ndarray) -> np.ndarray:
    """Relabel to 0..n-1 in order of first appearance (raster order); small arrays only."""
    flat = labels.ravel()
    _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    rank = np.empty(first.size, np.int32)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size, dtype=np.int32)
    return rank[inverse.ravel()].reshape(labels.shape)


def normalize_labels(labels: np.ndarray) -> np.ndarray:
    """Map the distinct values of an integer label image to 1..n, keeping their order."""
    lab = np.asarray(labels)
    if lab.size and int(lab.min()) >= 0 and int(lab.max()) <= 4 * lab.size + 1024:
        present = np.bincount(lab.ravel(), minlength=1) > 0
        lut = np.zeros(present.size, np.int32)
        lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
        if np.array_equal(lut[present], np.flatnonzero(present)) and lab.dtype == np.int32:
            return np.ascontiguousarray(lab)  # already 1..n
        return np.ascontiguousarray(lut[lab])
    _, inverse = np.unique(lab.ravel(), return_inverse=True)
    return (inverse.reshape(lab.shape) + 1).astype(np.int32)


def paint_labels(table: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One value per label painted on a label image: ``table[labels]``.

    Parameters
    ----------
    table : ndarray, shape (n,)
        Value of every label 0..n-1 (any numeric or bool dtype; e.g. 0 for the
        background at index 0, then one value per object).
    labels : ndarray of int, shape (H, W)
        A label image (e.g. ``Segmentation.labels``), values 0..n-1.

    Returns
    -------
    ndarray, shape (H, W), dtype of ``table``
        The same array as ``table[labels]`` (one parallel pass over the rows).

    Raises
    ------
    TypeError
        ``labels`` not a 2-D integer array, or ``table`` not 1-D.
    IndexError
        A label outside 0..n-1.

    Examples
    --------
    >>> paint_labels(np.array([0.0, 0.5], np.float32), np.array([[0, 1], [1, 1]])).tolist()
    [[0.0, 0.5], [0.5, 0.5]]
    """
    from ._common_kernels import paint

    t = np.ascontiguousarray(table)
    lab = np.asarray(labels)
    if t.ndim != 1:
        raise TypeError(f"table must be 1-D, got shape {t.shape}")
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"labels must be a 2-D integer array, got {lab.dtype} of shape {lab.shape}")
    if lab.dtype not in (np.int32, np.int64):
        lab = lab.astype(np.int64)
    out, bad = paint(t, np.ascontiguousarray(lab))
    if bad.any():
        raise IndexError(f"{int(bad.sum())} labels outside 0..{t.size - 1}")
    return out


def boxes_from_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """``(n, 4)`` end-exclusive ``(row0, col0, row1, col1)`` of labels 1..n."""
    from scipy import ndimage as ndi

    boxes = np.zeros((n, 4), np.int64)
    for i, sl in enumerate(ndi.find_objects(labels, max_label=n)):
        if sl is None:  # pragma: no cover - normalize_labels guarantees presence
            raise RuntimeError(f"label {i + 1} is absent")
        boxes[i] = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
    return boxes


# --------------------------------------------------------------------------- #
# Region merging
# --------------------------------------------------------------------------- #

MERGE_DEFAULTS: dict[str, Any] = {
    "min_objects": 4,
    "max_objects": 16,
    "threshold": 2.0,
    "min_area": 0.01,
    "texture_weight": 1.0,
    "noise_weight": 0.5,
    "max_pixels": 131072,
}


def check_merge_params(
    *,
    min_objects: Any,
    max_objects: Any,
    threshold: Any,
    min_area: Any,
    texture_weight: Any,
    noise_weight: Any,
    max_pixels: Any,
) -> dict[str, Any]:
    """Validate the region-merging parameters shared by the content-based backends."""
    p = {
        "min_objects": check_int(min_objects, "min_objects", minimum=1),
        "max_objects": check_int(max_objects, "max_objects", minimum=1),
        "threshold": check_float(threshold, "threshold", minimum=0.0),
        "min_area": check_float(min_area, "min_area", minimum=0.0, maximum=1.0),
        "texture_weight": check_float(texture_weight, "texture_weight", minimum=0.0),
        "noise_weight": check_float(noise_weight, "noise_weight", minimum=0.0),
        "max_pixels": check_int(max_pixels, "max_pixels", minimum=64 * 64),
    }
    if p["min_objects"] > p["max_objects"]:
        raise ValueError(
            f"min_objects={p['min_objects']} is larger than max_objects={p['max_objects']}; "
            f"use min_objects <= max_objects"
        )
    return p


def region_adjacency(labels: np.ndarray, m: int) -> np.ndarray:
    """Unique 4-neighbour pairs ``(a, b)``, ``a < b``, of a label image with ids 0..m-1."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()]).astype(np.int64)
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()]).astype(np.int64)
    diff = a != b
    a, b = a[diff], b[diff]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    codes = np.unique(lo * m + hi)
    return np.stack([codes // m, codes % m], axis=1)


def merge_regions(
    labels: np.ndarray,
    stats: np.ndarray,
    describe: Callable[[np.ndarray], np.ndarray],
    *,
    min_objects: int,
    max_objects: int,
    threshold: float,
    min_area: float,
) -> np.ndarray:
    """Greedy hierarchical merging of adjacent regions.

    Parameters
    ----------
    labels : ndarray, shape (h, w), int
        Over-segmentation with ids 0..m-1 (every id present).
    stats : ndarray, shape (m, K), float
        Additive sufficient statistics of each region (pixel counts, sums,
        ...): the statistics of a merged region are the sums of its parts'.
    describe : callable
        ``describe(stats[idx]) -> features`` maps rows of ``stats`` (shape
        (k, K)) to feature vectors (k, F) scaled so that Euclidean distance 1
        is one unit of dissimilarity.
    min_objects, max_objects : int
        Merging stops at ``min_objects`` regions, and goes on past ``threshold``
        until at most ``max_objects`` regions remain.
    threshold : float
        Merging stops once the most similar adjacent pair is farther apart
        than this (and no more than ``max_objects`` regions remain).
    min_area : float
        Regions smaller than this fraction of the image are merged into their
        most similar neighbour first, whatever ``min_objects`` says.

    Returns
    -------
    ndarray, shape (h, w), int32
        Merged labels 0..k-1 in order of first appearance.

    Notes
    -----
    At every step: if a region is smaller than ``min_area`` the smallest such
    region (lowest id on ties) is merged into its nearest neighbour; otherwise
    the globally nearest adjacent pair (ties: lowest ids) is merged. Region
    features are recomputed exactly from the summed statistics after each
    merge. Deterministic: no randomness, all ties broken by id.
    """
    labels = np.ascontiguousarray(labels)
    m = int(labels.max()) + 1
    flat = labels.ravel()
    area = np.bincount(flat, minlength=m).astype(np.float64)
    stats = np.array(stats, dtype=np.float64).reshape(m, -1)
    feat = np.asarray(describe(stats), dtype=np.float64).reshape(m, -1)
    min_px = math.ceil(min_area * flat.size)

    nbrs: list[set[int]] = [set() for _ in range(m)]
    pairs = region_adjacency(labels, m)
    for a, b in pairs.tolist():
        nbrs[a].add(b)
        nbrs[b].add(a)
    version = np.zeros(m, np.int64)
    alive = np.ones(m, bool)
    root = np.arange(m)

    def dist(i: int, j: int) -> float:
        d = feat[i] - feat[j]
        return float(math.sqrt(float(d @ d)))

    heap: list[tuple[float, int, int, int, int]] = []
    if pairs.size:
        dd = np.sqrt(((feat[pairs[:, 0]] - feat[pairs[:, 1]]) ** 2).sum(axis=1))
        heap = [(float(d), int(a), int(b), 0, 0) for d, (a, b) in zip(dd, pairs.tolist())]
        heapq.heapify(heap)

    def merge(i: int, j: int) -> None:
        keep, gone = (i, j) if i < j else (j, i)
        area[keep] += area[gone]
        stats[keep] += stats[gone]
        feat[keep] = np.asarray(describe(stats[keep : keep + 1]), dtype=np.float64).reshape(-1)
        alive[gone] = False
        root[root == gone] = keep
        for q in nbrs[gone]:
            nbrs[q].discard(gone)
            if q != keep:
                nbrs[q].add(keep)
                nbrs[keep].add(q)
        nbrs[keep].discard(gone)
        nbrs[gone] = set()
        version[keep] += 1
        for q in sorted(nbrs[keep]):
            a, b = (keep, q) if keep < q else (q, keep)
            heapq.heappush(heap, (dist(a, b), a, b, int(version[a]), int(version[b])))

    n = m
    while n > 1:
        small = [k for k in np.flatnonzero(alive & (area < min_px)).tolist() if nbrs[k]]
        if small:
            k = min(small, key=lambda r: (area[r], r))
            j = min(nbrs[k], key=lambda q: (dist(k, q), q))
            merge(k, j)
            n -= 1
            continue
        if n <= min_objects:
            break
        while heap:
            d, a, b, va, vb = heap[0]
            if alive[a] and alive[b] and version[a] == va and version[b] == vb:
                break
            heapq.heappop(heap)
        if not heap:
            break
        d, a, b, _, _ = heap[0]
        if n <= max_objects and d > threshold:
            break
        heapq.heappop(heap)
        merge(a, b)
        n -= 1
    return sequential(root[labels])


def colour_texture_stats(labels: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Per-region sufficient statistics of the merge features.

    Columns: pixel count, sums of L*, a*, b*, sum of squared first
    differences of L* over horizontally / vertically adjacent pixel pairs that
    lie inside the region, and the number of such pairs. Pairs that straddle a
    region boundary are left out, so an edge between regions never counts as
    texture of either.
    """
    m = int(labels.max()) + 1
    flat = labels.ravel()
    cols = [np.bincount(flat, minlength=m).astype(np.float64)]
    for c in range(3):
        cols.append(np.bincount(flat, weights=lab[:, :, c].ravel().astype(np.float64), minlength=m))
    lum = lab[:, :, 0].astype(np.float64)
    d2 = np.zeros(m)
    npairs = np.zeros(m)
    for la, lb, va, vb in (
        (labels[:, :-1], labels[:, 1:], lum[:, :-1], lum[:, 1:]),
        (labels[:-1, :], labels[1:, :], lum[:-1, :], lum[1:, :]),
    ):
        same = la == lb
        ids = la[same]
        d2 += np.bincount(ids, weights=(va[same] - vb[same]) ** 2, minlength=m)
        npairs += np.bincount(ids, minlength=m)
    cols += [d2, npairs]
    return np.stack(cols, axis=1)


def colour_texture_features(texture_weight: float) -> Callable[[np.ndarray], np.ndarray]:
    """``describe`` for :func:`colour_texture_stats`: scaled mean L*a*b* and log RMS difference."""

    def describe(st: np.ndarray) -> np.ndarray:
        n = np.maximum(st[:, :1], 1.0)
        lab = st[:, 1:4] / n / COLOUR_SCALE
        rms = np.sqrt(st[:, 4] / np.maximum(st[:, 5], 1.0))
        tex = np.log(rms + TEXTURE_FLOOR) * (texture_weight / TEXTURE_SCALE)
        return np.concatenate([lab, tex[:, None]], axis=1)

    return describe


def noise_stats(labels: np.ndarray, image: LoadedImage) -> np.ndarray:
    """Per-region sums for the merge's noise term, measured on the full-resolution image.

    Columns: sum over the region's pixels of the squared finest diagonal Haar
    coefficient of their 2 x 2 block (mean over colour channels, gray levels
    on a 0-255 scale) and the pixel count. ``labels`` is full size.
    """
    from ..blocks.wavelets import daubechies_filters, diagonal_energy
    from ._common_kernels import haar_noise_sums

    h, w = image.shape
    m = int(labels.max()) + 1
    factor = (255.0 / max(float(image.info.white_level), 1e-12)) ** 2
    if image.pixels.dtype == np.float32:
        # one pass, no full-size float64 arrays; the same arithmetic and summation order as below
        g = daubechies_filters("haar")[1]
        s, n = haar_noise_sums(np.ascontiguousarray(image.pixels), np.ascontiguousarray(labels),
                               float(g[0]), float(g[1]), factor, m)
        return np.stack([s, n], axis=1)
    e = np.zeros((h, w), np.float64)
    if min(h, w) >= 2:
        blocks = diagonal_energy(image.pixels, "haar")
        blocks *= factor
        e[: 2 * blocks.shape[0], : 2 * blocks.shape[1]] = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)
        # Haar covers every full 2 x 2 block: only an odd last row / column is left at 0
    flat = labels.ravel()
    return np.stack([np.bincount(flat, weights=e.ravel(), minlength=m),
                     np.bincount(flat, minlength=m).astype(np.float64)], axis=1)


def with_noise_term(
    describe: Callable[[np.ndarray], np.ndarray], n_cols: int, noise_weight: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Extend ``describe`` (first ``n_cols`` statistics) with the noise term of :func:`noise_stats`."""

    def describe_all(st: np.ndarray) -> np.ndarray:
        rms = np.sqrt(st[:, n_cols] / np.maximum(st[:, n_cols + 1], 1.0))
        nz = np.log(rms + NOISE_FLOOR) * (noise_weight / NOISE_SCALE)
        return np.concatenate([describe(st[:, :n_cols]), nz[:, None]], axis=1)

    return describe_all


def oversegment_and_merge(
    image: LoadedImage, overseg: Callable[[WorkImage], np.ndarray], merge_params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``overseg(work) -> labels`` on the working copy, merge, upscale.

    Returns the full-size labels and an info dict for ``Segmentation.params``.
    An image that cannot be segmented by content (:func:`is_degenerate`) is
    returned as one object (all labels 0, ``info["fallback"]`` says why)
    without calling ``overseg``.
    """
    note = is_degenerate(image)
    if note:
        return np.zeros(image.shape, np.int32), {"fallback": note}
    work = work_image(image, merge_params["max_pixels"])
    over = sequential(np.asarray(overseg(work)))
    n_over = int(over.max()) + 1
    stats = colour_texture_stats(over, work.lab)
    describe = colour_texture_features(merge_params["texture_weight"])
    if merge_params["noise_weight"] > 0:
        full = upscale_labels(over, work.full_shape)
        describe = with_noise_term(describe, stats.shape[1], merge_params["noise_weight"])
        stats = np.concatenate([stats, noise_stats(full, image)], axis=1)
    merged = merge_regions(
        over,
        stats,
        describe,
        min_objects=merge_params["min_objects"],
        max_objects=merge_params["max_objects"],
        threshold=merge_params["threshold"],
        min_area=merge_params["min_area"],
    )
    info = {"work_shape": work.shape, "n_oversegments": n_over}
    return upscale_labels(merged, work.full_shape), info
