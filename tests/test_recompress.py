"""The block-wise gray JPEG round trip (libjpeg's integer DCT) against OpenCV's encoder and a float DCT."""

import io

import numpy as np
import pytest
from PIL import Image

from noisestat.blocks.recompress import (
    islow_coefficients,
    islow_matches_encoder,
    jpeg_roundtrip,
    roundtrip_block_mse,
)
from noisestat.io import ijg_luma_table
from noisestat.synth import sample_image


def _planes():
    rng = np.random.default_rng(7)
    cam = sample_image("camera")
    coins = sample_image("coins")
    return [
        rng.integers(0, 256, (64, 72), dtype=np.uint8),            # white noise: the largest coefficients
        np.clip(rng.normal(128, 60, (96, 88)), 0, 255).astype(np.uint8),
        np.ascontiguousarray(cam[:203, :301]),                      # partial blocks at both edges
        np.ascontiguousarray(coins[:120, :160]),
        np.full((40, 40), 255, np.uint8),                           # saturated
        np.zeros((16, 24), np.uint8),
    ]


def _block_mse(src, dec):
    hb, wb = src.shape[0] // 8, src.shape[1] // 8
    d = src[: 8 * hb, : 8 * wb].astype(np.int64) - dec[: 8 * hb, : 8 * wb]
    return ((d * d).reshape(hb, 8, wb, 8).sum(axis=(1, 3)) / 64.0).astype(np.float32)


def test_ijg_tables_are_those_of_libjpeg_at_every_quality():
    """Pillow's encoder (libjpeg) writes the table: low qualities use libjpeg's integer 5000 // q."""
    g = np.zeros((8, 8), np.uint8)
    for q in range(1, 101):
        buf = io.BytesIO()
        Image.fromarray(g).save(buf, "JPEG", quality=q)
        table = np.array(Image.open(buf).quantization[0]).reshape(8, 8)
        np.testing.assert_array_equal(ijg_luma_table(q), table, err_msg=f"quality {q}")


def test_roundtrip_equals_opencv_at_every_quality():
    for src in _planes():
        coef = islow_coefficients(src)
        for q in range(1, 101):
            got = roundtrip_block_mse(src, coefficients=coef, table=ijg_luma_table(q))
            ref = _block_mse(src, jpeg_roundtrip(src, quality=q))
            np.testing.assert_array_equal(got, ref, err_msg=f"shape {src.shape}, quality {q}")
    assert islow_matches_encoder()


def test_forward_dct_is_the_scaled_orthonormal_dct():
    """Against a float 8x8 DCT-II from its definition: libjpeg's output is 8x it, within fixed-point error."""
    src = _planes()[1]
    coef = islow_coefficients(src).astype(np.float64) / 8.0
    n = np.arange(8)
    c = np.sqrt(2 / 8) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 16)
    c[0] /= np.sqrt(2)
    hb, wb = src.shape[0] // 8, src.shape[1] // 8
    blocks = src[: 8 * hb, : 8 * wb].astype(np.float64).reshape(hb, 8, wb, 8) - 128.0
    ref = np.einsum("ui,aibj,vj->auvb", c, blocks, c).reshape(hb, 64, wb)
    err = np.abs(coef - ref)
    assert err.max() < 0.2 and err.mean() < 0.05
    # a table of ones: the decoded blocks are the source up to rounding
    mse = roundtrip_block_mse(src, coefficients=islow_coefficients(src), table=np.ones((8, 8), int))
    assert mse.max() <= 1.0


def test_refuses_wrong_inputs():
    g = np.zeros((16, 16), np.uint8)
    with pytest.raises(TypeError, match="src must be a 2-D uint8"):
        islow_coefficients(g.astype(np.float32))
    with pytest.raises(TypeError, match="src must be a 2-D uint8"):
        islow_coefficients(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="no complete 8x8 block"):
        islow_coefficients(np.zeros((7, 16), np.uint8))
    c = islow_coefficients(g)
    with pytest.raises(ValueError, match="table must be"):
        roundtrip_block_mse(g, coefficients=c, table=np.zeros((8, 8), int))
    with pytest.raises(ValueError, match="coefficients must be"):
        roundtrip_block_mse(np.zeros((24, 16), np.uint8), coefficients=c, table=np.ones((8, 8), int))
