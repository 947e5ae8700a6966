from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from noisestat.heatmap import Z_CENTER, robust_logistic, robust_z
from noisestat.types import Heatmap, Localization, NoiseEstimate, Segmentation


def test_robust_logistic_fixed_mapping(rng):
    # the mapping does not depend on the image's range: a shifted and scaled
    # copy of the statistic gives the same heatmap (no min-max, but z-scores)
    raw = rng.normal(10, 2, (40, 50))
    h1 = robust_logistic(raw)
    h2 = robust_logistic(raw * 7 + 100)
    np.testing.assert_allclose(h1, h2, atol=1e-5)
    # a value exactly Z_CENTER robust SDs away maps to 0.5
    med = np.median(raw)
    mad = np.median(np.abs(raw - med)) * 1.4826
    probe = raw.copy()
    probe[0, 0] = med + Z_CENTER * mad
    assert robust_logistic(probe)[0, 0] == pytest.approx(0.5, abs=0.01)
    assert robust_logistic(probe, two_sided=False)[0, 0] == pytest.approx(0.5, abs=0.01)


def test_robust_logistic_two_sided_and_outliers(rng):
    raw = rng.normal(0, 1, (64, 64)).astype(np.float32)
    raw[:8, :8] = 20.0
    raw[-8:, -8:] = -20.0
    two = robust_logistic(raw)
    one = robust_logistic(raw, two_sided=False)
    assert two[:8, :8].min() > 0.99 and two[-8:, -8:].min() > 0.99
    assert one[:8, :8].min() > 0.99 and one[-8:, -8:].max() < 0.01
    assert np.median(two) < 0.1
    assert two.dtype == np.float32 and two.min() >= 0 and two.max() <= 1


def test_robust_z_constant_map_is_finite():
    z = robust_z(np.full((10, 10), 3.0))
    assert np.all(z == 0)
    raw = np.zeros((10, 10))
    raw[0, 0] = 1.0  # MAD is 0: falls back on the mean absolute deviation
    z = robust_z(raw)
    assert np.all(np.isfinite(z)) and z[0, 0] > 10


def test_results_are_frozen_and_readonly():
    hm = Heatmap(np.zeros((4, 5)), np.ones((4, 5)), "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hm.method = "y"  # type: ignore[misc]
    with pytest.raises(ValueError):
        hm.values[0, 0] = 1
    assert hm.values.dtype == np.float32 and hm.shape == (4, 5)
    with pytest.raises(ValueError, match="shape"):
        Heatmap(np.zeros((4, 5)), np.ones((5, 4)), "x")
    with pytest.raises(ValueError, match="mask shape"):
        Localization(hm, np.zeros((5, 4), bool), 0.1, "x")
    est = NoiseEstimate(2.5)
    assert float(est) == 2.5


def test_segmentation_foreground_background():
    labels = np.zeros((6, 8), np.int32)
    labels[1:4, 2:5] = 1
    labels[2, 4] = 2
    seg = Segmentation(labels, [[1, 2, 4, 5], [2, 4, 3, 5]], "manual")
    assert seg.n_objects == 2
    fg, bg = seg.foreground(1), seg.background(1)
    assert fg.sum() == 8 and bg.sum() == 1 and not (fg & bg).any()
    assert bg[2, 4]


def test_min_scale_floor_of_robust_logistic():
    from noisestat.heatmap import LOG_MIN_SCALE, robust_logistic, robust_z

    rng = np.random.default_rng(5)
    x = np.log(4.0) + rng.normal(0, 0.01, (50, 50))  # one noise level, 1 % scatter
    assert (robust_logistic(x) >= 0.5).mean() > 0.005  # without a floor, scatter looks like splicing
    assert (robust_logistic(x, min_scale=LOG_MIN_SCALE) >= 0.5).mean() == 0.0
    z = robust_z(x, min_scale=1.0)
    assert np.abs(z).max() < 0.1


@pytest.mark.parametrize("name", ["block_pca", "kurtosis", "local_pca", "median_residual", "wavelet_mad"])
def test_log_noise_maps_quiet_on_uniform_noise(name):
    import cv2

    import noisestat
    from noisestat.synth import clean_texture

    # a natural-like texture (the kurtosis model needs non-Gaussian signal) under one noise level
    rng = np.random.default_rng(11)
    base = cv2.resize(clean_texture((96, 96, 3), seed=3), (192, 192), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base + rng.normal(0, 4.0, base.shape), 0, 255)
    loc = noisestat.localize(img, method=name)
    # small-sample estimation scatter only: a Gaussian z would flag 1.2 % two-sided
    assert (loc.heatmap.values >= 0.5).mean() < 0.05


def _robust_logistic_reference(raw, two_sided=True, min_scale=0.0, reference=None):
    """The numpy formulas (median, MAD, mean-deviation fallback, float32 logistic) the kernels replace."""
    x = np.asarray(raw, dtype=np.float32)
    ref = x if reference is None else x[reference]
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        z = np.zeros_like(x)
    else:
        med = float(np.median(ref))
        mad = float(np.median(np.abs(ref - med))) * 1.4826
        if not mad > 0:
            mad = float(np.mean(np.abs(ref - med))) * 1.2533
        scale = max(mad, 1e-6 * max(abs(med), 1.0), float(min_scale))
        z = (x - np.float32(med)) / np.float32(scale)
        z = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
    if two_sided:
        z = np.abs(z)
    t = np.clip((z - np.float32(Z_CENTER)) / np.float32(0.5), -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(-t))).astype(np.float32)


@pytest.mark.parametrize("kind", ["normal", "large", "integers", "nonfinite", "mostly_constant", "spread_bits",
                                  "empty_finite", "one"])
def test_robust_logistic_equals_the_numpy_formulas_bit_for_bit(rng, kind):
    n = 50001 if kind != "one" else 1
    x = rng.normal(3.0, 2.0, n).astype(np.float32)
    if kind == "large":
        x = rng.normal(0.0, 1.0, 300000).astype(np.float32)  # the sampled bracket path
    if kind == "integers":
        x = np.round(x)
    if kind == "nonfinite":
        x[rng.random(n) < 0.2] = np.nan
        x[rng.random(n) < 0.05] = -np.inf
    if kind == "mostly_constant":
        x[: n // 2 + 2] = 1.5
    if kind == "spread_bits":  # middle values in different radix bins
        x = (rng.integers(0, 3, n) * 2.0 ** rng.integers(-40, 40, n)).astype(np.float32)
    if kind == "empty_finite":
        x[:] = np.nan
    x = x.reshape(1, -1)
    for two_sided in (True, False):
        for min_scale in (0.0, 0.5):
            np.testing.assert_array_equal(robust_logistic(x, two_sided=two_sided, min_scale=min_scale),
                                          _robust_logistic_reference(x, two_sided, min_scale))
            mask = rng.random(x.shape) < 0.3
            np.testing.assert_array_equal(
                robust_logistic(x, two_sided=two_sided, min_scale=min_scale, reference=mask),
                _robust_logistic_reference(x, two_sided, min_scale, mask))


@pytest.mark.parametrize("kind", ["uniform", "ties", "tiny", "nonfinite", "one"])
def test_map_quantile_equals_numpy_quantile(rng, kind):
    from noisestat.heatmap import map_quantile

    n = 1 if kind == "one" else 4099
    x = rng.random(n).astype(np.float32)
    if kind == "ties":
        x = np.round(x * 7) / 7
    if kind == "tiny":
        x = rng.normal(0, 1e-3, n).astype(np.float32)
    if kind == "nonfinite":
        x[::10] = np.nan
    for q in (0.0, 0.01, 0.5, 0.95, 0.99, 1.0, float(rng.random())):
        assert map_quantile(x, q) == pytest.approx(float(np.quantile(x, q)), abs=0, rel=0, nan_ok=True)


@pytest.mark.parametrize("kind", ["runs", "runs_nonfinite", "runs_ties"])
def test_map_quantile_and_median_of_runs_equal_numpy(rng, kind):
    """Maps made of runs of equal values (block maps at full resolution) take rank_pair's run-length path."""
    from noisestat import _heatmap_kernels as hk
    from noisestat.heatmap import _median, map_quantile

    base = rng.normal(size=600).astype(np.float32)
    if kind == "runs_nonfinite":
        base[::5] = np.nan
        base[1::7] = np.inf
        base[2::11] = -np.inf
        base[3::13] = -0.0
    if kind == "runs_ties":
        base = np.round(base * 2) / 2
    x = np.ascontiguousarray(np.repeat(base, rng.integers(4, 30, base.size)), np.float32)
    assert hk._mostly_runs(x.view(np.uint32))
    fin = x[np.isfinite(x)]
    for q in (0.0, 0.01, 0.5, 0.95, 0.99, 1.0, float(rng.random())):
        if fin.size == x.size:  # (non-finite maps go to np.quantile itself)
            assert map_quantile(x, q) == pytest.approx(float(np.quantile(x, q)), abs=0, rel=0)
    assert _median(x) == pytest.approx(float(np.median(fin)), abs=0, rel=0)
    for q in (-1.0, 0.3, 0.99):  # the value-by-value loop counts the same
        ka = hk.rank_pair(x.view(np.uint32), q)
        z = np.ascontiguousarray(rng.permutation(x))
        assert not hk._mostly_runs(z.view(np.uint32))
        assert hk.rank_pair(z.view(np.uint32), q) == ka


def test_robust_logistic_grid_equals_the_expanded_map(rng):
    from noisestat.blocks.tiling import expand_grid
    from noisestat.heatmap import robust_logistic_grid

    for t in range(30):
        hb, wb, b = int(rng.integers(1, 20)), int(rng.integers(1, 20)), int(rng.integers(1, 9))
        rows = np.minimum(np.arange(int(rng.integers(hb, hb * b + 1))) // b, hb - 1)
        cols = np.minimum(np.arange(int(rng.integers(wb, wb * b + 1))) // b, wb - 1)
        g = rng.normal(0, 1, (hb, wb)).astype(np.float32)
        if t % 3 == 0:
            g = np.round(g)  # ties, and the mean-deviation fallback
        for two_sided in (True, False):
            np.testing.assert_array_equal(
                robust_logistic_grid(g, rows, cols, two_sided=two_sided, min_scale=0.05 * (t % 2)),
                robust_logistic(expand_grid(g, rows, cols), two_sided=two_sided, min_scale=0.05 * (t % 2)))
