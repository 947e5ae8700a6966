"""ELA and median-residual maps against slow numpy references and known effects."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from noisestat.io import load_image
from noisestat.maps.ela import ela_map
from noisestat.maps.median_residual import median_residual_map
from noisestat.synth import clean_texture

# --------------------------------------------------------------------------- #
# references
# --------------------------------------------------------------------------- #


def ref_box_mean(x, b):
    """Mean over rows y - b//2 ... y - b//2 + b - 1 (same for columns), symmetric border."""
    lo, hi = b // 2, b - 1 - b // 2
    xp = np.pad(np.asarray(x, np.float64), ((lo, hi), (lo, hi)), mode="symmetric")
    return sliding_window_view(xp, (b, b)).mean(axis=(2, 3))


def ref_median_residual(px, b):
    """Channel mean of |I - median3x3(I)| (replicated border), then the box mean."""
    px = np.asarray(px, np.float64)
    if px.ndim == 2:
        px = px[:, :, None]
    res = np.zeros(px.shape[:2])
    for c in range(px.shape[2]):
        ch = px[:, :, c]
        med = np.median(sliding_window_view(np.pad(ch, 1, mode="edge"), (3, 3)), axis=(2, 3))
        res += np.abs(ch - med)
    return ref_box_mean(res / px.shape[2], b)


def _jpeg_bytes(img: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def texture_u8():
    img = clean_texture((96, 120, 3), seed=11) + np.random.default_rng(11).normal(0, 3, (96, 120, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- #
# median residual
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("shape,block", [((37, 29, 3), 8), ((40, 33), 7), ((30, 30, 1), 32), ((64, 48, 3), 1)])
def test_median_residual_matches_reference(shape, block, rng):
    img = rng.normal(120, 15, shape)
    img[: shape[0] // 3, : shape[1] // 2] = 255.0  # clipped flat part
    img = np.round(img).clip(0, 255).astype(np.uint8)
    hm = median_residual_map(img, block=block)
    np.testing.assert_allclose(hm.raw, ref_median_residual(img, block), rtol=1e-5, atol=1e-4)
    assert hm.raw.dtype == np.float32 and hm.shape == shape[:2]


def test_median_residual_float_input_matches_reference(rng):
    img = rng.normal(100, 4, (33, 41, 3))
    np.testing.assert_allclose(median_residual_map(img, block=5).raw, ref_median_residual(img, 5),
                               rtol=1e-5, atol=1e-4)


def test_median_residual_tracks_noise_level(rng):
    # flat image with sigma 2, a 64x96 patch with sigma 6: E|r| is proportional to sigma
    img = 128.0 + rng.normal(0, 2, (128, 256))
    img[32:96, 80:176] = 128.0 + rng.normal(0, 6, (64, 96))
    hm = median_residual_map(img, block=16)
    inside = np.median(hm.raw[44:84, 92:164])
    outside = np.median(np.concatenate([hm.raw[:, :64].ravel(), hm.raw[:, 192:].ravel()]))
    assert inside / outside == pytest.approx(3.0, rel=0.05)
    assert hm.values[44:84, 92:164].min() > 0.9 and hm.values[:, :64].mean() < 0.1
    # homogeneous of degree 1 in the image
    np.testing.assert_allclose(median_residual_map(3 * img, block=16).raw, 3 * hm.raw, rtol=1e-4, atol=1e-3)


def test_median_residual_parameter_errors():
    img = np.zeros((16, 16))
    with pytest.raises(ValueError, match="block"):
        median_residual_map(img, block=0)
    with pytest.raises(TypeError, match="block"):
        median_residual_map(img, block="8")
    with pytest.raises(TypeError):
        median_residual_map(img, step=8)  # removed parameter


# --------------------------------------------------------------------------- #
# ELA
# --------------------------------------------------------------------------- #


def test_ela_not_applicable_on_arrays_and_png(tmp_path, texture_u8):
    png = tmp_path / "a.png"
    Image.fromarray(texture_u8).save(png)
    for src in (texture_u8, str(png), load_image(str(png))):
        hm = ela_map(src)
        assert not hm.applicable
        assert "not applicable" in hm.note
        assert np.all(hm.values == 0) and np.all(hm.raw == 0)
        assert hm.shape == texture_u8.shape[:2]


def test_ela_applicable_on_jpeg_and_matches_reference(tmp_path, texture_u8):
    import cv2

    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg_bytes(texture_u8, 75))
    img = load_image(str(path))
    hm = ela_map(str(path), quality=90, subsampling="4:4:4", window=5)
    assert hm.applicable and hm.note == ""
    assert hm.params["quality"] == 90 and hm.params["subsampling"] == "4:4:4"
    assert "OpenCV" in hm.params["encoder"]
    # reference: the same fixed encoder, then channel mean and box mean written out
    px8 = img.pixels.astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", px8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90,
                                                       cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                                       cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float64)
    ref = ref_box_mean(np.abs(px8 - dec).mean(axis=2), 5)
    np.testing.assert_allclose(hm.raw, ref, rtol=1e-5, atol=1e-4)
    assert hm.raw.mean() > 0.1
    assert hm.values.dtype == np.float32 and 0 <= hm.values.min() and hm.values.max() <= 1


def test_ela_subsampling_is_used(tmp_path, texture_u8):
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg_bytes(texture_u8, 95, subsampling=0))  # 4:4:4 source
    r444 = ela_map(str(path), subsampling="4:4:4").raw.mean()
    r420 = ela_map(str(path), subsampling="4:2:0").raw.mean()
    assert r420 > 1.1 * r444  # chroma subsampling of a colour texture adds error


def test_ela_shows_a_region_that_missed_the_first_compression(tmp_path, texture_u8):
    # background compressed at Q90 once; a pasted block never was; the result saved at Q98
    once = _decode(_jpeg_bytes(texture_u8, 90)).copy()
    once[24:72, 32:96] = texture_u8[24:72, 32:96]
    path = tmp_path / "spliced.jpg"
    path.write_bytes(_jpeg_bytes(once, 98))
    hm = ela_map(str(path), quality=90)
    assert hm.applicable
    inside = hm.raw[32:64, 40:88].mean()
    outside = np.concatenate([hm.raw[:16].ravel(), hm.raw[80:].ravel()]).mean()
    assert inside > 1.3 * outside
    assert hm.values[32:64, 40:88].mean() > hm.values[:16].mean()


def test_ela_force_gray_and_16bit(rng):
    gray = rng.integers(40, 200, (40, 48), dtype=np.uint8)
    hm = ela_map(gray, force=True, window=1)
    assert hm.applicable and hm.params["subsampling"] == "n/a (gray)"
    assert hm.raw.shape == (40, 48) and hm.raw.max() > 0
    # 16-bit: rescaled to 8 bits for the encoder, error reported on the 16-bit scale
    hm16 = ela_map(gray.astype(np.uint16) * 257, force=True, window=1)
    np.testing.assert_allclose(hm16.raw, 257 * hm.raw, rtol=1e-5)


def test_ela_parameter_errors(texture_u8):
    with pytest.raises(ValueError, match="quality"):
        ela_map(texture_u8, quality=0)
    with pytest.raises(ValueError, match="subsampling"):
        ela_map(texture_u8, subsampling="4:1:1")
    with pytest.raises(TypeError, match="force"):
        ela_map(texture_u8, force="yes")
    with pytest.raises(TypeError, match="window"):
        ela_map(texture_u8, window=2.0)


def test_ela_gray_jpeg_matches_reference(tmp_path, texture_u8):
    import cv2

    gray = texture_u8[:, :, 1].copy()
    path = tmp_path / "g.jpg"
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="JPEG", quality=70)
    path.write_bytes(buf.getvalue())
    hm = ela_map(str(path), quality=85, window=3)
    assert hm.applicable and hm.params["subsampling"] == "n/a (gray)"
    px8 = load_image(str(path)).pixels[:, :, 0].astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", px8, [cv2.IMWRITE_JPEG_QUALITY, 85])
    dec = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE).astype(np.float64)
    np.testing.assert_allclose(hm.raw, ref_box_mean(np.abs(px8 - dec), 3), rtol=1e-5, atol=1e-4)
