"""Fused kernels of the dense noise maps against the reference computations they replace.

``median_residual``: :func:`noisestat.maps._median_residual_kernels.channel_mean_residual`
against OpenCV's ``medianBlur`` + ``absdiff`` + ``transform`` and ``box_mean`` against ``blur`` (bit for bit);
``wavelet_mad``: :func:`noisestat.maps._wavelet_mad_kernels.luma_block_sigma`
against ``block_mad_sigma(hh_subband(gray))`` and the pruned median network.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from noisestat.blocks.filters import median_network
from noisestat.blocks.tiling import block_index, block_starts, expand_grid
from noisestat.blocks.wavelets import daubechies_highpass
from noisestat.io import as_image
from noisestat.maps._median_residual_kernels import channel_mean_residual
from noisestat.maps._wavelet_mad_kernels import (
    block_mad_sigma,
    expand_pair,
    hh_subband,
    luma_block_sigma,
)


def _images(rng):
    for shape in [(131, 77, 3), (77, 131, 1), (8, 9, 3), (40, 33, 1), (64, 96, 3)]:
        a = rng.normal(120, 40, shape)
        yield np.ascontiguousarray(a, np.float32)
        b = np.round(a).clip(0, 255)
        b[: shape[0] // 3] = 255.0  # saturated
        b[shape[0] // 3 : shape[0] // 2, : shape[1] // 2] = 17.0  # flat
        yield np.ascontiguousarray(b, np.float32)


def test_channel_mean_residual_is_opencv_bit_for_bit(rng):
    for px in _images(rng):
        src = px[:, :, 0] if px.shape[2] == 1 else px
        exp = cv2.absdiff(src, cv2.medianBlur(src, 3))
        if px.shape[2] == 3:
            exp = cv2.transform(exp, np.full((1, 3), 1.0 / 3.0))
        ro = px.copy()
        ro.setflags(write=False)
        got = np.empty(px.shape[:2], np.float32)
        channel_mean_residual(ro, got)
        np.testing.assert_array_equal(got, exp.reshape(got.shape))


@pytest.mark.parametrize("n_moments,block", [(8, 8), (1, 5), (8, 3)])
def test_luma_block_sigma_matches_the_two_step_computation(rng, n_moments, block):
    g = daubechies_highpass(n_moments)
    for px in _images(rng):
        if min(px.shape[:2]) < 2 * block:
            continue
        img = as_image(px)
        sub = hh_subband(img.gray(), g)
        hs, ws = sub.shape
        exp = block_mad_sigma(sub, block_starts(hs, block), block_starts(ws, block), min(block, hs), min(block, ws))
        got = luma_block_sigma(img.pixels, g, block)
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 9, 25, 63, 64, 100])
def test_median_network_selects_the_two_middle_values(rng, n):
    lo, hi = median_network(n).T  # the shared network of blocks.filters (wavelet_mad's block medians)
    size = 1 << max(0, (n - 1).bit_length())
    for trial in range(50):
        x = np.full(size, np.inf, np.float32)
        x[:n] = rng.integers(0, 3 if trial % 2 else 1000, n)
        a = x.copy()
        for i, j in zip(lo, hi):
            a[i], a[j] = min(a[i], a[j]), max(a[i], a[j])
        s = np.sort(x[:n])
        assert a[(n - 1) // 2] == s[(n - 1) // 2] and a[n // 2] == s[n // 2]


def test_expand_pair_is_two_expand_grids(rng):
    a = rng.normal(size=(5, 7))
    b = rng.normal(size=(5, 7)).astype(np.float32)
    rows, cols = block_index(37, 4, stride=2), block_index(51, 4, stride=2)
    ga, gb = expand_pair(a, b, rows, cols)
    np.testing.assert_array_equal(ga, expand_grid(a, rows, cols))
    np.testing.assert_array_equal(gb, expand_grid(b, rows, cols))


@pytest.mark.parametrize("k", [1, 2, 7, 32, 40])
def test_box_mean_is_opencv_blur_bit_for_bit(rng, k):
    from noisestat.blocks.tiling import reflect_index
    from noisestat.maps._median_residual_kernels import box_mean

    for x in (np.abs(rng.normal(3, 1, (131, 77))).astype(np.float32),
              np.round(np.abs(rng.normal(3, 5, (150, 20)))).astype(np.float32) / np.float32(3.0),
              np.full((9, 20), 255.0, np.float32)):
        h, w = x.shape
        got = np.empty_like(x)
        box_mean(x, k, reflect_index(np.arange(h + k - 1) - k // 2, h), reflect_index(np.arange(w + k - 1) - k // 2, w),
                 got)
        np.testing.assert_array_equal(got, cv2.blur(x, (k, k), borderType=cv2.BORDER_REFLECT))
