"""Memory bounds of the I/O and the CLI writers, and the pixel limit (none of it depends on the machine's RAM)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

import noisestat.io as nio
from noisestat.cli import main


def _peak(fn, *args):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(0)
    return rng.random((1200, 1500), dtype=np.float32)


def test_writers_peak_is_a_small_multiple_of_the_pixels(big, tmp_path):
    import io

    n = big.size
    block = 32 * nio._CHUNK_PIXELS  # the row-block temporaries, independent of the image size
    # heatmap_to_gray: the float32 copy, one sorted copy, the 1-byte flags and output (float64 was ~32 B/px)
    assert _peak(nio.heatmap_to_gray, big) <= 10 * n + block
    assert _peak(nio.save_gray_png, io.BytesIO(), big) <= 2 * n + block
    img = nio.load_image(np.random.default_rng(1).integers(0, 256, big.shape + (3,), dtype=np.uint8))
    assert _peak(nio.overlay, img, big) <= 3 * n + block  # the uint8 output (3 B/px) and row blocks
    assert _peak(nio.save_rgb_png, io.BytesIO(), img.pixels) <= 6 * n + block


def test_load_image_peak_is_bounded(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (1000, 1200, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    n = a.shape[0] * a.shape[1]
    # float32 RGB (12 B/px) + the decoded uint8 array (3 B/px); no float64 or whole-image boolean temporaries
    assert _peak(nio.load_image, tmp_path / "a.png") <= 17 * n


def test_auto_max_pixels_from_available_memory():
    assert nio.auto_max_pixels(available=8 * 2**30, bytes_per_pixel=200) == 8 * 2**30 // 200
    assert nio.auto_max_pixels(available=10**15) == nio.DEFAULT_MAX_PIXELS  # never above the bomb guard
    assert nio.auto_max_pixels(available=0) == 1


def test_refusal_names_the_limit_and_other_images_continue(tmp_path, noisy_rgb, capsys):
    Image.fromarray(noisy_rgb).save(tmp_path / "small.png")
    big = np.zeros((300, 400, 3), np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    out = tmp_path / "out"
    rc = main(["localize", str(tmp_path / "big.png"), str(tmp_path / "small.png"), "--method", "median_residual",
               "--calibration", "none", "--out", str(out), "--max-pixels", str(noisy_rgb.shape[0] * noisy_rgb.shape[1])])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "400x300 = 120000 pixels" in err[0] and "limit of 20480 pixels" in err[0] and "--max-pixels" in err[0]
    assert (out / "small.json").is_file() and not (out / "big.json").exists()


def test_default_limit_is_derived_from_available_memory(tmp_path, noisy_rgb, capsys, monkeypatch):
    Image.fromarray(noisy_rgb).save(tmp_path / "a.png")
    monkeypatch.setattr(nio, "available_memory", lambda: 1000 * nio.LOCALIZE_BYTES_PER_PIXEL)
    rc = main(["localize", str(tmp_path / "a.png"), "--method", "median_residual", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "limit of 1000 pixels" in err and "derived from" in err and "available memory" in err
    # --max-pixels overrides the derived limit
    rc = main(["localize", str(tmp_path / "a.png"), "--method", "median_residual", "--out", str(tmp_path / "o"),
               "--max-pixels", "100000"])
    assert rc == 0


def test_a_memory_error_on_one_image_does_not_end_the_call(tmp_path, noisy_rgb, capsys, monkeypatch):
    import noisestat.decisions as dec

    Image.fromarray(noisy_rgb).save(tmp_path / "a.png")
    Image.fromarray(noisy_rgb[::-1].copy()).save(tmp_path / "b.png")
    real = dec.localize

    def flaky(img, **kw):
        if img.info.source.endswith("a.png"):
            raise MemoryError("Unable to allocate 21.7 GiB")
        return real(img, **kw)

    monkeypatch.setattr(dec, "localize", flaky)
    rc = main(["localize", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--method", "median_residual",
               "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MemoryError" in err[0]
    assert (tmp_path / "o" / "b.json").is_file() and not (tmp_path / "o" / "a.json").exists()
