"""Tests for noisestat.synth: seeded splices with exact masks, sample images, presets."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from noisestat.synth import (
    Splice,
    available_sample_images,
    clean_texture,
    demo_splice,
    make_splice,
    protocols,
    sample_image,
)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def host() -> np.ndarray:
    return _u8(clean_texture((96, 128, 3), seed=11))


@pytest.fixture(scope="module")
def donor() -> np.ndarray:
    return _u8(clean_texture((120, 140, 3), seed=22))


def _window(src: np.ndarray, sp: Splice) -> np.ndarray:
    """The source window that make_splice says it pasted into the mask's bounding box."""
    r0, c0, bh, bw = sp.params["bbox"]
    sy, sx = sp.params["source_offset"]
    return src[sy : sy + bh, sx : sx + bw]


def _in_bbox(a: np.ndarray, sp: Splice) -> np.ndarray:
    r0, c0, bh, bw = sp.params["bbox"]
    return a[r0 : r0 + bh, c0 : c0 + bw]


# --------------------------------------------------------------------------- #
# determinism
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("region", ["ellipse", "rectangle", "blob"])
def test_same_seed_gives_identical_bytes(host, donor, region):
    kw = dict(region=region, noise_sigma=4.0, blur_sigma=0.7, seed=5)
    a, b = make_splice(host, donor, **kw), make_splice(host, donor, **kw)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.mask.tobytes() == b.mask.tobytes()
    assert a.params == b.params
    c = make_splice(host, donor, **{**kw, "seed": 6})
    assert not np.array_equal(a.mask, c.mask)
    assert a.image.tobytes() != c.image.tobytes()


def test_same_seed_identical_with_jpeg_and_resize(host):
    kw = dict(region="ellipse", noise_var=0.002, jpeg_quality=80, resize=0.9, seed=3, apply_to="image")
    a, b = make_splice(host, **kw), make_splice(host, **kw)
    assert a.image.tobytes() == b.image.tobytes() and a.mask.tobytes() == b.mask.tobytes()


def test_noise_level_does_not_move_the_region(host, donor):
    # independent random streams: the same seed keeps region and donor offset
    a = make_splice(host, donor, region="blob", seed=9)
    b = make_splice(host, donor, region="blob", seed=9, noise_sigma=10.0, blur_sigma=1.0)
    assert np.array_equal(a.mask, b.mask)
    assert a.params["source_offset"] == b.params["source_offset"]


# --------------------------------------------------------------------------- #
# mask exactness
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("region", ["ellipse", "rectangle", "blob"])
def test_donor_splice_mask_is_exact(host, donor, region):
    sp = make_splice(host, donor, region=region, seed=1)
    m = sp.mask
    assert sp.image.dtype == np.uint8 and sp.image.shape == host.shape
    assert m.dtype == bool and m.shape == host.shape[:2]
    # outside: the host, bit for bit
    assert np.array_equal(sp.image[~m], host[~m])
    # inside: the donor window the params point to, bit for bit
    assert np.array_equal(_in_bbox(sp.image, sp)[_in_bbox(m, sp)], _window(donor, sp)[_in_bbox(m, sp)])
    # and different from what the host had there
    assert np.mean(np.any(sp.image[m] != host[m], axis=-1)) > 0.9


def test_copy_paste_from_another_location(host):
    sp = make_splice(host, region="ellipse", region_fraction=0.1, seed=4)
    m = sp.mask
    assert sp.params["donor"] == "host"
    assert sp.params["source_offset"] != tuple(sp.params["bbox"][:2])
    assert np.array_equal(sp.image[~m], host[~m])
    sub = _in_bbox(m, sp)
    assert np.array_equal(_in_bbox(sp.image, sp)[sub], _window(host, sp)[sub])
    assert np.mean(np.any(sp.image[m] != host[m], axis=-1)) > 0.9


def test_processing_region_keeps_outside_exact(host, donor):
    sp = make_splice(host, donor, region="blob", noise_sigma=3.0, blur_sigma=1.0, gamma=1.3, seed=2)
    assert np.array_equal(sp.image[~sp.mask], host[~sp.mask])
    raw = make_splice(host, donor, region="blob", seed=2)
    assert np.array_equal(raw.mask, sp.mask)
    assert np.mean(sp.image[sp.mask] != raw.image[sp.mask]) > 0.5


def test_user_mask_is_used_exactly(host, donor):
    m = np.zeros(host.shape[:2], dtype=bool)
    m[10:40, 20:50] = True
    m[60:70, 90:100] = True  # two components
    sp = make_splice(host, donor, region=m, seed=0)
    assert np.array_equal(sp.mask, m)
    assert sp.params["region"] == "array"
    assert np.array_equal(sp.image[~m], host[~m])
    # integer 0/1 masks are accepted too
    sp2 = make_splice(host, donor, region=m.astype(np.uint8), seed=0)
    assert np.array_equal(sp2.mask, m) and np.array_equal(sp2.image, sp.image)


# --------------------------------------------------------------------------- #
# added noise is measurable
# --------------------------------------------------------------------------- #


def _gray(shape=(256, 256, 3)) -> np.ndarray:
    return np.full(shape, 128, dtype=np.uint8)


def test_noise_sigma_inside_mask():
    g = _gray()
    sp = make_splice(g, g, region="rectangle", region_fraction=0.3, noise_sigma=5.0, seed=0)
    inside = sp.image[sp.mask].astype(np.float64)
    assert inside.std() == pytest.approx(5.0, rel=0.05)
    assert abs(inside.mean() - 128.0) < 0.2
    assert np.all(sp.image[~sp.mask] == 128)


def test_noise_var_converts_to_sigma():
    g = _gray()
    sp = make_splice(g, g, region="rectangle", region_fraction=0.3, noise_var=0.01, seed=1)
    assert sp.params["noise_sigma"] == pytest.approx(25.5)
    assert sp.image[sp.mask].astype(np.float64).std() == pytest.approx(25.5, rel=0.05)


def test_noise_apply_to_host_and_image():
    g = _gray((200, 200))
    on_host = make_splice(g, g, region="ellipse", region_fraction=0.3, noise_sigma=8.0, apply_to="host", seed=0)
    assert on_host.image.ndim == 2
    assert np.all(on_host.image[on_host.mask] == 128)
    assert on_host.image[~on_host.mask].astype(float).std() == pytest.approx(8.0, rel=0.05)
    on_all = make_splice(g, g, region="ellipse", region_fraction=0.3, noise_sigma=8.0, apply_to="image", seed=0)
    assert on_all.image[on_all.mask].astype(float).std() == pytest.approx(8.0, rel=0.05)
    assert on_all.image[~on_all.mask].astype(float).std() == pytest.approx(8.0, rel=0.05)


def test_blur_lowers_high_frequencies_inside_only(host, donor):
    raw = make_splice(host, donor, region="rectangle", region_fraction=0.3, seed=3)
    blr = make_splice(host, donor, region="rectangle", region_fraction=0.3, seed=3, blur_sigma=2.0)
    inner = ndi.binary_erosion(raw.mask, iterations=2)

    def hf(img):
        f = img.astype(np.float64)
        lap = np.stack([ndi.laplace(f[:, :, k], mode="reflect") for k in range(f.shape[2])], axis=-1)
        return np.abs(lap)[inner].mean()

    assert hf(blr.image) < 0.5 * hf(raw.image)
    assert np.array_equal(blr.image[~raw.mask], raw.image[~raw.mask])


def test_tone_curve_matches_formula(host, donor):
    raw = make_splice(host, donor, region="ellipse", seed=7).image.astype(np.float64)
    sp = make_splice(host, donor, region="ellipse", seed=7, gamma=1.8, dynamic_range=(32, 223), apply_to="image")
    ref = 32.0 + (223.0 - 32.0) * (raw / 255.0) ** 1.8
    assert np.max(np.abs(sp.image - ref)) <= 0.5 + 1e-9
    assert sp.image.min() >= 32 and sp.image.max() <= 223


# --------------------------------------------------------------------------- #
# JPEG and resize
# --------------------------------------------------------------------------- #


def test_jpeg_is_pillow_420_of_the_splice(host, donor):
    raw = make_splice(host, donor, region="ellipse", seed=8)
    sp = make_splice(host, donor, region="ellipse", seed=8, jpeg_quality=85)
    assert sp.image.shape == raw.image.shape and np.array_equal(sp.mask, raw.mask)
    assert sp.params["jpeg_subsampling"] == "4:2:0"

    def pil_jpeg(img, subsampling):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=85, subsampling=subsampling)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    assert np.array_equal(sp.image, pil_jpeg(raw.image, 2))
    assert not np.array_equal(sp.image, pil_jpeg(raw.image, 0))
    mse = np.mean((sp.image.astype(float) - raw.image) ** 2)
    assert 0 < mse < 30


def test_jpeg_grayscale_host(host):
    g = host[:, :, 1]
    sp = make_splice(g, region="blob", seed=1, jpeg_quality=70)
    assert sp.image.shape == g.shape and sp.image.dtype == np.uint8
    assert sp.params["jpeg_subsampling"] is None


@pytest.mark.parametrize("scale", [0.8, 0.9, 1.1, 1.2])
def test_resize_changes_image_and_mask_consistently(host, donor, scale):
    raw = make_splice(host, donor, region="ellipse", seed=2)
    sp = make_splice(host, donor, region="ellipse", seed=2, resize=scale)
    h, w = host.shape[:2]
    nh, nw = round(h * scale), round(w * scale)
    assert sp.image.shape == (nh, nw, 3) and sp.mask.shape == (nh, nw) and sp.mask.dtype == bool
    # nearest neighbour on pixel centres
    iy = np.minimum(((np.arange(nh) + 0.5) * h / nh).astype(int), h - 1)
    ix = np.minimum(((np.arange(nw) + 0.5) * w / nw).astype(int), w - 1)
    assert np.array_equal(sp.mask, raw.mask[np.ix_(iy, ix)])
    assert sp.mask.mean() == pytest.approx(raw.mask.mean(), rel=0.1)
    # the image content follows the mask: the resized splice is close to the resized reference
    ref = raw.image[np.ix_(iy, ix)].astype(float)
    assert np.mean(np.abs(sp.image - ref)) < 12


# --------------------------------------------------------------------------- #
# region shapes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("region", ["ellipse", "rectangle", "blob"])
@pytest.mark.parametrize("fraction", [0.05, 0.15, 0.3])
def test_region_fraction_connected_inside(region, fraction):
    h, w = 80, 112
    img = np.zeros((h, w), dtype=np.uint8)
    for seed in range(6):
        sp = make_splice(img, region=region, region_fraction=fraction, seed=seed)
        m = sp.mask
        assert 0.7 * fraction <= m.mean() <= 1.3 * fraction
        assert ndi.label(m)[1] == 1
        assert np.array_equal(ndi.binary_fill_holes(m), m)
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def test_shapes_differ():
    img = np.zeros((80, 112), dtype=np.uint8)
    masks = [make_splice(img, region=r, seed=0).mask for r in ("ellipse", "rectangle", "blob")]
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    rect = masks[1]
    rows, cols = np.flatnonzero(rect.any(1)), np.flatnonzero(rect.any(0))
    assert rect.sum() == len(rows) * len(cols)  # a filled box


# --------------------------------------------------------------------------- #
# donors of other sizes and colours
# --------------------------------------------------------------------------- #


def test_small_donor_is_enlarged(host):
    small = _u8(clean_texture((20, 24, 3), seed=3))
    sp = make_splice(host, small, region="rectangle", region_fraction=0.3, seed=0)
    assert sp.params["donor_scale"] > 1
    assert np.array_equal(sp.image[~sp.mask], host[~sp.mask])
    assert np.mean(np.any(sp.image[sp.mask] != host[sp.mask], axis=-1)) > 0.9


def test_colour_matching(host, donor):
    gray_host = host[:, :, 0]
    sp = make_splice(gray_host, donor, region="ellipse", seed=1)
    assert sp.image.shape == gray_host.shape
    luma = donor.astype(float) @ np.array([0.299, 0.587, 0.114])
    sub = _in_bbox(sp.mask, sp)
    assert np.array_equal(_in_bbox(sp.image, sp)[sub], _u8(_window(luma, sp))[sub])

    sp = make_splice(host, donor[:, :, 2], region="ellipse", seed=1)
    assert sp.image.shape == host.shape
    inside = sp.image[sp.mask]
    assert np.array_equal(inside[:, 0], inside[:, 1]) and np.array_equal(inside[:, 1], inside[:, 2])


def test_float_host_is_rounded():
    f = clean_texture((64, 64, 3), seed=5)
    sp = make_splice(f, region="ellipse", seed=0)
    assert np.array_equal(sp.image[~sp.mask], _u8(f)[~sp.mask])


def test_result_is_read_only_and_params_serialisable(host):
    sp = make_splice(host, region="blob", seed=0, jpeg_quality=90, resize=1.1)
    with pytest.raises(ValueError):
        sp.image[0, 0, 0] = 1
    with pytest.raises(ValueError):
        sp.mask[0, 0] = True
    p = json.loads(json.dumps(sp.params))
    for key in ("seed", "region", "region_fraction", "noise_sigma", "blur_sigma", "jpeg_quality", "gamma",
                "dynamic_range", "resize", "apply_to", "bbox", "source_offset", "fraction"):
        assert key in p
    assert p["fraction"] == pytest.approx(sp.mask.mean())
    host_copy = host.copy()
    Splice(image=host_copy, mask=np.zeros(host.shape[:2], bool))
    assert host_copy.flags.writeable  # the caller's array is not frozen


# --------------------------------------------------------------------------- #
# sample images and the demo
# --------------------------------------------------------------------------- #


def test_sample_images_are_the_bundled_skimage_ones():
    import skimage.data

    names = available_sample_images()
    for must in ("astronaut", "camera", "chelsea", "coffee", "coins", "moon", "rocket"):
        assert must in names
    for name in names:
        img = sample_image(name)
        assert img.dtype == np.uint8 and img.ndim in (2, 3)
        assert np.array_equal(img, getattr(skimage.data, name)())
    a = sample_image("camera")
    a[0, 0] ^= 1
    assert not np.array_equal(a, sample_image("camera"))  # a fresh copy each time


def test_sample_image_bad_names():
    with pytest.raises(ValueError, match="coffee"):  # lists the valid names
        sample_image("lena")
    with pytest.raises(ValueError):
        sample_image("eagle")  # needs a download: not offered
    with pytest.raises(TypeError):
        sample_image(3)


def test_demo_splice_is_reproducible_and_object_sized():
    a, b = demo_splice(), demo_splice()
    assert a.image.tobytes() == b.image.tobytes() and a.mask.tobytes() == b.mask.tobytes()
    coffee = sample_image("coffee")
    assert a.image.shape == coffee.shape
    assert 0.10 <= a.mask.mean() <= 0.20
    assert ndi.label(a.mask)[1] == 1
    assert a.params["noise_sigma"] == 6.0 and a.params["jpeg_quality"] is None
    assert a.params["region"] in ("ellipse", "blob")
    assert np.array_equal(a.image[~a.mask], coffee[~a.mask])
    # the pasted content is the donor's plus noise of sigma 6
    astro = sample_image("astronaut").astype(float)
    diff = _in_bbox(a.image, a)[_in_bbox(a.mask, a)] - _window(astro, a)[_in_bbox(a.mask, a)]
    not_clipped = (_window(astro, a)[_in_bbox(a.mask, a)] > 30) & (_window(astro, a)[_in_bbox(a.mask, a)] < 225)
    assert diff[not_clipped].std() == pytest.approx(6.0, rel=0.05)
    c = demo_splice(seed=1)
    assert not np.array_equal(c.mask, a.mask)


# --------------------------------------------------------------------------- #
# protocols
# --------------------------------------------------------------------------- #


def test_protocol_values():
    p = protocols()
    assert set(p) == {"noise_var", "blur", "jpeg_low", "gamma_range", "jpeg_high", "resize", "jpeg_sweep",
                      "noise_var_small"}
    assert [d["noise_var"] for d in p["noise_var"]] == pytest.approx([0.01, 0.03, 0.05, 0.07, 0.09])
    assert [d["jpeg_quality"] for d in p["jpeg_low"]] == [90, 80, 70]
    assert [d["jpeg_quality"] for d in p["jpeg_high"]] == [100, 95, 90]
    assert [d["resize"] for d in p["resize"]] == [0.8, 0.9, 1.1, 1.2]
    assert [d["jpeg_quality"] for d in p["jpeg_sweep"]] == [50, 60, 70, 80, 90, 100]
    small = [d["noise_var"] for d in p["noise_var_small"]]
    assert small[0] == 0.0 and small[-1] == pytest.approx(0.01) and all(np.diff(small) > 0)
    assert all(d["blur_sigma"] > 0 for d in p["blur"])
    for d in p["gamma_range"]:
        lo, hi = d["dynamic_range"]
        assert d["gamma"] != 1.0 and (lo > 0 or hi < 255)
    assert all(d["apply_to"] == "image" for v in p.values() for d in v)
    p["jpeg_low"].clear()
    assert len(protocols()["jpeg_low"]) == 3  # a fresh copy each call


def test_every_protocol_runs():
    img = _u8(clean_texture((48, 64, 3), seed=1))
    for name, settings in protocols().items():
        for kw in settings:
            sp = make_splice(img, region="ellipse", seed=0, **kw)
            assert sp.image.dtype == np.uint8 and sp.mask.any(), name
            assert sp.image.shape[:2] == sp.mask.shape


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kw, exc, word",
    [
        ({"noise_sigma": -1.0}, ValueError, "noise_sigma"),
        ({"noise_var": -0.01}, ValueError, "noise_var"),
        ({"noise_var": 2.0}, ValueError, "noise_var"),
        ({"noise_sigma": 2.0, "noise_var": 0.01}, ValueError, "noise_var"),
        ({"noise_sigma": "5"}, TypeError, "noise_sigma"),
        ({"blur_sigma": -0.5}, ValueError, "blur_sigma"),
        ({"jpeg_quality": 0}, ValueError, "jpeg_quality"),
        ({"jpeg_quality": 101}, ValueError, "jpeg_quality"),
        ({"jpeg_quality": 90.0}, TypeError, "jpeg_quality"),
        ({"gamma": 0.0}, ValueError, "gamma"),
        ({"dynamic_range": (200, 100)}, ValueError, "dynamic_range"),
        ({"dynamic_range": (0, 300)}, ValueError, "dynamic_range"),
        ({"dynamic_range": (10,)}, ValueError, "dynamic_range"),
        ({"dynamic_range": 5}, TypeError, "dynamic_range"),
        ({"resize": 0.0}, ValueError, "resize"),
        ({"resize": 0.1}, ValueError, "resize"),  # 6 pixels high
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"apply_to": "everything"}, ValueError, "apply_to"),
        ({"region": "star"}, ValueError, "region"),
        ({"region": 5}, TypeError, "region"),
        ({"region_fraction": 0.8}, ValueError, "region_fraction"),
        ({"region_fraction": 0.0}, ValueError, "region_fraction"),
        ({"region_fraction": 0.0005}, ValueError, "region_fraction"),
    ],
)
def test_bad_parameters(host, kw, exc, word):
    with pytest.raises(exc, match=word):
        make_splice(host[:64, :64], **kw)


def test_bad_region_masks(host):
    h, w = host.shape[:2]
    with pytest.raises(ValueError, match="region"):
        make_splice(host, region=np.ones((h, w + 1), bool))
    with pytest.raises(ValueError, match="empty"):
        make_splice(host, region=np.zeros((h, w), bool))
    with pytest.raises(ValueError, match="donor"):  # copy-paste needs room to move
        make_splice(host, region=np.ones((h, w), bool))
    with pytest.raises(TypeError, match="region"):
        make_splice(host, region=np.array([["a"] * w] * h))
    # with a donor, a whole-image mask is a full replacement
    sp = make_splice(host, host[::-1].copy(), region=np.ones((h, w), bool))
    assert np.array_equal(sp.image, host[::-1])


@pytest.mark.parametrize(
    "bad, exc",
    [
        ("host.png", TypeError),
        (np.zeros((64, 64), dtype=bool), TypeError),
        (np.zeros((8, 64, 3), dtype=np.uint8), ValueError),
        (np.zeros((4, 32, 32, 3), dtype=np.uint8), ValueError),
        (np.full((32, 32), np.nan), ValueError),
        (np.full((32, 32), 1000, dtype=np.uint16), ValueError),
        (np.full((32, 32, 5), 10, dtype=np.uint8), ValueError),
    ],
)
def test_bad_images(host, bad, exc):
    with pytest.raises(exc, match="host"):
        make_splice(bad)
    with pytest.raises(exc, match="donor"):
        make_splice(host, bad)
