"""Tests of noisestat.segment: the partition contract, every backend, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from noisestat.segment import backends, register_backend, segment
from noisestat.segment._common import (
    colour_texture_stats,
    merge_regions,
    normalize_labels,
    region_adjacency,
    upscale_labels,
)
from noisestat.synth import clean_texture
from noisestat.types import Segmentation

BUILTIN = ("slic_merge", "felzenszwalb", "watershed", "grid")
CONTENT = ("slic_merge", "felzenszwalb", "watershed")


def _host(shape=(160, 200, 3), seed=3) -> np.ndarray:
    return np.clip(clean_texture(shape, seed=seed, n_shapes=6), 0, 255).astype(np.uint8)


def _pasted(shape=(160, 200, 3), seed=3, rect=(40, 60, 110, 150)):
    """Host with a rectangle of very different colour and a fine texture pasted in."""
    img = _host(shape, seed).astype(np.float64)
    r0, c0, r1, c1 = rect
    rng = np.random.default_rng(seed + 100)
    patch = np.empty((r1 - r0, c1 - c0, 3))
    stripes = 25.0 * np.sin(np.arange(c1 - c0) * 1.3)[None, :]
    for ch, base in enumerate((235.0, 20.0, 235.0)):
        patch[:, :, ch] = base + stripes * (1 if ch != 1 else -1) * 0.5 + rng.normal(0, 6, patch.shape[:2])
    img[r0:r1, c0:c1] = patch
    mask = np.zeros(shape[:2], bool)
    mask[r0:r1, c0:c1] = True
    return np.clip(np.round(img), 0, 255).astype(np.uint8), mask


def _check_partition(seg: Segmentation, shape: tuple[int, int]) -> None:
    lab = seg.labels
    n = seg.n_objects
    assert lab.shape == shape and lab.dtype == np.int32
    assert n >= 1
    # every pixel in exactly one object, ids contiguous 1..n
    assert lab.min() == 1 and lab.max() == n
    assert np.array_equal(np.unique(lab), np.arange(1, n + 1))
    assert seg.boxes.shape == (n, 4)
    total = 0
    for i in range(1, n + 1):
        rows, cols = np.nonzero(lab == i)
        assert tuple(seg.boxes[i - 1]) == (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        fg, bg = seg.foreground(i), seg.background(i)
        assert not (fg & bg).any()
        r0, c0, r1, c1 = seg.boxes[i - 1]
        box = np.zeros(shape, bool)
        box[r0:r1, c0:c1] = True
        assert not (fg & ~box).any() and not (bg & ~box).any()
        assert np.array_equal(fg | bg, box)
        total += fg.sum()
    assert total == shape[0] * shape[1]


@pytest.mark.parametrize("method", BUILTIN)
def test_partition_contract(method):
    img = _host()
    seg = segment(img, method=method)
    assert seg.method == method
    _check_partition(seg, img.shape[:2])
    assert 1 < seg.n_objects <= 16


@pytest.mark.parametrize("method", BUILTIN)
def test_deterministic(method):
    img, _ = _pasted(seed=5)
    a = segment(img, method=method)
    b = segment(img.copy(), method=method)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.boxes, b.boxes)


@pytest.mark.parametrize("method", CONTENT)
@pytest.mark.parametrize("seed", [3, 11])
def test_pasted_rectangle_is_one_object(method, seed):
    img, mask = _pasted(seed=seed)
    seg = segment(img, method=method)
    _check_partition(seg, mask.shape)
    ious = [(seg.foreground(i) & mask).sum() / (seg.foreground(i) | mask).sum()
            for i in range(1, seg.n_objects + 1)]
    assert max(ious) > 0.8, ious


def test_grid_rectangle_is_not_captured():
    """The IoU check above can fail: the content-blind grid does not find the rectangle."""
    img, mask = _pasted(seed=3, rect=(30, 40, 100, 120))  # straddles the 3x3 tile edges
    seg = segment(img, method="grid")
    ious = [(seg.foreground(i) & mask).sum() / (seg.foreground(i) | mask).sum()
            for i in range(1, seg.n_objects + 1)]
    assert max(ious) < 0.5


@pytest.mark.parametrize("method", CONTENT)
def test_merge_bounds_and_min_area(method):
    img, _ = _pasted(seed=7)
    for lo, hi in ((2, 3), (5, 6), (8, 8)):
        seg = segment(img, method=method, min_objects=lo, max_objects=hi, min_area=0.0)
        assert lo <= seg.n_objects <= hi
    # no downscaling here (160x200 < max_pixels): areas are exact
    seg = segment(img, method=method, min_area=0.05, min_objects=1)
    areas = np.bincount(seg.labels.ravel())[1:]
    assert areas.min() >= 0.05 * img.shape[0] * img.shape[1]
    # min_area wins over min_objects
    seg = segment(img, method=method, min_area=0.4, min_objects=4)
    assert seg.n_objects <= 2


@pytest.mark.parametrize("method", CONTENT)
def test_downscaled_path(method):
    img, mask = _pasted(shape=(300, 420, 3), seed=3, rect=(80, 120, 220, 300))
    seg = segment(img, method=method, max_pixels=64 * 64 + 1000)
    assert seg.params["work_shape"][0] * seg.params["work_shape"][1] <= 64 * 64 + 1000
    _check_partition(seg, mask.shape)
    ious = [(seg.foreground(i) & mask).sum() / (seg.foreground(i) | mask).sum()
            for i in range(1, seg.n_objects + 1)]
    assert max(ious) > 0.7


@pytest.mark.parametrize("method", BUILTIN)
@pytest.mark.parametrize(
    "kind", ["gray_uint8", "float", "uint16", "rgba", "constant", "tiny", "one_pixel", "thin"]
)
def test_input_kinds_never_crash(method, kind):
    base = _host((64, 80, 3), seed=1)
    img = {
        "gray_uint8": base[:, :, 1],
        "float": base.astype(np.float64) / 2.0 + 0.25,
        "uint16": base.astype(np.uint16) * 257,
        "rgba": np.dstack([base, np.full(base.shape[:2], 255, np.uint8)]),
        "constant": np.full((40, 50, 3), 77, np.uint8),
        "tiny": base[:5, :7],
        "one_pixel": base[:1, :1],
        "thin": base[:3, :],
    }[kind]
    seg = segment(img, method=method)
    _check_partition(seg, img.shape[:2])
    if method != "grid" and kind in ("constant", "tiny", "one_pixel", "thin"):
        assert seg.n_objects == 1
        assert "fallback" in seg.params
    if kind == "one_pixel":
        assert seg.n_objects == 1


def test_grid_tiles_exact():
    seg = segment(np.zeros((10, 7)), method="grid", rows=3, cols=2)
    ref = np.empty((10, 7), int)
    for r in range(10):
        for c in range(7):
            ref[r, c] = (r * 3 // 10) * 2 + (c * 2 // 7) + 1
    assert np.array_equal(seg.labels, ref)
    seg = segment(np.zeros((2, 50)), method="grid", rows=5, cols=4)
    assert seg.n_objects == 8 and seg.params["rows"] == 2


@pytest.mark.parametrize(
    "method, param, value",
    [
        ("slic_merge", "n_superpixels", 1),
        ("slic_merge", "compactness", -1.0),
        ("slic_merge", "min_objects", 0),
        ("slic_merge", "max_objects", 0),
        ("slic_merge", "threshold", -0.5),
        ("slic_merge", "min_area", 1.5),
        ("slic_merge", "texture_weight", float("nan")),
        ("slic_merge", "noise_weight", -1.0),
        ("watershed", "noise_weight", float("inf")),
        ("slic_merge", "max_pixels", 10),
        ("felzenszwalb", "scale", 0.0),
        ("felzenszwalb", "sigma", -1.0),
        ("felzenszwalb", "min_size", 2.0),
        ("watershed", "n_markers", 1),
        ("watershed", "compactness", -0.1),
        ("watershed", "sigma", -2.0),
        ("grid", "rows", 0),
        ("grid", "cols", -3),
    ],
)
def test_bad_values_name_the_parameter(method, param, value):
    with pytest.raises(ValueError, match=param):
        segment(_host((32, 32, 3)), method=method, **{param: value})


@pytest.mark.parametrize("method", ["slic_merge", "felzenszwalb", "watershed"])
def test_noise_term_keeps_regions_of_different_noise_apart(method):
    # one flat colour, left half noise sigma 1, right half sigma 8; texture term off so that colour
    # alone would merge everything: only the full-resolution noise term can keep the halves apart
    rng = np.random.default_rng(0)
    img = np.full((480, 640, 3), 120.0)
    img[:, :320] += rng.normal(0, 1.0, (480, 320, 3))
    img[:, 320:] += rng.normal(0, 8.0, (480, 320, 3))
    kw = dict(method=method, min_objects=1, max_objects=8, texture_weight=0.0, max_pixels=64 * 64)
    assert segment(img, noise_weight=0.0, **kw).n_objects == 1
    seg = segment(img, noise_weight=1.0, **kw)
    right = np.zeros(img.shape[:2], bool)
    right[:, 320:] = True
    for k in range(1, seg.n_objects + 1):
        share = right[seg.labels == k].mean()
        # no object straddles the noise boundary (up to superpixels that cross it: the colour is flat)
        assert share < 0.15 or share > 0.85
    assert seg.n_objects >= 2


def test_bad_calls():
    img = _host((32, 32, 3))
    with pytest.raises(ValueError, match="min_objects"):
        segment(img, min_objects=9, max_objects=4)
    with pytest.raises(ValueError, match="method"):
        segment(img, method="mask_rcnn_not_registered")
    with pytest.raises(ValueError, match="bogus"):
        segment(img, bogus=3)
    with pytest.raises(TypeError, match="rows"):
        segment(img, method="grid", rows=2.5)
    with pytest.raises(TypeError, match="method"):
        segment(img, method=3)
    with pytest.raises(TypeError):
        segment("not an image at all".split())
    with pytest.raises(ValueError):
        segment(np.full((8, 8), np.nan))


def test_backends_and_register():
    assert set(BUILTIN) <= set(backends())
    seen = {}

    def stripes(image, *, k=2):
        seen["type"] = type(image).__name__
        h, w = image.shape
        lab = np.repeat((np.arange(w) * k // w)[None, :], h, axis=0)
        return lab * 7 - 5, {"note": "stripes"}  # arbitrary values incl. negative

    register_backend("_test_stripes", stripes)
    try:
        assert "_test_stripes" in backends()
        seg = segment(np.zeros((6, 9, 3)), method="_test_stripes", k=3)
        assert seen["type"] == "LoadedImage"
        _check_partition(seg, (6, 9))
        assert seg.n_objects == 3 and seg.params == {"k": 3, "note": "stripes"}
        assert np.array_equal(seg.labels[0], [1, 1, 1, 2, 2, 2, 3, 3, 3])
        with pytest.raises(ValueError, match="already"):
            register_backend("_test_stripes", lambda image: np.zeros(image.shape, int))
        register_backend("_test_stripes", lambda image: np.zeros((2, 2), int), replace=True)
        with pytest.raises(TypeError, match="_test_stripes"):
            segment(np.zeros((6, 9)), method="_test_stripes")
        register_backend("_test_stripes", lambda image: np.zeros(image.shape, float), replace=True)
        with pytest.raises(TypeError, match="integer"):
            segment(np.zeros((6, 9)), method="_test_stripes")
    finally:
        from noisestat import registry

        registry._SEGMENTERS.pop("_test_stripes", None)
    with pytest.raises(TypeError):
        register_backend("x", 3)
    with pytest.raises(ValueError, match="name"):
        register_backend(" ", stripes)
    with pytest.raises(TypeError):
        register_backend(None, stripes)


# --------------------------------------------------------------------------- #
# Helpers against independent references
# --------------------------------------------------------------------------- #


def _mean_stats(labels, feats):
    """Region statistics (count, feature sums) and their describe(): the mean feature."""
    m = labels.max() + 1
    st = [np.bincount(labels.ravel(), minlength=m)]
    st += [np.bincount(labels.ravel(), weights=feats[..., k].ravel(), minlength=m) for k in range(feats.shape[-1])]
    return np.stack(st, axis=1).astype(float), lambda s: s[:, 1:] / s[:, :1]


def _merge(labels, feats, **kw):
    stats, describe = _mean_stats(labels, feats)
    return merge_regions(labels, stats, describe, **kw)


def test_merge_regions_two_halves():
    """Tiles of two colours merge into exactly the two halves."""
    h, w = 24, 32
    over = (np.arange(h)[:, None] // 6) * 8 + (np.arange(w)[None, :] // 4)  # 4x8 tiles
    feats = np.zeros((h, w, 2))
    feats[:, w // 2 :, 0] = 5.0
    feats += np.random.default_rng(0).normal(0, 0.01, feats.shape)
    out = _merge(over, feats, min_objects=2, max_objects=40, threshold=0.5, min_area=0.0)
    assert np.array_equal(out, (np.arange(w)[None, :] >= w // 2).repeat(h, axis=0).astype(np.int32))
    # with a threshold above the halves' distance everything merges down to min_objects
    out = _merge(over, feats, min_objects=1, max_objects=40, threshold=10.0, min_area=0.0)
    assert np.all(out == 0)
    # max_objects forces merging past the threshold
    out = _merge(over, feats, min_objects=1, max_objects=5, threshold=0.0, min_area=0.0)
    assert out.max() + 1 == 5


def test_merge_regions_small_region_goes_to_nearest_neighbour():
    lab = np.zeros((10, 30), int)
    lab[:, 10:20] = 1
    lab[:, 20:] = 2
    lab[4:6, 14:16] = 3  # tiny island inside region 1
    lab[0:2, 19:21] = 4  # tiny region touching regions 1 and 2, nearer to 2
    feats = np.zeros((10, 30, 1))
    feats[lab == 1] = 1.0
    feats[lab == 2] = 2.0
    feats[lab == 3] = 1.9  # nearer to region 2, but only adjacent to region 1
    feats[lab == 4] = 1.8
    out = _merge(lab, feats, min_objects=1, max_objects=10, threshold=0.0, min_area=0.02)
    ref = np.where(lab == 3, 1, np.where(lab == 4, 2, lab))
    assert np.array_equal(out, ref)


def test_merge_uses_exact_merged_means():
    """Distances after a merge use the area-weighted mean of the merged region."""
    lab = np.repeat(np.array([0, 1, 2, 3]).repeat([10, 30, 10, 10])[None, :], 4, axis=0)
    feats = np.choose(lab, [0.0, 1.0, 1.6, 2.0])[..., None]
    # merges: 2+3 (d=0.4, mean 1.8), then 1+(23) (d=0.8 < d01=1.0, mean (30*1+20*1.8)/50 = 1.32);
    # then d(0, 123) = 1.32 (the unweighted mean of the parts would give 1.4)
    out = _merge(lab, feats, min_objects=1, max_objects=10, threshold=1.35, min_area=0.0)
    assert np.all(out == 0)
    out = _merge(lab, feats, min_objects=1, max_objects=10, threshold=1.3, min_area=0.0)
    assert np.array_equal(out, (lab > 0).astype(np.int32))
    out = _merge(lab, feats, min_objects=1, max_objects=10, threshold=0.7, min_area=0.0)
    assert np.array_equal(out, np.minimum(lab, 2))


def test_colour_texture_stats_reference():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, (7, 9))
    lab = rng.normal(50, 10, (7, 9, 3)).astype(np.float32)
    st = colour_texture_stats(labels, lab)
    for k in range(4):
        sel = labels == k
        d2, npairs = 0.0, 0
        for r in range(7):
            for c in range(9):
                for rr, cc in ((r, c + 1), (r + 1, c)):
                    if rr < 7 and cc < 9 and labels[r, c] == k and labels[rr, cc] == k:
                        d2 += (float(lab[r, c, 0]) - float(lab[rr, cc, 0])) ** 2
                        npairs += 1
        ref = [sel.sum(), *(lab[sel].astype(float).sum(axis=0)), d2, npairs]
        np.testing.assert_allclose(st[k], ref, rtol=1e-9, atol=1e-6)


def test_region_adjacency_reference():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 6, (9, 11))
    pairs = set()
    for r in range(9):
        for c in range(11):
            for dr, dc in ((0, 1), (1, 0)):
                rr, cc = r + dr, c + dc
                if rr < 9 and cc < 11 and lab[r, c] != lab[rr, cc]:
                    pairs.add((min(lab[r, c], lab[rr, cc]), max(lab[r, c], lab[rr, cc])))
    assert sorted(map(tuple, region_adjacency(lab, 6).tolist())) == sorted(pairs)


def test_upscale_and_normalize():
    small = np.array([[0, 1], [2, 2]])
    big = upscale_labels(small, (5, 7))
    rows, cols = [0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]  # nearest source pixel centre
    ref = np.array([[small[r, c] for c in cols] for r in rows])
    assert np.array_equal(big, ref)
    assert np.array_equal(normalize_labels(np.array([[9, 3], [3, -2]])), [[3, 2], [2, 1]])
    assert np.array_equal(normalize_labels(np.array([[0, 4], [4, 0]])), [[1, 2], [2, 1]])
    already = np.array([[1, 2], [2, 3]], np.int32)
    assert np.array_equal(normalize_labels(already), already)


@pytest.mark.parametrize("shape", [(37, 52, 3), (40, 31, 1), (1, 9, 3)])
def test_noise_stats_kernel_equals_the_numpy_formula(shape):
    from noisestat.blocks.wavelets import diagonal_energy
    from noisestat.io import as_image
    from noisestat.segment._common import noise_stats, upscale_labels

    rng = np.random.default_rng(5)
    img = as_image(rng.normal(128, 30, shape).clip(0, 255))
    h, w = img.shape
    labels = upscale_labels(rng.integers(0, 6, (max(1, h // 5), max(1, w // 5))).astype(np.int32), (h, w))
    m = int(labels.max()) + 1
    e = np.zeros((h, w))
    if min(h, w) >= 2:
        blocks = diagonal_energy(img.pixels, "haar")
        e[: 2 * blocks.shape[0], : 2 * blocks.shape[1]] = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)
    ref = np.stack([np.bincount(labels.ravel(), weights=e.ravel(), minlength=m),
                    np.bincount(labels.ravel(), minlength=m).astype(np.float64)], axis=1)
    np.testing.assert_array_equal(noise_stats(labels, img), ref)
