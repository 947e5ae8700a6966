"""Multi-scale contrast anomaly map: numpy reference, invariances, known truth."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage as ndi

from noisestat.maps._multiscale_contrast_kernels import STRIP
from noisestat.maps.multiscale_contrast import (
    POOL_SIZES,
    contrast_profile,
    log_contrast_ratios,
    multiscale_contrast_map,
)
from noisestat.metrics import roc_auc


def box_ref(x, size):
    r = size // 2
    return sliding_window_view(np.pad(x, r, mode="symmetric"), (size, size)).mean(axis=(2, 3))


def profile_ref(px, window, eps):
    px = np.asarray(px, np.float64)
    if px.ndim == 2:
        px = px[:, :, None]
    nc = px.shape[2]
    energies = []
    for size in (3, 7, 11, None):
        e = 0.0
        for ch in range(nc):
            p = px[:, :, ch]
            pooled = p.mean() if size is None else box_ref(p, size)
            e = e + (p - pooled) ** 2 / nc
        energies.append(np.sqrt(box_ref(e, window) + eps**2))
    return np.stack(energies)


def raw_ref(px, window, eps):
    c = profile_ref(px, window, eps)
    zs = []
    for j in range(3):
        r = np.log(c[j] / c[j + 1])
        med = np.median(r)
        mad = 1.4826 * np.median(np.abs(r - med))
        zs.append((r - med) / mad)
    return np.sqrt(np.mean(np.square(zs), axis=0))


def _random_image(rng, shape):
    img = rng.normal(120, 30, shape)
    img = ndi.gaussian_filter(img, (1.0, 1.0, 0)[: len(shape)]) + rng.normal(0, 3, shape)
    img[3:12, 4:15] = 50.0  # constant patch
    img = np.clip(img * 1.6 - 60, 0, 255)  # clipped pixels
    return img


@pytest.mark.parametrize("shape,window", [((31, 27, 3), 5), ((40, 23), 15), ((29, 44, 3), 9)])
def test_profile_matches_reference(shape, window):
    rng = np.random.default_rng(sum(shape) + window)
    img = _random_image(rng, shape)
    px = img if img.ndim == 3 else img[:, :, None]
    got = contrast_profile(px.astype(np.float32), window=window, eps=1e-3)
    assert got.shape == (len(POOL_SIZES) + 1,) + shape[:2]
    np.testing.assert_allclose(got, profile_ref(img.astype(np.float32), window, 1e-3), rtol=2e-5, atol=1e-6)


def test_log_ratios_match_reference_across_strips():
    """Several kernel strips (H > STRIP), the strip seams included, against the numpy reference."""
    rng = np.random.default_rng(5)
    img = np.round(_random_image(rng, (2 * STRIP + 37, 41, 3))).astype(np.float32)
    ref = profile_ref(img, 15, 1e-3)
    got = log_contrast_ratios(img, window=15, eps=1e-3)
    assert got.dtype == np.float32 and got.shape == (3,) + img.shape[:2]
    np.testing.assert_allclose(got, np.log(ref[:-1] / ref[1:]), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(contrast_profile(img, window=15, eps=1e-3), ref, rtol=1e-9, atol=1e-9)


def test_same_result_for_any_thread_count():
    import numba

    rng = np.random.default_rng(6)
    img = _random_image(rng, (3 * STRIP + 5, 30, 3)).astype(np.float32)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = log_contrast_ratios(img)
        numba.set_num_threads(old)
        many = log_contrast_ratios(img)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(one, many)


def test_map_raw_matches_reference():
    rng = np.random.default_rng(11)
    img = _random_image(rng, (47, 53, 3)).astype(np.float32)
    hm = multiscale_contrast_map(img, window=7)
    np.testing.assert_allclose(hm.raw, raw_ref(img, 7, 1e-3), rtol=1e-3, atol=1e-3)
    assert hm.values.dtype == np.float32 and 0 <= hm.values.min() and hm.values.max() <= 1
    # fixed one-sided mapping: the most anomalous pixels get the highest values
    assert hm.values.flat[np.argmax(hm.raw)] == hm.values.max()


def test_invariant_to_brightness_and_contrast():
    rng = np.random.default_rng(2)
    img = ndi.gaussian_filter(rng.normal(100, 20, (64, 72)), 1.5) + rng.normal(0, 2, (64, 72))
    a = multiscale_contrast_map(img)
    b = multiscale_contrast_map(1.7 * img + 20.0)
    np.testing.assert_allclose(b.raw, a.raw, atol=1e-3)


def _stationary_scene(rng, shape):
    return 128 + ndi.gaussian_filter(rng.normal(0, 1, shape), 1.5) * 60


def test_flags_region_with_other_noise_level():
    rng = np.random.default_rng(5)
    h, w = 160, 192
    mask = np.zeros((h, w), bool)
    mask[40:100, 60:130] = True
    img = _stationary_scene(rng, (h, w)) + rng.normal(0, 1, (h, w)) * np.where(mask, 8.0, 2.0)
    hm = multiscale_contrast_map(np.clip(np.round(img), 0, 255).astype(np.uint8))
    assert roc_auc(hm.values, mask) > 0.9
    assert np.median(hm.values[mask]) > 0.5 > np.median(hm.values[~mask])


def test_flags_blurred_region():
    rng = np.random.default_rng(6)
    h, w = 160, 192
    mask = np.zeros((h, w), bool)
    mask[30:110, 90:170] = True
    scene = _stationary_scene(rng, (h, w))
    img = np.where(mask, ndi.gaussian_filter(scene, 1.5), scene) + rng.normal(0, 1.0, (h, w))
    hm = multiscale_contrast_map(img)
    assert roc_auc(hm.values, mask) > 0.8  # a blur shifts each ratio by ~2 robust sd here
    assert np.median(hm.raw[mask]) > 1.5 * np.median(hm.raw[~mask])


def test_constant_image_and_bad_inputs():
    import noisestat

    const = multiscale_contrast_map(np.full((32, 32, 3), 90, np.uint8))
    assert not const.applicable and "constant" in const.note and np.all(const.values == 0)
    img = np.random.default_rng(0).normal(128, 5, (40, 40))
    with pytest.raises(ValueError, match="odd"):
        multiscale_contrast_map(img, window=8)
    with pytest.raises(ValueError, match="window"):
        multiscale_contrast_map(img, window=1)
    with pytest.raises(TypeError, match="window"):
        multiscale_contrast_map(img, window="15")
    with pytest.raises(ValueError, match="smaller than the minimum"):
        multiscale_contrast_map(img[:10, :10])
    with pytest.raises(ValueError, match="NaN"):
        multiscale_contrast_map(np.where(img > 140, np.inf, img))
    assert "multiscale_contrast" in noisestat.methods()
