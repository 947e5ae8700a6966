from __future__ import annotations

import io as _io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from noisestat.cli import main
from noisestat.io import (
    jpeg_quality_from_tables,
    load_image,
    load_mask,
    overlay,
    save_gray_png,
    save_mask_png,
    save_rgb_png,
)


def _png_header_only(path, w, h):
    """A PNG whose IHDR claims w x h pixels with a tiny (invalid) IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))


@pytest.fixture
def rgb(rng):
    return rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_array_scales_and_dtypes(rgb):
    a = load_image(rgb)
    assert a.pixels.dtype == np.float32 and a.pixels.shape == (24, 32, 3)
    assert a.info.white_level == 255 and a.info.bit_depth == 8
    assert not a.pixels.flags.writeable
    b = load_image(rgb.astype(np.uint16) * 257)
    assert b.info.white_level == 65535 and b.info.bit_depth == 16
    np.testing.assert_allclose(b.pixels, rgb.astype(np.float32) * 257)
    f = load_image(rgb.astype(np.float64) + 0.5)  # float taken on 0-255, overshoot allowed
    np.testing.assert_allclose(f.pixels, rgb + 0.5)
    over = load_image(np.full((8, 8), 257.0))
    assert over.pixels.max() == pytest.approx(257.0)
    g = load_image(rgb.astype(np.float32) / 255.0, value_range=(0.0, 1.0))
    np.testing.assert_allclose(g.pixels, rgb, atol=1e-3)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    c = load_image(rgba)
    assert c.info.alpha_dropped and c.pixels.shape[2] == 3
    gray = load_image(rgb[:, :, 0])
    assert gray.pixels.shape == (24, 32, 1)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.array([[1.0, np.nan]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), ValueError, "NaN or infinite"),
        (np.zeros((4, 4), bool), TypeError, "dtype"),
        (np.zeros((4, 4, 5)), ValueError, "channels"),
        (np.zeros((2, 2, 2, 2)), ValueError, "not an image"),
        (b"abc", TypeError, "bytes"),
        (3.5, TypeError, "expected"),
    ],
)
def test_bad_arrays(bad, exc, match):
    with pytest.raises(exc, match=match):
        load_image(bad)


def test_files_modes_and_metadata(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    a = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(a.pixels, rgb)
    assert a.info.format == "PNG" and not a.info.is_jpeg and len(a.info.sha256) == 64
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    p = load_image(tmp_path / "p.png")
    assert p.info.converted_from == "P" and p.pixels.shape[2] == 3
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    c = load_image(tmp_path / "c.jpg")
    assert c.info.converted_from == "CMYK" and c.pixels.shape[2] == 3
    Image.fromarray(rgb).convert("LA").save(tmp_path / "la.png")
    la = load_image(tmp_path / "la.png")
    assert la.info.alpha_dropped and la.pixels.shape[2] == 1
    Image.fromarray(rgb).convert("1").save(tmp_path / "bw.png")
    assert set(np.unique(load_image(tmp_path / "bw.png").pixels)) <= {0.0, 255.0}
    g16 = (rgb[:, :, 0].astype(np.uint16) * 257)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    b = load_image(tmp_path / "g16.png")
    assert b.info.bit_depth == 16 and b.info.white_level == 65535
    np.testing.assert_array_equal(b.pixels[:, :, 0], g16)
    c16 = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "c16.png"), c16[:, :, ::-1])
    d = load_image(tmp_path / "c16.png")
    assert d.info.bit_depth == 16
    np.testing.assert_array_equal(d.pixels, c16)


@pytest.mark.parametrize("q", [50, 75, 90, 95])
def test_jpeg_quality_estimated(tmp_path, rgb, q):
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=q)
    info = load_image(tmp_path / "a.jpg").info
    assert info.is_jpeg and info.jpeg_quality == q
    with pytest.raises(ValueError, match="64"):
        jpeg_quality_from_tables([1, 2, 3])


def test_exif_orientation_recorded_not_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "o.jpg", exif=exif.tobytes())
    img = load_image(tmp_path / "o.jpg")
    assert img.info.orientation == 6 and img.shape == rgb.shape[:2]


def test_bad_files(tmp_path, rgb):
    with pytest.raises(ValueError, match="not found"):
        load_image(tmp_path / "none.png")
    (tmp_path / "t.png").write_text("hello")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(tmp_path / "t.png")
    buf = _io.BytesIO()
    Image.fromarray(rgb).resize((256, 256)).save(buf, format="JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_image(tmp_path / "trunc.jpg")
    _png_header_only(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(tmp_path / "huge.png")
    Image.fromarray(rgb).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(tmp_path / "small.png", max_pixels=100)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image(tmp_path / "empty.png")


def test_cli_bad_inputs_exit_2_one_line_each(tmp_path, rgb, capsys):
    buf = _io.BytesIO()
    Image.fromarray(rgb).resize((256, 256)).save(buf, format="JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[:600])
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "one.png")
    _png_header_only(tmp_path / "huge.png", 20000, 20000)
    for name in ("trunc.jpg", "text.png", "one.png", "huge.png"):
        rc = main(["localize", str(tmp_path / name), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2, name
        assert len(err) == 1 and name in err[0] and "Traceback" not in err[0], err


def test_load_mask_conventions(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:7] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png", (10, 12)), m > 0)
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png", (10, 12), convention="inverted"), m == 0)
    soft = m.astype(float) * 0.4 + 10
    np.testing.assert_array_equal(load_mask(soft, convention="threshold", threshold=50), m > 0)
    col = np.zeros((10, 12, 3), np.uint8)
    col[m > 0] = (250, 10, 5)
    col[0, 0] = (0, 255, 0)
    np.testing.assert_array_equal(load_mask(col, convention="color"), m > 0)
    with pytest.raises(ValueError, match="does not match"):
        load_mask(tmp_path / "m.png", (12, 10))
    with pytest.raises(ValueError, match="convention"):
        load_mask(m, convention="weird")


def test_save_helpers_round_trip(tmp_path, rgb):
    v = np.linspace(0, 1, 24 * 32).reshape(24, 32)
    save_gray_png(tmp_path / "h.png", v)
    back = np.asarray(Image.open(tmp_path / "h.png"))
    np.testing.assert_array_equal(back, np.round(v * 255).astype(np.uint8))
    save_mask_png(tmp_path / "m.png", v > 0.5)
    assert set(np.unique(np.asarray(Image.open(tmp_path / "m.png")))) == {0, 255}
    ov = overlay(rgb, v)
    assert ov.shape == (24, 32, 3) and ov.dtype == np.uint8
    # the PNG writers' pixels and modes are those of Pillow's fromarray (file path or file object)
    rng = np.random.default_rng(5)
    for a in (rng.integers(0, 256, (9, 7), dtype=np.uint8), rng.integers(0, 256, (9, 7, 3), dtype=np.uint8),
              rng.integers(0, 256, (9, 7, 4), dtype=np.uint8)):
        save_rgb_png(tmp_path / "a.png", a)
        buf = _io.BytesIO()
        save_rgb_png(buf, a)
        for src in (tmp_path / "a.png", _io.BytesIO(buf.getvalue())):
            with Image.open(src) as im:
                assert im.mode == Image.fromarray(a).mode
                np.testing.assert_array_equal(np.asarray(im), a)
    with pytest.raises(ValueError, match="shape"):
        overlay(rgb, v[:3])
