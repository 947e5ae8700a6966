from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from noisestat.metrics import (
    Confusion,
    average_precision,
    best_threshold,
    confusion,
    detection_metrics,
    dont_care_band,
    evaluate_map,
    roc_auc,
    summarize,
    threshold_sweep,
)


def _random_case(rng, n=(17, 23), levels=None):
    truth = rng.random(n) < rng.uniform(0.05, 0.6)
    score = rng.random(n) + 0.4 * truth
    if levels:  # many ties
        score = np.round(score * levels) / levels
    return score, truth


@pytest.mark.parametrize("seed", range(12))
def test_auc_ap_confusion_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    score, truth = _random_case(rng, levels=[None, 5, 20][seed % 3])
    assert roc_auc(score, truth) == pytest.approx(skm.roc_auc_score(truth.ravel(), score.ravel()), abs=1e-9)
    assert average_precision(score, truth) == pytest.approx(
        skm.average_precision_score(truth.ravel(), score.ravel()), abs=1e-9)
    thr = float(np.median(score))
    pred = score >= thr
    c = confusion(pred, truth)
    y, p = truth.ravel(), pred.ravel()
    assert c.tpr == pytest.approx(skm.recall_score(y, p), abs=1e-9)
    assert c.precision == pytest.approx(skm.precision_score(y, p), abs=1e-9)
    assert c.f1 == pytest.approx(skm.f1_score(y, p), abs=1e-9)
    assert c.mcc == pytest.approx(skm.matthews_corrcoef(y, p), abs=1e-9)
    assert c.iou == pytest.approx(skm.jaccard_score(y, p), abs=1e-9)
    tn, fp, fn, tp = skm.confusion_matrix(y, p).ravel()
    assert (c.tp, c.fp, c.fn, c.tn) == (tp, fp, fn, tn)
    assert c.fpr == pytest.approx(fp / (fp + tn), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_best_threshold_is_exhaustive(seed):
    rng = np.random.default_rng(100 + seed)
    score, truth = _random_case(rng, n=(9, 11), levels=[None, 7][seed % 2])
    best = -1.0
    for t in np.unique(score):
        best = max(best, skm.f1_score(truth.ravel(), (score >= t).ravel()))
    thr, val = best_threshold(score, truth, metric="f1")
    assert val == pytest.approx(best, abs=1e-12)
    assert confusion(score >= thr, truth).f1 == pytest.approx(val, abs=1e-12)
    m = evaluate_map(score, truth)
    assert m.f1_best == pytest.approx(best, abs=1e-12)
    best_mcc = max(skm.matthews_corrcoef(truth.ravel(), (score >= t).ravel()) for t in np.unique(score))
    assert m.mcc_best == pytest.approx(best_mcc, abs=1e-12)


def test_threshold_sweep_counts():
    s = np.array([0.1, 0.5, 0.5, 0.9])
    t = np.array([False, True, False, True])
    thr, tp, fp, n_pos, n_neg = threshold_sweep(s, t)
    np.testing.assert_array_equal(thr, [0.9, 0.5, 0.1])
    np.testing.assert_array_equal(tp, [1, 2, 2])
    np.testing.assert_array_equal(fp, [0, 1, 2])
    assert (n_pos, n_neg) == (2, 2)


def test_nan_rules():
    c = Confusion(tp=0, fp=0, fn=0, tn=10)  # no positives, none predicted
    assert math.isnan(c.tpr) and math.isnan(c.precision) and math.isnan(c.f1)
    assert math.isnan(c.mcc) and math.isnan(c.iou) and c.fpr == 0.0
    assert math.isnan(Confusion(3, 0, 0, 0).fpr)
    z = np.zeros((4, 4))
    none = np.zeros((4, 4), bool)
    assert math.isnan(roc_auc(z, none)) and math.isnan(average_precision(z, none))
    m = evaluate_map(z, none)
    assert math.isnan(m.auc) and math.isnan(m.f1) and math.isnan(m.f1_best)
    t = np.zeros((4, 4), bool)
    t[0, 0] = True
    ok = evaluate_map(np.where(t, 0.9, 0.1), t)
    s = summarize([m, ok])
    assert s["aggregation"] == "per_image" and s["n_images"] == 2
    assert s["auc"] == 1.0 and s["n_defined"]["auc"] == 1  # NaN left out, not counted as 0
    with pytest.raises(ValueError, match="NaN"):
        evaluate_map(np.full((4, 4), np.nan), t)
    with pytest.raises(ValueError, match="shape"):
        evaluate_map(np.zeros((4, 5)), t)


def test_orientation_best_inverts_and_says_so():
    t = np.zeros((10, 10), bool)
    t[:3] = True
    inv = np.where(t, 0.1, 0.9)
    a = evaluate_map(inv, t)
    b = evaluate_map(inv, t, orientation="best")
    assert a.orientation == "as_is" and a.auc == 0.0 and a.f1 == 0.0
    assert b.orientation == "inverted" and b.auc == 1.0 and b.f1 == 1.0
    assert summarize([b])["orientations"] == {"as_is": 0, "inverted": 1}
    with pytest.raises(ValueError, match="orientation"):
        evaluate_map(inv, t, orientation="both")


def test_pooled_vs_per_image(rng):
    res = []
    pooled_conf = Confusion(0, 0, 0, 0)
    scores, truths = [], []
    for _ in range(4):
        s, t = _random_case(rng)
        s = np.clip(s / 1.4, 0, 1)
        res.append(evaluate_map(s, t))
        pooled_conf = pooled_conf + confusion(s >= 0.5, t)
        scores.append(s.ravel())
        truths.append(t.ravel())
    p = summarize(res, aggregation="pooled")
    assert p["aggregation"] == "pooled"
    assert p["f1"] == pytest.approx(pooled_conf.f1) and p["mcc"] == pytest.approx(pooled_conf.mcc)
    all_s, all_t = np.concatenate(scores), np.concatenate(truths)
    assert p["auc"] == pytest.approx(skm.roc_auc_score(all_t, all_s), abs=2e-3)  # binned to 1/4096
    assert p["ap"] == pytest.approx(skm.average_precision_score(all_t, all_s), abs=5e-3)
    q = summarize(res, aggregation="per_image")
    assert q["f1"] == pytest.approx(np.mean([r.f1 for r in res]))
    with pytest.raises(ValueError, match="aggregation"):
        summarize(res, aggregation="mean")


def test_dont_care_band_excludes_boundary():
    t = np.zeros((20, 20), bool)
    t[5:15, 5:15] = True
    v = dont_care_band(t, 2)
    assert v[10, 10] and v[0, 0]
    assert not v[5, 5] and not v[4, 10] and not v[6, 10] and v[8, 10] and v[2, 10]
    assert dont_care_band(t, 0).all()
    score = np.where(t, 0.9, 0.1)
    score[4, 4:16] = 0.95  # errors inside the band are not counted
    assert evaluate_map(score, t, valid=v).f1 == 1.0
    assert evaluate_map(score, t).f1 < 1.0


def test_detection_metrics(rng):
    y = rng.random(200) < 0.4
    s = rng.random(200) + y * 0.5
    d = detection_metrics(s, y)
    assert d["auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
    assert d["ap"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-9)
    s2 = s.copy()
    s2[:5] = np.nan
    d2 = detection_metrics(s2, y)
    assert d2["n_undefined"] == 5 and d2["n"] == 195


def test_detection_metrics_balanced_accuracy_at_the_threshold(rng):
    y = rng.random(200) < 0.4
    s = rng.random(200) + y * 0.5
    s[:7] = np.nan  # not applicable: never flagged
    d = detection_metrics(s, y, threshold=0.8)
    flagged = np.nan_to_num(s, nan=0.0) >= 0.8
    ref = skm.balanced_accuracy_score(y, flagged)
    assert d["balanced_accuracy"] == pytest.approx(ref, abs=1e-12)
    assert d["tpr"] == pytest.approx(flagged[y].mean()) and d["tnr"] == pytest.approx((~flagged[~y]).mean())
    assert np.isnan(detection_metrics([0.2, 0.7], [True, True])["balanced_accuracy"])  # one class only
