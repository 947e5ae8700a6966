from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import noisestat
import noisestat.registry
from noisestat.io import load_image
from noisestat.localizers import fusion
from noisestat.localizers.fusion import feature_names, fusion_localizer, load_model, map_subsets, model_key
from noisestat.metrics import evaluate_map
from noisestat.synth import make_splice, sample_image


def _splice(host: str, donor: str, sigma: float, seed: int, jpeg: int | None = None):
    rng = np.random.default_rng(1000 + seed)
    h = sample_image(host).astype(np.float64)
    h = np.clip(h + rng.normal(0, 1.5, h.shape), 0, 255)  # a host with uniform sensor noise
    return make_splice(h.astype(np.float32), sample_image(donor), region="ellipse", region_fraction=0.15,
                       noise_sigma=sigma, seed=seed, jpeg_quality=jpeg)


@pytest.fixture(scope="module")
def demo():
    sp = _splice("coffee", "astronaut", 6.0, 11)
    return sp, fusion_localizer(sp.image)


def test_model_file_matches_the_features_fusion_computes():
    model = load_model()
    assert model["format"] == fusion.MODEL_FORMAT
    fitted = model["maps"]
    assert set(fusion.DEFAULT_MAPS.split(",")) <= set(fitted)
    assert set(model["models"]) == {model_key(s) for s in map_subsets(fitted)}
    for key, sub in model["models"].items():
        maps = key.split(",") if key else []
        d = len(feature_names(maps))
        assert sub["features"] == list(feature_names(maps))
        for k in ("mean", "scale", "coef"):
            assert len(sub[k]) == d and np.all(np.isfinite(sub[k]))
        assert np.all(np.asarray(sub["scale"]) > 0) and np.isfinite(sub["intercept"])
        assert sub["n_positive"] > 0 and sub["n_objects"] > sub["n_positive"]
    prov = model["provenance"]
    assert prov["script"] == "benchmarks/fit_fusion.py" and "synthetic" in prov["training_data"]
    for k in ("seed", "n_images", "date", "noisestat_version"):
        assert prov[k] not in (None, "")


def test_computed_features_are_the_model_features(demo):
    sp, loc = demo
    img = noisestat.load_image(sp.image)
    f = fusion._object_features(img, maps=("median_residual", "wavelet_mad", "ela", "adq"))
    assert f.maps_used == ("median_residual", "wavelet_mad")  # ELA / ADQ do not apply to a raw array
    assert set(f.not_applicable) == {"ela", "adq"}
    assert list(f.names) == load_model()["models"]["median_residual,wavelet_mad"]["features"]
    assert f.x.shape == (len(loc.objects), len(f.names))
    assert np.all(np.isfinite(f.x[f.valid])) and np.all(np.isnan(f.x[~f.valid]))
    # pooled map statistics against a plain per-object reference
    from noisestat.heatmap import robust_z
    from noisestat.maps.median_residual import median_residual_map

    z = np.clip(robust_z(np.log(np.maximum(median_residual_map(img).raw, 1e-3))), -6, 6)
    zq = np.rint((z + 6) / 0.1)
    ref = {}
    for i in range(f.x.shape[0]):
        sel = f.labels == i + 1
        q = np.sort(zq[sel])
        ref[i] = {"mean": float(z[sel].mean()), "hi": float(np.mean(z[sel] > 2)),
                  "lo": float(np.mean(z[sel] < -2)),
                  **{f"p{p}": q[math.ceil((p / 100.0) * sel.sum()) - 1] * 0.1 - 6 for p in (10, 50, 90)}}
    idx = np.flatnonzero(f.valid)
    area = np.array([np.sum(f.labels == i + 1) for i in idx])
    for stat in ("mean", "hi", "lo", "p10", "p50", "p90"):
        col = f.x[:, f.names.index(f"median_residual_{stat}")]
        vals = np.array([ref[i][stat] for i in idx])
        np.testing.assert_allclose(col[idx], vals, rtol=1e-4, atol=1e-5)
        # relative to the image's objects: minus the area-weighted median
        med = min(v for v in vals if area[vals <= v].sum() >= 0.5 * area.sum())
        rel = f.x[:, f.names.index(f"median_residual_{stat}_rel")]
        np.testing.assert_allclose(rel[idx], vals - med, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(f.x[:, f.names.index(f"median_residual_{stat}_absrel")][idx],
                                      np.abs(rel[idx]))


def _double_jpeg_splice(tmp_path, host: str, donor: str, q1: int, q2: int, seed: int, crop=(0, 0)):
    """Host saved at q1 (Pillow), cropped by ``crop``, donor pasted, saved at q2 as a file."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h = sample_image(host).astype(np.float64)
    h = np.clip(h + rng.normal(0, 1.5, h.shape), 0, 255).astype(np.uint8)
    first = tmp_path / f"first{seed}.jpg"
    Image.fromarray(h).save(first, quality=q1)
    with Image.open(first) as im:
        h1 = np.asarray(im, dtype=np.float32)[crop[0]:, crop[1]:]
    sp = make_splice(h1, sample_image(donor), region="ellipse", region_fraction=0.15, seed=seed)
    path = tmp_path / f"splice{seed}.jpg"
    Image.fromarray(np.asarray(sp.image)).save(path, quality=q2)
    return load_image(path), sp.mask


def test_jpeg_maps_pooled_on_their_own_scale(tmp_path):
    img, _ = _double_jpeg_splice(tmp_path, "chelsea", "rocket", 70, 90, 2)
    f = fusion._object_features(img, maps=("adq", "jpeg_ghost", "dct_hist"))
    assert f.maps_used == ("adq", "dct_hist", "jpeg_ghost")  # an aligned double JPEG: all apply
    assert list(f.names) == load_model()["models"]["adq,dct_hist,jpeg_ghost"]["features"]
    from noisestat.heatmap import robust_z
    from noisestat.registry import get_method

    def ref_z(t):  # the transforms written out: logit (probability), as is (log-ratio), log (steps)
        return np.clip(robust_z(t.astype(np.float32)), -6, 6)

    p = np.clip(get_method("adq").func(img).raw.astype(np.float64), 1e-4, 1 - 1e-4)
    refs = {"adq": ref_z(np.log(p / (1 - p))), "jpeg_ghost": ref_z(get_method("jpeg_ghost").func(img).raw),
            "dct_hist": ref_z(np.log(np.maximum(get_method("dct_hist").func(img).raw, 1e-2)))}
    idx = np.flatnonzero(f.valid)
    for m, z in refs.items():
        means = np.array([z[f.labels == i + 1].mean() for i in idx])
        np.testing.assert_allclose(f.x[idx, f.names.index(f"{m}_mean")], means, rtol=1e-3, atol=1e-4)


def test_uses_the_jpeg_maps_on_double_jpeg_splices(tmp_path):
    f1s, base = [], []
    for seed, (host, donor, crop) in enumerate([("coffee", "astronaut", (0, 0)), ("chelsea", "rocket", (0, 0)),
                                                ("astronaut", "coffee", (3, 5))]):
        img, mask = _double_jpeg_splice(tmp_path, host, donor, 70, 90, seed, crop)
        loc = fusion_localizer(img)
        used = set(loc.extras["maps_used"])
        assert {"ela", "jpeg_ghost"} <= used and loc.extras["model"] == model_key(used)
        if crop == (0, 0):  # aligned: the double-compression maps find the trace
            assert {"adq", "dct_hist"} <= used
        else:  # not aligned: dct_hist left out, the model without it used (adq maps every JPEG file)
            assert "adq" in used and "dct_hist" in loc.extras["maps_not_applicable"]
            assert "dct_hist" not in loc.extras["model"]
        f1s.append(evaluate_map(loc.heatmap.values, mask).f1_best)
        base.append(evaluate_map(np.ones(mask.shape), mask).f1_best)
    assert np.mean(f1s[:2]) > 0.7  # aligned double-JPEG splices
    assert np.mean(f1s) > np.mean(base) + 0.2


def test_probability_mask_score_and_contributions(demo):
    sp, loc = demo
    assert loc.method == "fusion" and loc.applicable
    v, raw = loc.heatmap.values, loc.heatmap.raw
    labels = loc.extras["labels"]
    sub = load_model()["models"][loc.extras["model"]]
    x = loc.extras["features"]
    for o in loc.objects:
        sel = labels == o.label
        assert np.all(v[sel] == v[sel][0])  # one value per object
        if not o.valid:
            assert o.score == 0.0 and not o.selected and np.all(v[sel] == 0)
            continue
        # the packaged logistic model, computed independently from the JSON
        i = o.label - 1
        t = sub["intercept"] + sum(c * (x[i, k] - m) / s for k, (c, m, s) in
                                   enumerate(zip(sub["coef"], sub["mean"], sub["scale"])))
        assert raw[sel][0] == pytest.approx(t, rel=1e-5, abs=1e-5)
        assert o.score == pytest.approx(1 / (1 + np.exp(-t)), rel=1e-6)
        assert v[sel][0] == pytest.approx(o.score, rel=1e-6)
        total = loc.extras["intercept"] + sum(c[i] for c in loc.extras["contributions"].values())
        assert total == pytest.approx(t, rel=1e-6, abs=1e-6)
        assert o.selected == (o.score >= 0.5)
    np.testing.assert_array_equal(loc.mask, v >= 0.5)
    assert loc.score == pytest.approx(max(o.score for o in loc.objects if o.valid))
    assert set(loc.extras["contributions"]) == {"objects", *loc.extras["maps_used"]}
    assert loc.extras["dissimilarity"].shape == (len(loc.objects),) * 2


def test_better_than_chance_on_synthetic_splices():
    aucs, f1s, base = [], [], []
    for seed, (host, donor) in enumerate([("coffee", "astronaut"), ("astronaut", "chelsea"),
                                          ("chelsea", "rocket"), ("rocket", "coffee")]):
        sp = _splice(host, donor, 8.0, seed)
        loc = fusion_localizer(sp.image)
        m = evaluate_map(loc.heatmap.values, sp.mask)
        aucs.append(m.auc)
        f1s.append(m.f1_best)
        base.append(evaluate_map(np.ones(sp.mask.shape), sp.mask).f1_best)  # all-ones map
    assert np.mean(aucs) > 0.7
    assert np.mean(f1s) > np.mean(base) + 0.1


def test_ela_left_out_when_not_applicable_and_used_on_jpeg(tmp_path):
    sp = _splice("astronaut", "coffee", 5.0, 4)
    arr = fusion_localizer(sp.image)
    assert "ela" not in arr.extras["maps_used"] and "ela" in arr.extras["maps_not_applicable"]
    assert "ela" not in arr.extras["model"] and "ela" in arr.heatmap.note
    assert not any(n.startswith("ela_") for n in arr.extras["feature_names"])
    from PIL import Image

    path = tmp_path / "s.jpg"
    Image.fromarray(np.asarray(sp.image)).save(path, quality=90)
    jp = fusion_localizer(load_image(path))
    assert "ela" in jp.extras["maps_used"] and jp.extras["model"] == model_key(jp.extras["maps_used"])
    assert any(n.startswith("ela_") for n in jp.extras["feature_names"])
    # only the maps asked for are used; an empty subset uses the objects-only model
    only = fusion_localizer(sp.image, maps="ela")
    assert only.extras["maps_used"] == () and only.extras["model"] == ""
    assert list(only.extras["feature_names"]) == list(fusion.OBJECT_FEATURES)


def test_deterministic(demo):
    sp, loc = demo
    again = noisestat.registry.localize(sp.image, method="fusion")  # the method's own result, as the fixture
    np.testing.assert_array_equal(again.heatmap.values, loc.heatmap.values)
    np.testing.assert_array_equal(again.heatmap.raw, loc.heatmap.raw)
    assert again.score == loc.score
    a, b = (noisestat.localize(sp.image, method="fusion") for _ in range(2))  # and its calibrated decisions
    np.testing.assert_array_equal(a.heatmap.values, b.heatmap.values)
    assert a.score == b.score


def test_parameter_errors(demo):
    img = demo[0].image
    with pytest.raises(ValueError, match="not a registered method"):
        fusion_localizer(img, maps="nope")
    with pytest.raises(ValueError, match="not a dense map"):
        fusion_localizer(img, maps="objects")
    for unfitted in ("block_pca", "kurtosis", "blocking_grid"):
        with pytest.raises(ValueError, match="not fitted"):
            fusion_localizer(img, maps=unfitted)
    with pytest.raises(TypeError, match="maps"):
        fusion_localizer(img, maps=3)
    with pytest.raises(ValueError, match="n_objects"):
        fusion_localizer(img, n_objects=1)


def test_not_applicable_on_a_flat_image():
    loc = fusion_localizer(np.full((64, 64), 255.0))
    assert not loc.applicable and np.isnan(loc.score)
    assert not loc.mask.any() and np.all(loc.heatmap.values == 0)


def test_model_loaded_through_package_resources(monkeypatch):
    load_model.cache_clear()
    try:
        model = load_model()
        assert model is load_model()  # cached
    finally:
        load_model.cache_clear()
    monkeypatch.setattr(fusion, "MODEL_FILE", "does_not_exist.json")
    with pytest.raises(RuntimeError, match="fit_fusion"):
        load_model()
    load_model.cache_clear()
    monkeypatch.undo()
    assert dataclasses.is_dataclass(fusion._Features)
