"""The JPEG file's coefficients (noisestat.blocks.jpeg) against files the test writes."""

from __future__ import annotations

import dataclasses
import hashlib
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from noisestat.blocks.dct import dct_matrix
from noisestat.blocks.jpeg import (
    JPEGLIB_VERSION,
    coefficient_status,
    pixel_coefficients,
    read_coefficients,
)
from noisestat.io import ijg_luma_table, load_image
from noisestat.synth import sample_image
from noisestat.types import LoadedImage


def _photo(shape=(96, 128)) -> np.ndarray:
    """A sample photo squeezed into 40..215 so that decoding never clips."""
    a = sample_image("astronaut")[: shape[0] * 2 : 2, : shape[1] * 2 : 2].astype(np.float64)
    return np.round(40 + a * (175 / 255)).astype(np.uint8)


def _save(tmp_path, a, name, **kw):
    p = tmp_path / name
    Image.fromarray(a).save(p, format="JPEG", **kw)
    return load_image(p)


def _idct(coef: np.ndarray, table: np.ndarray) -> np.ndarray:
    d = dct_matrix(8)
    blocks = np.einsum("xu,abuv,vy->axby", d.T, coef * table, d)
    hb, _, wb, _ = blocks.shape
    return blocks.reshape(hb * 8, wb * 8) + 128.0


@pytest.mark.parametrize("q", [50, 75, 90])
def test_tables_and_layout(tmp_path, q):
    img = _save(tmp_path, _photo((100, 130)), f"q{q}.jpg", quality=q)
    c = read_coefficients(img)
    assert c is not None and coefficient_status(img) == "ok" and c.source == "file"
    assert np.array_equal(c.luma_table, ijg_luma_table(q).reshape(8, 8))
    assert len(c.components) == 3 and c.sampling == ((2, 2), (1, 1), (1, 1))  # Pillow default 4:2:0
    assert c.luma.shape == (13, 17, 8, 8) and c.components[1].shape == (7, 9, 8, 8)
    assert c.luma.dtype == np.int16 and not c.progressive and not c.arithmetic
    for a in (*c.components, *c.tables):
        assert not a.flags.writeable
    assert read_coefficients(img) is c  # cached


def test_444_reconstructs_the_decoded_luma(tmp_path):
    img = _save(tmp_path, _photo(), "s444.jpg", quality=90, subsampling=0)
    c = read_coefficients(img)
    assert c.sampling == ((1, 1), (1, 1), (1, 1)) and c.components[1].shape == c.luma.shape
    rec = _idct(c.luma.astype(np.float64), c.luma_table)
    assert np.mean(np.abs(rec - img.gray())) < 1.0


def test_grayscale_file_roundtrip(tmp_path):
    img = _save(tmp_path, _photo()[:, :, 0], "gray.jpg", quality=75)
    c = read_coefficients(img)
    assert len(c.components) == 1 and len(c.tables) == 1 and c.sampling == ((1, 1),)
    gray = img.gray()
    assert np.mean(np.abs(_idct(c.luma.astype(np.float64), c.luma_table) - gray)) < 1.0
    again = np.round(pixel_coefficients(gray, table=c.luma_table))
    assert np.mean(again == c.luma) > 0.95
    shifted = pixel_coefficients(gray, shift=(3, 5))
    assert shifted.shape == ((96 - 3) // 8, (128 - 5) // 8, 8, 8)


def test_progressive_and_restart_give_the_same_coefficients(tmp_path):
    a = _photo()
    base = read_coefficients(_save(tmp_path, a, "base.jpg", quality=80))
    prog = read_coefficients(_save(tmp_path, a, "prog.jpg", quality=80, progressive=True))
    assert prog.progressive and not base.progressive
    for x, y in zip(base.components, prog.components):
        assert np.array_equal(x, y)
    bgr = np.ascontiguousarray(a[:, :, ::-1])
    paths = []
    for name, extra in (("cv.jpg", []), ("rst.jpg", [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85, *extra])
        (tmp_path / name).write_bytes(buf.tobytes())
        paths.append(tmp_path / name)
    assert b"\xff\xd0" in paths[1].read_bytes()  # restart markers present
    plain, rst = (read_coefficients(load_image(p)) for p in paths)
    assert np.array_equal(plain.luma, rst.luma) and np.array_equal(plain.luma_table, rst.luma_table)


def test_arithmetic_coded(tmp_path):
    jpeglib = pytest.importorskip("jpeglib")
    a = _photo()
    with jpeglib.version(JPEGLIB_VERSION):
        for name, flags in (("huff.jpg", []), ("arith.jpg", ["+ARITH_CODE"])):
            jpeglib.from_spatial(np.ascontiguousarray(a)).write_spatial(str(tmp_path / name), qt=75, flags=flags)
    assert b"\xff\xc9" in (tmp_path / "arith.jpg").read_bytes()  # SOF9: arithmetic, sequential
    huff, arith = (read_coefficients(load_image(tmp_path / n)) for n in ("huff.jpg", "arith.jpg"))
    assert arith.arithmetic and not huff.arithmetic
    assert np.array_equal(huff.luma, arith.luma) and np.array_equal(huff.luma_table, arith.luma_table)


def test_threads_read_the_same(tmp_path):
    imgs = [_save(tmp_path, _photo(), f"t{i}.jpg", quality=60 + 5 * i) for i in range(6)]
    out: dict[int, np.ndarray] = {}

    def work(i):
        out[i] = read_coefficients(imgs[i]).luma_table

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        assert np.array_equal(out[i], ijg_luma_table(60 + 5 * i).reshape(8, 8))


def test_unreadable_inputs_give_none_with_a_reason(tmp_path):
    a = _photo()
    assert read_coefficients(a) is None and "array" in coefficient_status(a)
    Image.fromarray(a).save(tmp_path / "p.png")
    png = load_image(tmp_path / "p.png")
    assert read_coefficients(png) is None and "not a JPEG" in coefficient_status(png)
    cmyk = Image.fromarray(np.dstack([a, a[:, :, :1]]), "CMYK")
    cmyk.save(tmp_path / "cmyk.jpg", quality=80)
    img = load_image(tmp_path / "cmyk.jpg")
    assert read_coefficients(img) is None and "CMYK" in coefficient_status(img)


def test_changed_and_truncated_files(tmp_path):
    img = _save(tmp_path, _photo(), "x.jpg", quality=80)
    p = tmp_path / "x.jpg"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # file changed since loading
    assert read_coefficients(img) is None and "changed since" in coefficient_status(img)
    # as if the loader had accepted the truncated file (Pillow LOAD_TRUNCATED_IMAGES)
    info = dataclasses.replace(img.info, sha256=hashlib.sha256(p.read_bytes()).hexdigest())
    trunc = LoadedImage(img.pixels, info)
    assert read_coefficients(trunc) is None and "truncated" in coefficient_status(trunc)
    p.unlink()
    assert read_coefficients(img) is None and coefficient_status(img).startswith("cannot re-read")


def test_pixel_coefficients_checks_parameters():
    x = np.zeros((16, 16))
    with pytest.raises(ValueError, match="shift"):
        pixel_coefficients(x, shift=(8, 0))
    with pytest.raises(TypeError, match="shift"):
        pixel_coefficients(x, shift=(1.5, 0))
    with pytest.raises(ValueError, match="table"):
        pixel_coefficients(x, table=np.zeros(64))
    with pytest.raises(ValueError, match="plane"):
        pixel_coefficients(np.zeros((4, 4, 3)))
