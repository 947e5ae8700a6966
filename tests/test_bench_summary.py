from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from noisestat.bench.calibrate import calibrate, row_metric_curve
from noisestat.bench.protocols import build_synthetic
from noisestat.bench.rows import read_rows
from noisestat.bench.run import run_bench
from noisestat.bench.summary import (
    bootstrap_ci,
    compare_all,
    paired_comparison,
    summarize_rows,
    to_latex,
)
from noisestat.cli import main

METHOD = "median_residual"


def _row(item, method, params, label="spliced", **metrics):
    r = {"item": item, "name": item + ".png", "label": label, "method": method, "params": params, "error": "",
         "n_positive": 10 if label == "spliced" else 0, "n_pixels": 100, "applicable": True, "s_per_mp": 1.0,
         "score": metrics.pop("score", 0.5)}
    for o in ("as_is", "best"):
        for k in ("f1_best", "mcc_best", "iou_best", "auc", "ap", "f1", "mcc", "tpr", "fpr", "precision", "iou"):
            r[f"{o}_{k}"] = metrics.get(k, math.nan)
        for k in ("tp", "fp", "fn", "tn"):
            r[f"{o}_{k}"] = metrics.get(k, 0)
    return r


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    v = np.random.default_rng(1).normal(0.4, 0.1, 50)
    lo, hi = bootstrap_ci(v, n_boot=500)
    assert lo < v.mean() < hi and (lo, hi) == bootstrap_ci(v, n_boot=500)
    # about mean +- 1.96 standard errors
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert all(math.isnan(x) for x in bootstrap_ci(np.array([0.3])))


def test_summary_leaves_undefined_out_and_pools_counts():
    rows = [
        _row("a", "m", "{}", f1_best=0.2, f1=math.nan, tp=5, fn=5, fp=0, tn=90),
        _row("b", "m", "{}", f1_best=0.6, f1=0.5, tp=1, fn=9, fp=10, tn=80),
        _row("c", "m", "{}", label="pristine", fp=3, tn=97, fpr=0.03, score=0.1),
        {**_row("d", "m", "{}"), "error": "ValueError: broken"},
    ]
    s = {(x["aggregation"], x["orientation"], x["metric"]): x for x in summarize_rows(rows, n_boot=100)}
    assert s[("per_image", "as_is", "f1_best")]["value"] == pytest.approx(0.4)
    assert s[("per_image", "as_is", "f1")]["value"] == pytest.approx(0.5)  # NaN left out, not 0
    assert s[("per_image", "as_is", "f1")]["n_defined"] == 1 and s[("per_image", "as_is", "f1")]["n"] == 2
    assert s[("pooled_spliced", "as_is", "tpr")]["value"] == pytest.approx(6 / 20)
    assert s[("pooled_spliced", "as_is", "fpr")]["value"] == pytest.approx(10 / 180)
    assert s[("pooled_pristine", "as_is", "fpr")]["value"] == pytest.approx(0.03)
    assert s[("run", "", "n_errors")]["value"] == 1
    # image level: spliced scores 0.5, pristine 0.1 -> perfect separation
    assert s[("image_level", "as_is", "auc")]["value"] == 1.0
    # at 0.5 the spliced scores (0.5) are flagged, the pristine (0.1) not; the error row is left out
    assert s[("image_level", "as_is", "balanced_accuracy")]["value"] == 1.0
    tex = to_latex(summarize_rows(rows, n_boot=10))
    assert "\\begin{tabular}" in tex and "\\toprule" in tex


def test_paired_comparison_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(3)
    a = rng.uniform(0.2, 0.8, 30)
    b = a - rng.normal(0.05, 0.05, 30)
    rows_a = [_row(f"i{i}", "A", "{}", f1_best=v) for i, v in enumerate(a)]
    rows_b = [_row(f"i{i}", "B", "{}", f1_best=v) for i, v in enumerate(b)]
    rows_b[0]["as_is_f1_best"] = math.nan  # undefined for B on one image: that image is left out
    p = paired_comparison(rows_a, rows_b, metric="f1_best", n_boot=500)
    d = (a - b)[1:]
    assert p["n"] == 29 and p["mean_diff"] == pytest.approx(d.mean())
    ref = stats.wilcoxon(a[1:], b[1:])
    assert p["wilcoxon_p"] == pytest.approx(ref.pvalue) and p["wilcoxon_stat"] == pytest.approx(ref.statistic)
    assert p["ci_low"] < d.mean() < p["ci_high"] and p["wins_a"] == int((d > 0).sum())
    allp = compare_all(rows_a + rows_b, n_boot=50)
    assert {(x["config_a"], x["config_b"]) for x in allp} == {("A", "B")}
    same = paired_comparison(rows_a, rows_a, metric="f1_best", n_boot=10)
    assert same["mean_diff"] == 0 and math.isnan(same["wilcoxon_p"]) and same["ties"] == 30


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    base = tmp_path_factory.mktemp("cal")
    build_synthetic(base / "a", n_hosts=4, shape=(64, 80), region_noise_sigma=8.0, seed=11)
    build_synthetic(base / "b", n_hosts=3, shape=(64, 80), region_noise_sigma=8.0, seed=21)
    return base


def test_calibrate_and_apply_to_other_data(two_datasets, tmp_path):
    a, b = two_datasets / "a", two_datasets / "b"
    kw = dict(methods=[METHOD], params={METHOD: {"block": 16}}, progress=False, n_boot=50)
    res = run_bench(a / "manifest.json", root=a, out=tmp_path / "ra", **kw)
    sp = [r for r in res.rows if r["label"] == "spliced"]
    # the stored curves reproduce the fixed-threshold F1 at t = 0.5 exactly
    for r in sp:
        c = row_metric_curve(r)
        assert c[50] == pytest.approx(r["as_is_f1"], abs=1e-12, nan_ok=True)
        assert np.nanmax(c) <= r["as_is_f1_best"] + 1e-12
    doc = calibrate(tmp_path / "ra", metric="f1")
    t = doc["thresholds"][METHOD]
    assert t["mean_f1"] >= np.nanmean([r["as_is_f1"] for r in sp]) - 1e-12
    assert doc["calibrated_on"]["n_images"] == 8 and (tmp_path / "ra" / "thresholds.json").is_file()
    # never report on the calibration data
    with pytest.raises(ValueError, match="thresholds= were calibrated on 8 of the images.*allow_calibration_overlap=True"):
        run_bench(a / "manifest.json", root=a, out=tmp_path / "ra2", thresholds=tmp_path / "ra" / "thresholds.json",
                  **kw)
    rb = run_bench(b / "manifest.json", root=b, out=tmp_path / "rb", thresholds=tmp_path / "ra" / "thresholds.json",
                   **kw)
    assert {r["threshold"] for r in rb.rows} == {t["threshold"]}
    # recomputing F1 at the calibrated threshold from the curve agrees with the row
    k = round(t["threshold"] * 100)
    for r in rb.rows:
        if r["label"] == "spliced":
            assert row_metric_curve(r)[k] == pytest.approx(r["as_is_f1"], abs=1e-12, nan_ok=True)


def test_cli_calibrate(two_datasets, tmp_path, capsys):
    a = two_datasets / "a"
    assert main(["bench", str(a / "manifest.json"), "--root", str(a), "--methods", METHOD, "--out",
                 str(tmp_path / "r"), "--no-progress", "--bootstrap", "20"]) == 0
    assert main(["calibrate", str(tmp_path / "r"), "--metric", "mcc", "--out", str(tmp_path / "t.json")]) == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["metric"] == "mcc" and 0.0 <= doc["thresholds"][METHOD]["threshold"] <= 1.0
    assert "threshold" in capsys.readouterr().out


def test_two_configurations_give_paired_tables(two_datasets, tmp_path):
    a = two_datasets / "a"
    for block in (16, 32):
        run_bench(a / "manifest.json", root=a, out=tmp_path / "r", methods=[METHOD], params={METHOD: {"block": block}},
                  progress=False, n_boot=20)
    rows = read_rows(tmp_path / "r" / "rows.csv")
    from noisestat.bench.summary import write_summaries

    write_summaries(rows, tmp_path / "r", n_boot=20)
    with open(tmp_path / "r" / "paired.csv", newline="") as fh:
        paired = list(csv.DictReader(fh))
    assert paired and all(p["config_a"].startswith(METHOD + "[") for p in paired)
    assert "Wilcoxon" in (tmp_path / "r" / "paired.tex").read_text()
