"""Decisions: reliability maps, integrity features, calibration models, their fit and the CLI round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import noisestat
import noisestat.synth
from noisestat.decisions import Calibration, MethodCalibration, decide, default_calibration, load_calibration
from noisestat.decisions import reliability as R
from noisestat.decisions.calibration import image_norm, sigmoid
from noisestat.decisions.fit import FitItem, fit_method
from noisestat.decisions.integrity import TOP_FRACTION, image_features, logit, method_stats, numeric_params
from noisestat.io import as_image
from noisestat.metrics import evaluate_map
from noisestat.registry import localize as run_method


def _local_sd_reference(gray: np.ndarray, window: int) -> np.ndarray:
    """Plain-numpy local standard deviation with reflected borders (cv2's BORDER_REFLECT = numpy 'symmetric')."""
    r = window // 2
    g = np.pad(gray.astype(np.float64), r, mode="symmetric")
    out = np.empty(gray.shape)
    for i in range(gray.shape[0]):
        for j in range(gray.shape[1]):
            out[i, j] = g[i : i + window, j : j + window].std()
    return out


def test_reliability_components_against_a_numpy_reference(rng):
    gray = rng.normal(100, 10, (23, 31)).astype(np.float32)
    gray[:8, :8] = 50.0  # a flat corner
    sd = _local_sd_reference(gray, R.WINDOW)
    np.testing.assert_allclose(R.flatness(gray), sd**2 / (sd**2 + R.FLAT_SIGMA**2), atol=2e-3)
    np.testing.assert_allclose(R.texture(gray), R.TEXTURE_SIGMA**2 / (sd**2 + R.TEXTURE_SIGMA**2), atol=2e-3)
    px = rng.uniform(10, 240, (20, 20, 3))
    px[5, 5, 1] = 255.0
    img = as_image(px)
    hit = np.zeros((20, 20))
    hit[5, 5] = 1
    ref = 1 - np.array([[np.pad(hit, 3, mode="symmetric")[i : i + 7, j : j + 7].mean() for j in range(20)]
                        for i in range(20)])
    np.testing.assert_allclose(R.clipping(img), ref, atol=1e-5)


def test_every_method_has_a_family_and_a_calibration():
    cal = default_calibration()
    for m in noisestat.methods():
        assert m in R.FAMILY, f"{m}: add it to noisestat.decisions.reliability.FAMILY"
        assert cal.get(m) is not None, f"{m}: run benchmarks/fit_decisions.py --methods {m}"
    prov = cal.provenance
    assert "synthetic" in prov["fitted_on"] and "CASIA" not in prov["fitted_on"] and prov["prior"]


@pytest.mark.parametrize("method", sorted(default_calibration().methods))
def test_packaged_mappings_are_strictly_increasing(method):
    mc = default_calibration().get(method)
    u = np.linspace(1e-4, 1 - 1e-4, 2001)
    m, sd = image_norm(u)
    for s in (0.01, 0.5, 0.99):
        for split in (False, True):  # a method without a split uses its one mapping on both
            a, b, c, d = mc.pixel_split if split and mc.pixel_split is not None else (*mc.pixel, mc.pixel_z)
            p = mc.calibrated(u, s, split=split).astype(np.float64)
            z = (mc.x(u) - m) / sd
            t = a * mc.x(u) + d * z + b + c * logit(s)
            assert np.all(np.diff(t) > 0)  # the logit strictly increases; float32 p may saturate, never reverse
            assert np.all(np.diff(p) >= 0)


def test_calibration_keeps_per_image_ranking_and_mask_is_the_half_level():
    sp = noisestat.synth.make_splice(noisestat.synth.sample_image("coffee")[::2, ::2], seed=1, noise_sigma=6.0)
    img = as_image(sp.image)
    raw = run_method(img, method="median_residual")
    loc = decide(img, raw)
    a, b = evaluate_map(raw.heatmap.values, sp.mask), evaluate_map(loc.heatmap.values, sp.mask)
    assert b.f1_best == pytest.approx(a.f1_best, abs=1e-4) and b.auc == pytest.approx(a.auc, abs=1e-4)
    np.testing.assert_array_equal(loc.mask, loc.heatmap.values >= 0.5)
    np.testing.assert_array_equal(loc.extras["uncalibrated"], raw.heatmap.values)
    assert 0.0 <= loc.score <= 1.0 and loc.reliability.shape == img.shape


def test_uncalibrated_on_request_keeps_the_methods_own_result():
    img = as_image(np.random.default_rng(0).normal(128, 5, (48, 48)))
    raw = run_method(img, method="median_residual")
    loc = noisestat.localize(img, method="median_residual", calibration=False)
    np.testing.assert_array_equal(loc.heatmap.values, raw.heatmap.values)
    assert loc.score == raw.score and "uncalibrated" in loc.params["calibration"]
    with pytest.raises(TypeError, match="calibration"):
        noisestat.localize(img, method="median_residual", calibration=3)


def _weighted_quantile_reference(v, w, q):
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return v[order][np.nonzero(cw >= q * cw[-1])[0][0]]


def test_image_features_against_a_reference(rng):
    p = rng.uniform(0, 1, (30, 40))
    r = rng.uniform(0, 1, (30, 40))
    f = image_features(p, r, {"stat_x": 2.0})
    w = r.ravel() + 1e-6
    v = p.ravel()
    mean = np.sum(w * v) / w.sum()
    assert f["mean"] == pytest.approx(float(logit(mean)))
    assert f["area"] == pytest.approx(np.sum(w * (v >= 0.5)) / w.sum())
    assert f["spread"] == pytest.approx(np.sqrt(np.sum(w * (v - mean) ** 2) / w.sum()))
    assert f["q99"] == pytest.approx(float(logit(_weighted_quantile_reference(v, w, 0.99))))
    top = np.argsort(v)[::-1]
    k = np.nonzero(np.cumsum(w[top]) >= TOP_FRACTION * w.sum())[0][0] + 1
    assert f["top"] == pytest.approx(float(logit(np.sum(v[top[:k]] * w[top[:k]]) / w[top[:k]].sum())))
    assert "reliability" not in f and f["stat_x"] == 2.0


def test_numeric_params_and_method_stats():
    assert numeric_params({"a": 1, "b": "x", "c": {"d": 2.5, "e": None}, "f": True, "g": float("nan")}) == \
        {"a": 1.0, "c.d": 2.5, "f": 1.0}
    assert method_stats("no-such-method", {"a": 1}) == {}


def _items(n_img: int, seed: int, slope: float = 2.0, bias: float = -1.0):
    """Images whose pixels are spliced with probability sigmoid(slope * logit(u) + bias)."""
    out = []
    for k in range(n_img):
        rng = np.random.default_rng([seed, k])
        spliced = k % 2 == 0
        x = rng.normal(-1.0 + (1.5 if spliced else 0.0), 1.0, (24, 24))
        u = 1 / (1 + np.exp(-x))
        truth = rng.random((24, 24)) < 1 / (1 + np.exp(-(slope * x + bias))) if spliced else None
        out.append(FitItem(f"i{k}", u.astype(np.float32), np.ones((24, 24), np.float32), truth, spliced))
    return out


def test_fit_recovers_known_logistic_parameters():
    items = _items(200, 3)
    spl = [it for it in items if it.spliced]
    mc = fit_method("m", lambda: spl + [it for it in items if not it.spliced], pixels_per_image=576)
    # pooled over all images the pristine pixels shift the intercept, never the sign of the slope
    assert mc.stage1[0] > 0.5 and mc.pixel[0] > 0 and mc.pixel[2] >= 0
    only = fit_method("m", lambda: spl + [FitItem("neg", np.full((24, 24), 0.01, np.float32),
                                                  np.ones((24, 24), np.float32), None, False)],
                      pixels_per_image=576)
    assert only.stage1[0] == pytest.approx(2.0, rel=0.15)
    assert only.fit["image_auc_out_of_fold"] == only.fit["image_auc_out_of_fold"]  # defined (not NaN)


@pytest.mark.parametrize("fpr", [0.0, 0.05, 0.2, 0.5])
def test_image_offset_is_the_largest_shift_that_keeps_the_false_alarms_at_the_target(rng, fpr):
    from noisestat.decisions.fit import image_offset

    t = rng.normal(0.5, 1.0, 101)
    t[:7] = t[7]  # ties at one value
    o = image_offset(t, fpr=fpr)
    allowed = int(np.floor(fpr * t.size + 1e-9))
    assert o <= 0.0 and np.count_nonzero(t + o >= 0) <= allowed
    # slow reference: scanning shifts towards 0 from o, the first one that flags more images
    # is reached before any value of t crosses 0, i.e. o sits between two values of -t (or at 0)
    if o < 0:
        crossing = np.sort(-t[-t > o])[0] if np.any(-t > o) else 0.0
        assert np.count_nonzero(t + crossing + 1e-12 >= 0) > allowed or crossing >= 0
    assert image_offset(np.full(5, -3.0), fpr=fpr) == 0.0  # already below: no shift up
    assert image_offset([np.nan, np.inf], fpr=fpr) == 0.0
    with pytest.raises(ValueError, match="fpr"):
        image_offset(t, fpr=1.0)


def test_fit_puts_the_score_at_the_fpr_target_and_the_offset_moves_no_pixel():
    items = _items(120, 6)
    mc = fit_method("m", lambda: items, pixels_per_image=256, image_fpr=0.1)
    f = mc.fit
    assert mc.image_offset <= 0 and f["image_offset"] == mc.image_offset
    assert f["image_fpr_out_of_fold"] <= 0.1 <= f["image_fpr_out_of_fold_at_fitting_prior"] + 1e-12 or \
        mc.image_offset == 0
    feats = {"mean": -1.0, "top": 0.5}
    assert logit(mc.score(feats)) == pytest.approx(logit(mc.evidence(feats)) + mc.image_offset, abs=1e-6)
    import dataclasses

    shifted = dataclasses.replace(mc, image_offset=-1.5)
    u = np.asarray(items[0].u)
    e = mc.evidence(feats)
    np.testing.assert_array_equal(shifted.calibrated(u, e), mc.calibrated(u, e))
    assert shifted.score(feats) < mc.score(feats) or mc.score(feats) < 1e-9
    with pytest.raises(ValueError, match="offset"):
        dataclasses.replace(mc, image_offset=0.5)


def _slow_pixel_offset(t, y, g, sp, fpr, offsets):
    """Per-image loops from the definitions: F1 = 2TP / (2TP + FP + FN), pristine share = flagged / n."""
    best = (0.0, -1.0, 0.0)
    for o in sorted(offsets, key=lambda o: (abs(o), o)):  # ties: the smallest shift
        f1s, shares = [], []
        for i in range(sp.size):
            sel = g == i
            if not sel.any():
                continue
            flag = t[sel] + o >= 0
            if sp[i]:
                tp = int(np.sum(flag & y[sel]))
                den = 2 * tp + int(np.sum(flag & ~y[sel])) + int(np.sum(~flag & y[sel]))
                f1s.append(2 * tp / den if den else 0.0)
            else:
                shares.append(float(flag.mean()))
        f1, share = float(np.mean(f1s)), float(np.mean(shares)) if shares else 0.0
        if share <= fpr and f1 > best[1]:
            best = (o, f1, share)
    return best if best[1] >= 0 else (0.0, float("nan"), float("nan"))


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.1])
def test_pixel_offset_against_a_per_image_reference(rng, fpr):
    from noisestat.decisions.fit import PIXEL_OFFSETS, pixel_offset

    m, per = 12, 200
    sp = np.arange(m) % 3 != 0
    g = np.repeat(np.arange(m), per)
    y = sp[g] & (rng.random(g.size) < 0.2)
    t = rng.normal(-3.0, 1.0, g.size) + 2.5 * y  # the spliced pixels sit higher, pristine ones near -3
    got = pixel_offset(t, y, g, sp, fpr=fpr)
    want = _slow_pixel_offset(t, y, g, sp, fpr, PIXEL_OFFSETS)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    if fpr > 0:
        assert got[0] > 0 and got[2] <= fpr  # a looser budget opens the mask (the map is below 0 here)
    # a map that flags too much at 0 is lowered until it fits the budget
    down = pixel_offset(t + 3.0, y, g, sp, fpr=0.01)
    assert down[0] < 0 and down[2] <= 0.01
    np.testing.assert_allclose(down, _slow_pixel_offset(t + 3.0, y, g, sp, 0.01, PIXEL_OFFSETS), atol=1e-12)
    # nothing within the budget: no shift, undefined F1
    o, f1, share = pixel_offset(np.full(4, 10.0), [True, False, False, False], [0, 0, 1, 1], [True, False], fpr=0.0)
    assert o == 0.0 and f1 != f1 and share != share
    with pytest.raises(ValueError, match="fpr"):
        pixel_offset(t, y, g, sp, fpr=1.5)
    with pytest.raises(ValueError, match="offsets"):
        pixel_offset(t, y, g, sp, offsets=(np.nan, 0.0))


def test_the_pixel_offset_raises_every_pixel_and_round_trips(tmp_path):
    import dataclasses

    mc = MethodCalibration("m", (1.0, 0.0), (1.0, -2.0, 0.5), ("mean",), (0.0,), (1.0,), (1.0,), 0.0, {"n": 3})
    up = dataclasses.replace(mc, pixel_offset=1.25)
    u = np.linspace(0.01, 0.99, 50).reshape(5, 10).astype(np.float32)
    np.testing.assert_allclose(logit(up.calibrated(u, 0.3)), logit(mc.calibrated(u, 0.3)) + 1.25, atol=2e-4)
    back = load_calibration(Calibration({"m": up}, {}).save(tmp_path / "p.json")).get("m")
    assert back == up and back.pixel_offset == 1.25
    # a split mapping: each part is shifted by its own offset
    two = dataclasses.replace(up, pixel_split=(1.0, -2.0, 0.5, 0.0), pixel_split_offset=-0.5)
    np.testing.assert_allclose(logit(two.calibrated(u, 0.3, split=True)), logit(mc.calibrated(u, 0.3)) - 0.5,
                               atol=2e-4)
    np.testing.assert_array_equal(two.calibrated(u, 0.3), up.calibrated(u, 0.3))
    assert load_calibration(Calibration({"m": two}, {}).save(tmp_path / "q.json")).get("m") == two
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="pixel offset"):
            dataclasses.replace(mc, pixel_offset=bad)


def test_fit_refuses_a_single_class():
    items = [it for it in _items(10, 4) if not it.spliced]
    with pytest.raises(ValueError, match="spliced"):
        fit_method("m", lambda: items)


def test_calibration_file_round_trip_and_refusals(tmp_path):
    mc = MethodCalibration("m", (1.0, 0.0), (1.0, -2.0, 0.5), ("mean",), (0.0,), (1.0,), (1.0,), 0.0, {"n": 3})
    p = Calibration({"m": mc}, {"fitted_on": "test"}).save(tmp_path / "c.json")
    back = load_calibration(p)
    assert back.get("m") == mc and back.provenance["fitted_on"] == "test"
    d = json.loads(p.read_text())
    d["methods"]["m"]["image"]["offset"] = -0.75
    (tmp_path / "o.json").write_text(json.dumps(d))
    assert load_calibration(tmp_path / "o.json").get("m").image_offset == -0.75
    del d["methods"]["m"]["image"]["offset"]  # a file written before offsets existed: no shift
    (tmp_path / "o.json").write_text(json.dumps(d))
    assert load_calibration(tmp_path / "o.json").get("m").image_offset == 0.0
    with pytest.raises(ValueError, match="strictly increasing"):
        MethodCalibration("m", (-1.0, 0.0), (1.0, 0.0, 0.0), (), (), (), (), 0.0)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a calibration"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read"):
        load_calibration(tmp_path / "missing.json")


def _flat_saturated_pristine() -> np.ndarray:
    rng = np.random.default_rng(5)
    img = noisestat.synth.clean_texture((160, 192, 3), seed=3) + rng.normal(0, 2.0, (160, 192, 3))
    img[:, :90] = 255.0  # blown highlights over almost half the image
    img[100:, 120:] = 40.0  # a flat area
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_reliability_is_low_on_saturated_and_flat_areas_and_the_image_is_not_flagged():
    img = as_image(_flat_saturated_pristine())
    loc = noisestat.localize(img)
    rel = loc.reliability
    assert rel[:, :80].max() < 0.05 and rel[105:, 125:].max() < 0.2
    assert rel[:90, 100:115].mean() > 3 * rel[:, :80].mean() + 0.1
    assert loc.score < 0.5


@pytest.mark.xfail(strict=True, reason=(
    "known limitation: with the integrity score at its 5 % false-alarm operating point (image offset), "
    "objects' score on never-compressed noise splices stays below 0.5: its image model, fitted on a set "
    "where clearly visible noise splices are a minority, leans on the adq trace (sub_adq), missing on a PNG"))
def test_a_clear_noise_splice_is_flagged():
    sp = noisestat.synth.make_splice(noisestat.synth.sample_image("coffee")[::2, ::2], seed=2, noise_sigma=8.0,
                                     region_fraction=0.2)
    loc = noisestat.localize(sp.image)
    assert loc.score > 0.5


def test_calibrate_maps_cli_round_trip(tmp_path, capsys):
    from noisestat.cli import main

    root = tmp_path / "data"
    for sub in ("images", "masks", "pristine"):
        (root / sub).mkdir(parents=True)
    host = noisestat.synth.sample_image("coffee")[::3, ::3]
    for k in range(6):
        sp = noisestat.synth.make_splice(host, seed=k, noise_sigma=6.0)
        Image.fromarray(sp.image).save(root / "images" / f"s{k}.png")
        Image.fromarray(sp.mask.astype(np.uint8) * 255).save(root / "masks" / f"s{k}.png")
        noisy = np.clip(host + np.random.default_rng(k).normal(0, 2, host.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / "pristine" / f"p{k}.png")
    assert main(["manifest", "build", "--images", str(root / "images"), "--masks", str(root / "masks"),
                 "--pristine", str(root / "pristine"), "--out", str(root / "m.json")]) == 0
    run = tmp_path / "run"
    assert main(["bench", str(root / "m.json"), "--root", str(root), "--out", str(run), "--methods",
                 "median_residual", "--save-maps", "--no-progress", "--bootstrap", "10"]) == 0
    assert main(["calibrate-maps", str(run)]) == 0
    cal = load_calibration(run / "calibration.json")
    assert set(cal.methods) == {"median_residual"} and cal.get("median_residual").fit["n_images"] == 12
    out = tmp_path / "out"
    assert main(["localize", str(root / "images" / "s0.png"), "--method", "median_residual", "--out", str(out),
                 "--calibration", str(run / "calibration.json")]) == 0
    rep = json.loads((out / "s0.json").read_text())
    assert rep["params"]["calibration"]["file"] == str(run / "calibration.json")
    rel = np.asarray(Image.open(out / "s0.reliability.png"))
    assert rel.dtype == np.uint8 and rel.shape == host.shape[:2]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("family", ["noise", "jpeg", "object"])
def test_fused_reliability_equals_the_product_of_its_components(rng, family):
    px = np.random.default_rng(0).normal(128, 40, (161, 203, 3)).clip(0, 255)
    px[:10, :10] = 255.0  # clipped
    px[20:35, 20:40] = 90.0  # flat
    if family == "object":  # without the large flat patch, so that the objects method applies
        px = np.random.default_rng(0).normal(128, 40, (161, 203, 3)).clip(0, 255)
    img = as_image(px)
    loc = run_method(img, method="objects" if family == "object" else "median_residual")
    assert loc.applicable
    gray = img.gray()
    comps = {"clipping": R.clipping(img), "flatness": R.flatness(gray), "texture": R.texture(gray),
             "objects": R._objects(loc)}
    ref = np.ones(img.shape, np.float32)
    for name in R.FAMILIES[family]:
        if comps[name] is not None:
            ref *= comps[name]
    np.testing.assert_array_equal(R.reliability_map(img, loc, family=family), np.clip(ref, 0, 1))


@pytest.mark.parametrize("kind", ["continuous", "ties", "constant", "unreliable_top", "uniform_weights"])
def test_tail_sorted_features_equal_the_full_sort(rng, kind):
    from noisestat.decisions.integrity import _top_mean, _weighted_quantile

    n = 20000
    v = {"continuous": rng.random(n), "ties": np.round(rng.random(n) * 4) / 4, "constant": np.full(n, 0.3),
         "unreliable_top": rng.random(n), "uniform_weights": rng.random(n)}[kind]
    w = rng.random(n) + 1e-6
    if kind == "unreliable_top":
        w[v > 0.9] = 1e-6
    if kind == "uniform_weights":
        w[:] = 1e-6
    order = np.argsort(v, kind="stable")
    cw = np.cumsum(w[order])
    q99 = v[order][min(int(np.searchsorted(cw, 0.99 * cw[-1])), n - 1)]
    desc = order[::-1]
    cwd = np.cumsum(w[desc])
    sel = desc[: int(np.searchsorted(cwd, TOP_FRACTION * cwd[-1])) + 1]
    assert _weighted_quantile(v, w, 0.99) == q99
    assert _top_mean(v, w, TOP_FRACTION) == np.sum(v[sel] * w[sel]) / np.sum(w[sel])


def test_gated_features_follow_the_methods_evidence_gate():
    from noisestat.decisions.integrity import GENERIC_FEATURES, image_features, method_stats

    p, r = np.full((16, 16), 0.3), np.ones((16, 16))
    on = image_features(p, r, method_stats("adq", {"trace_found": True, "trace": 0.2}))
    off = image_features(p, r, method_stats("adq", {"trace_found": False, "trace": 0.2}))
    assert on["gate"] == 1.0 and off["gate"] == 0.0
    for k in GENERIC_FEATURES:
        assert on[f"{k}_gated"] == on[k] and off[f"{k}_gated"] == 0.0
    assert "gate" not in image_features(p, r, method_stats("ela", {}))  # no gate: no gated features
    assert method_stats("adq", {})["gate"] == 0.0  # absent: closed


def test_per_image_standardised_term_against_the_formula_and_fitted_from_offsets(rng):
    mc = MethodCalibration("m", (1.0, 0.0), (0.5, -1.0, 0.3), (), (), (), (), 0.0, pixel_z=2.0)
    u = rng.uniform(0.01, 0.99, (40, 50)).astype(np.float32)
    x = logit(u, 1e-7)
    m, sd = float(x.mean()), float(x.std())
    ref = sigmoid(0.5 * x + 2.0 * (x - m) / sd - 1.0 + 0.3 * logit(0.7))
    np.testing.assert_allclose(mc.calibrated(u, 0.7), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mc.calibrated(u[:5], 0.7, norm=(m, sd)), ref[:5], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="strictly increasing"):
        MethodCalibration("m", (1.0, 0.0), (0.5, -1.0, 0.3), (), (), (), (), 0.0, pixel_z=-1.0)
    # every image's values carry an arbitrary offset: only the rank within the image tells
    items = []
    for k in range(60):
        t = np.zeros((24, 24), bool)
        t[:8, :8] = k % 2 == 0
        v = rng.normal(0, 1, t.shape) + 2.5 * t + rng.uniform(-4, 4)
        items.append(FitItem(f"i{k}", sigmoid(v).astype(np.float32), np.ones(t.shape, np.float32),
                             t if k % 2 == 0 else None, k % 2 == 0))
    fitted = fit_method("m", lambda: items, pixels_per_image=576)
    assert fitted.pixel_z > 1.0 and fitted.pixel_z > 3 * fitted.pixel[0]


def _stack_items(seed: int, informative: bool):
    """``adq``-like sub-map items whose map tells the label, and ``fusion`` items whose map does not."""
    sub, top = [], []
    for k in range(120):
        rng = np.random.default_rng([seed, k])
        spliced = k % 2 == 0
        t = np.zeros((24, 24), bool)
        t[:8, :8] = spliced
        v = rng.normal(-2, 1, t.shape) + (3.0 * t if informative else 0.0)
        sub.append(FitItem(f"i{k}", sigmoid(v).astype(np.float32), np.ones(t.shape, np.float32),
                           t if spliced else None, spliced))
        w = rng.normal(-2, 1, t.shape) + 0.3 * t
        top.append(FitItem(f"i{k}", sigmoid(w).astype(np.float32), np.ones(t.shape, np.float32),
                           t if spliced else None, spliced))
    return sub, top


def test_a_stacked_method_learns_from_its_maps_out_of_fold_scores():
    from noisestat.decisions.fit import fit_methods
    from noisestat.decisions.integrity import STACKED

    assert "adq" in STACKED["fusion"]
    sub, top = _stack_items(1, informative=True)
    fitted = fit_methods({"adq": lambda: sub, "fusion": lambda: top}, targets=["fusion"], pixels_per_image=576)
    assert set(fitted) == {"fusion"}
    fus = fitted["fusion"]
    coef = dict(zip(fus.features, fus.coef))
    assert coef["sub_adq"] > 0.5  # the map's own score carries the evidence
    alone = fit_method("fusion", lambda: top, pixels_per_image=576)
    assert "sub_adq" not in alone.features
    assert fus.fit["image_auc_out_of_fold"] > alone.fit["image_auc_out_of_fold"] + 0.2
    # an uninformative map adds nothing
    sub0, _ = _stack_items(1, informative=False)
    flat = fit_methods({"adq": lambda: sub0, "fusion": lambda: top}, pixels_per_image=576)["fusion"]
    assert flat.fit["image_auc_out_of_fold"] < alone.fit["image_auc_out_of_fold"] + 0.1
    errors = []
    fit_methods({"adq": lambda: [it for it in sub if it.spliced], "fusion": lambda: top},
                on_error=lambda m, e: errors.append(m))
    assert errors == ["adq"]


def test_the_fusion_score_reads_its_maps_scores_and_the_result_does_not_keep_them():
    from noisestat.decisions.decide import stacked_scores
    from noisestat.registry import localize as own

    img = noisestat.synth.demo_splice().image
    raw = own(img, method="fusion")
    assert set(raw.extras["map_heatmaps"]) == set(raw.extras["maps_used"])
    cal = noisestat.decisions.default_calibration()
    subs = stacked_scores(noisestat.io.as_image(img), raw, cal)
    used = set(raw.extras["maps_used"])
    for m in ("median_residual", "wavelet_mad", "ela", "adq", "jpeg_ghost", "dct_hist"):
        assert np.isfinite(subs[f"sub_{m}"]) == (m in used)
    # the same as the map's own calibrated score when it runs alone
    alone = noisestat.localize(img, method="median_residual")
    assert subs["sub_median_residual"] == pytest.approx(
        float(np.log(alone.score / (1 - alone.score))) - cal.get("median_residual").image_offset, abs=1e-6)
    loc = noisestat.localize(img, method="fusion")
    assert "map_heatmaps" not in loc.extras


def _double_jpeg_files(tmp_path):
    """A host saved at 70 then 90 (pristine, double-compressed all over) and the same with a
    never-compressed region pasted before the second save (spliced): the adq evidence differs."""
    import cv2
    from jpegtools import decode, jpeg_bytes

    host = cv2.resize(noisestat.synth.sample_image("coffee"), (480, 320), interpolation=cv2.INTER_AREA)
    once = decode(jpeg_bytes(host, 70))
    pasted = once.copy()
    pasted[96:224, 160:320] = host[96:224, 160:320]
    out = []
    for name, px in (("pristine", once), ("spliced", pasted)):
        p = tmp_path / f"{name}.jpg"
        p.write_bytes(jpeg_bytes(px, 90))
        out.append(p)
    return out


def test_the_objects_score_reads_the_adq_map_it_computed(tmp_path):
    from noisestat.decisions.decide import stacked_scores

    pristine, spliced = _double_jpeg_files(tmp_path)
    cal = noisestat.decisions.default_calibration()
    assert "sub_adq" in cal.get("objects").features
    scores = {}
    for p in (pristine, spliced):
        img = noisestat.load_image(p)
        raw = run_method(img, method="objects")
        assert set(raw.extras["map_heatmaps"]) == {"adq"}
        assert raw.params["trace_found"] is True and raw.params["features"] == "adq"  # the other path
        sub = stacked_scores(img, raw, cal)["sub_adq"]
        alone = noisestat.localize(img, method="adq").score
        # adq's own score, at the fitting prior (its evidence: the score without the image offset)
        assert sub == pytest.approx(float(np.log(alone / (1 - alone))) - cal.get("adq").image_offset, abs=1e-6)
        loc = noisestat.localize(img, method="objects")
        assert "map_heatmaps" not in loc.extras
        scores[p.stem] = loc.score
    assert scores["spliced"] > scores["pristine"] + 0.2
    # no JPEG: no adq map, the feature is missing (the model uses its fitting mean)
    png = noisestat.synth.demo_splice().image
    raw = run_method(png, method="objects")
    assert "map_heatmaps" not in raw.extras
    assert np.isnan(stacked_scores(as_image(png), raw, cal)["sub_adq"])


def test_a_split_method_gets_a_pixel_mapping_per_value_of_its_split_feature(rng):
    from noisestat.decisions.integrity import PIXEL_SPLITS

    assert method_stats("objects", {"trace_found": True})["path"] == 1.0
    assert method_stats("objects", {})["path"] == 0.0 and "path" not in method_stats("ela", {})
    mc = MethodCalibration("m", (1.0, 0.0), (0.5, -1.0, 0.3), (), (), (), (), 0.0, pixel_z=0.0,
                           pixel_split=(2.0, 0.5, 0.1, 0.0))
    u = rng.uniform(0.01, 0.99, (20, 30)).astype(np.float32)
    x = logit(u, 1e-7)
    np.testing.assert_allclose(mc.calibrated(u, 0.7, split=True), sigmoid(2.0 * x + 0.5 + 0.1 * logit(0.7)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mc.calibrated(u, 0.7), sigmoid(0.5 * x - 1.0 + 0.3 * logit(0.7)), rtol=1e-5, atol=1e-6)
    assert MethodCalibration.from_dict("m", mc.to_dict()) == mc
    with pytest.raises(ValueError, match="strictly increasing"):
        MethodCalibration("m", (1.0, 0.0), (0.5, -1.0, 0.3), (), (), (), (), 0.0, pixel_split=(-1.0, 0.0, 0.0, 0.0))
    # the statistic is strong on one path and weak on the other: each path gets its own slope
    items = []
    for k in range(80):
        t = np.zeros((24, 24), bool)
        t[:8, :8] = k % 2 == 0
        on_path = k % 4 >= 2
        v = rng.normal(0, 1, t.shape) + (4.0 if on_path else 0.5) * t
        items.append(FitItem(f"i{k}", sigmoid(v).astype(np.float32), np.ones(t.shape, np.float32),
                             t if k % 2 == 0 else None, k % 2 == 0, {"path": float(on_path)}))
    assert PIXEL_SPLITS["objects"] == "path" and PIXEL_SPLITS["adq"] == "gate"
    fitted = fit_method("objects", lambda: items, pixels_per_image=576)
    assert fitted.pixel_split is not None and fitted.pixel_split[0] > 2.5 * fitted.pixel[0]
    assert fitted.fit["pixel_auc_split"] > fitted.fit["pixel_auc_rest"] + 0.2
    assert fit_method("m", lambda: items, pixels_per_image=576).pixel_split is None  # one path only
