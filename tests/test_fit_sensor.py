"""The sensor models of the synthetic fitting data (benchmarks/fit_fusion.py, used by fit_decisions.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fit_fusion as ff  # noqa: E402


def test_the_tone_curves_are_inverse_and_follow_the_srgb_standard():
    v = np.linspace(0, 255, 1021)
    assert np.allclose(ff._linear_to_srgb(ff._srgb_to_linear(v)), v, atol=1e-9)
    # IEC 61966-2-1 at two points: 50 % sRGB is 21.4 % linear light; the linear toe below 0.04045
    assert ff._srgb_to_linear(np.array([127.5]))[0] / 255 == pytest.approx(0.21404, abs=1e-4)
    assert ff._srgb_to_linear(np.array([5.0]))[0] == pytest.approx(5.0 / 12.92, rel=1e-12)


def test_gaussian_sensor_draws_as_before():
    img = np.full((32, 32), 100.0)
    a = ff.sensor_noise(img, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    b = np.clip(img + rng.normal(0.0, rng.uniform(0.5, 4.0), img.shape), 0, 255)
    assert np.array_equal(a, b)


def test_camera_noise_depends_on_brightness_and_demosaicing_correlates_it():
    lin = np.full((256, 256, 3), 40.0)
    var = np.full(lin.shape, 4.0)
    out = ff._demosaic_noise(lin, var, np.random.default_rng(0)) - lin
    # bilinear interpolation of per-photosite noise: neighbours are correlated, the level is lower
    for c in range(3):
        g = out[..., c]
        corr = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
        assert corr > 0.3 and g.std() < 2.0  # photosite sigma 2, averaged where interpolated
        # the border too: the mosaic's parity survives the reflection
        assert np.abs(g[[0, -1], :]).max() < 12 and np.abs(g[:, [0, -1]]).max() < 12
    # Poisson-Gaussian in linear light through the tone curve: the noise level depends on brightness
    # (here it falls towards the highlights, which the curve compresses); white noise does not
    for sensor, lo, hi in (("camera", 1.15, np.inf), ("gaussian", 0.9, 1.1)):
        dark, bright = (ff.sensor_noise(np.full((64, 64), v), np.random.default_rng(1), sensor).std()
                        for v in (30.0, 220.0))
        assert lo < dark / bright < hi
    with pytest.raises(ValueError, match="sensor"):
        ff.sensor_noise(lin, np.random.default_rng(0), "film")


def test_depth_of_field_defocuses_part_of_the_scene_half_of_the_time():
    rng0 = np.random.default_rng(3)
    img = rng0.normal(100.0, 20.0, (96, 128, 3))
    applied = 0
    for seed in range(20):
        out = ff._depth_of_field(img, np.random.default_rng(seed))
        if out is img:
            continue
        applied += 1
        # a blend of the sharp and the blurred picture: somewhere nearly sharp, somewhere nearly blurred
        ratio = np.abs(out - img).mean(axis=2)
        assert out.shape == img.shape and ratio.min() < 2.0 and ratio.max() > 8.0
    assert 5 <= applied <= 15
