"""DCT-histogram inconsistency (Ye et al.): naive references, a known double-JPEG splice, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from jpegtools import decode, jpeg_bytes

import noisestat
from noisestat.io import ijg_luma_table
from noisestat.jpeg.dct_hist import (
    TOLERANCE,
    allowed_values,
    block_artifact,
    dct_hist_map,
    estimate_first_table,
    forbidden_bins,
)
from noisestat.metrics import evaluate_map
from noisestat.synth import sample_image


def _photo(name: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = sample_image(name).astype(np.float64)
    return np.clip(np.rint(a + rng.normal(0, 1.0, a.shape)), 0, 255).astype(np.uint8)


def _naive_allowed(q1: int, q2: int, m: int) -> list[float]:
    """q2 k, |k| <= m, within q2 / 2 + TOLERANCE of some q1 j (enumerated)."""
    out = []
    for k in range(-m, m + 1):
        if any(abs(q1 * j - q2 * k) <= q2 / 2 + TOLERANCE for j in range(-m * q2, m * q2 + 1)):
            out.append(float(q2 * k))
    return out


@pytest.mark.parametrize(("q1", "q2"), [(10, 1), (10, 2), (10, 3), (7, 3), (16, 5), (6, 4), (3, 5), (24, 7)])
def test_allowed_values_match_enumeration(q1, q2):
    m = 12
    assert allowed_values(q1, q2, m).tolist() == _naive_allowed(q1, q2, m)
    bad = forbidden_bins(q1, q2, m)
    ks = np.arange(-m, m + 1)
    assert set((q2 * ks[bad]).tolist()) == set((q2 * ks).tolist()) - set(_naive_allowed(q1, q2, m)) - {0}
    if q1 <= q2:
        assert not bad.any()  # a finer first step reaches every bin


def test_block_artifact_matches_naive_sum(rng):
    d = rng.normal(0, 40, (5, 7, 8, 8))
    q1 = np.zeros((8, 8), np.int64)
    q1[0, 0], q1[0, 1], q1[1, 0], q1[2, 1] = 16, 11, 12, 7
    q2 = rng.integers(1, 4, (8, 8))
    got = block_artifact(d, q1, q2)
    ref = np.zeros((5, 7))
    for a in range(5):
        for b in range(7):
            for u in range(8):
                for v in range(8):
                    if q1[u, v] == 0:
                        continue
                    x = d[a, b, u, v]
                    m = int(abs(x) / q2[u, v]) + int(q1[u, v]) + 2
                    lat = _naive_allowed(int(q1[u, v]), int(q2[u, v]), m)
                    ref[a, b] += min(abs(x - t) for t in lat) / q1[u, v]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # with q2 = 1 it is Ye et al.'s |D - Q round(D / Q)| in steps, less the rounding band
    qs = np.where(q1 > 0, q1, 1)
    ye = np.abs(d / qs - np.rint(d / qs))[..., q1 > 0].sum(-1)
    gap = ye - block_artifact(d, q1, np.ones((8, 8)))
    assert gap.min() >= -1e-12 and gap.max() <= np.sum((0.5 + TOLERANCE) / q1[q1 > 0]) + 1e-12


def _double_splice(tmp_path, host: str, donor: str, q1: int, q2: int):
    h = decode(jpeg_bytes(_photo(host), q1)).copy()
    d = _photo(donor, 1)
    hh, ww = min(h.shape[0], d.shape[0]), min(h.shape[1], d.shape[1])
    h = h[:hh, :ww].copy()
    mask = np.zeros((hh, ww), bool)
    mask[hh // 4 : hh // 4 + hh // 3, ww // 3 : ww // 3 + ww // 3] = True
    h[mask] = d[:hh, :ww][mask]  # never-compressed content pasted before the second save
    path = tmp_path / "splice.jpg"
    path.write_bytes(jpeg_bytes(h, q2))
    return path, mask


def test_aligned_double_jpeg_splice_is_found(tmp_path):
    path, mask = _double_splice(tmp_path, "astronaut", "chelsea", 50, 90)
    est = estimate_first_table(path)
    assert est.table_source == "file coefficients"
    np.testing.assert_array_equal(est.q2, ijg_luma_table(90))
    inf = list(est.informative)
    assert len(inf) >= 15
    true = ijg_luma_table(50).ravel()[inf]
    got = est.q1.ravel()[inf]
    assert np.mean(got == true) >= 0.85 and np.all(np.abs(got - true) <= 2), (got, true)
    hm = dct_hist_map(path)
    assert hm.applicable and hm.values.shape == mask.shape and hm.values.dtype == np.float32
    assert 0.0 <= hm.values.min() and hm.values.max() <= 1.0
    m = evaluate_map(hm.values, mask)
    assert m.f1_best >= 0.8 and m.auc > 0.95
    assert hm.values[mask].mean() > 0.6 > 0.2 > hm.values[~mask].mean()
    again = dct_hist_map(path)
    np.testing.assert_array_equal(again.values, hm.values)


@pytest.mark.parametrize("quality", [75, 90])
def test_single_compression_is_not_applicable(tmp_path, quality):
    path = tmp_path / "single.jpg"
    path.write_bytes(jpeg_bytes(_photo("chelsea", 2), quality))
    assert not estimate_first_table(path).informative
    hm = dct_hist_map(path)
    assert not hm.applicable and "no first-compression lattice" in hm.note and not hm.values.any()


def test_not_jpeg_force_gray_and_small(tmp_path):
    rgb = _photo("coffee")[:96, :128]
    hm = dct_hist_map(rgb)
    assert not hm.applicable and "not known to be JPEG" in hm.note
    png16 = tmp_path / "deep.png"
    import imageio.v3 as iio

    iio.imwrite(png16, (rgb[:, :, 0].astype(np.uint16) * 257))
    assert not dct_hist_map(png16).applicable
    assert not dct_hist_map(png16, force=True).applicable  # never compressed: no lattice
    # the decoded pixels of a double JPEG as an array: found with force=True
    b = jpeg_bytes(decode(jpeg_bytes(_photo("camera"), 50)), 90)
    gray = tmp_path / "g.jpg"
    gray.write_bytes(b)
    from_file = dct_hist_map(gray)
    assert from_file.applicable
    arr = noisestat.load_image(decode(b))
    info = arr.info.__class__(**{**arr.info.to_dict(), "jpeg_quality": 90.0})
    forced = dct_hist_map(noisestat.types.LoadedImage(arr.pixels, info), force=True)
    assert forced.applicable and forced.params["table"] == "IJG quality 90"
    tiny = tmp_path / "tiny.jpg"
    tiny.write_bytes(jpeg_bytes(rgb[:20, :20], 80))
    assert not dct_hist_map(tiny).applicable
    with pytest.raises(ValueError, match="smaller"):
        dct_hist_map(rgb[:8, :8])


def test_bad_parameters():
    img = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match="coefficients"):
        dct_hist_map(img, coefficients=0)
    with pytest.raises(ValueError, match="window"):
        dct_hist_map(img, window=0)
    with pytest.raises(TypeError, match="force"):
        dct_hist_map(img, force="yes")
    with pytest.raises(TypeError, match="coefficients"):
        estimate_first_table(img, coefficients=2.5)
