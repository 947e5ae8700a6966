"""The diagonal-coefficient kernel of noisestat.blocks.wavelets against a plain-numpy reference."""

import numpy as np
import pytest

from noisestat.blocks import wavelets


def _reference(x: np.ndarray, wavelet: str) -> np.ndarray:
    """diagonal_coefficients from first principles: explicit double sum per coefficient, then placed."""
    _, g = wavelets.daubechies_filters(wavelet)
    x = x[:, :, None] if x.ndim == 2 else x
    n = g.size
    h, w = x.shape[0] // 2, x.shape[1] // 2
    off = (n // 2 - 1) // 2
    out = np.full((h, w, x.shape[2]), np.nan)
    kh, kw = (x.shape[0] - n) // 2 + 1, (x.shape[1] - n) // 2 + 1
    for i in range(min(kh, h - off)):
        for j in range(min(kw, w - off)):
            patch = x[2 * i: 2 * i + n, 2 * j: 2 * j + n].astype(np.float64)
            out[off + i, off + j] = np.einsum("k,l,klc->c", g, g, patch)
    return out


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4"])
@pytest.mark.parametrize("shape", [(17, 22, 3), (16, 9), (12, 30, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_diagonal_coefficients_matches_reference(wavelet, shape, dtype):
    x = np.random.default_rng(3).normal(100.0, 20.0, shape).astype(dtype)
    got = wavelets.diagonal_coefficients(x, wavelet)
    ref = _reference(x, wavelet)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)


def test_diagonal_coefficients_bitwise_equal_to_subband():
    x = np.random.default_rng(4).random((40, 34, 3)).astype(np.float32)
    got = wavelets.diagonal_coefficients(x, "db4")
    for c in range(3):
        hh = wavelets.diagonal_subband(x[:, :, c], "db4")
        np.testing.assert_array_equal(got[1:1 + hh.shape[0], 1:1 + hh.shape[1], c], hh[:19, :16])


def test_diagonal_coefficients_too_small():
    with pytest.raises(ValueError, match="too small"):
        wavelets.diagonal_coefficients(np.zeros((5, 40)), "db4")
