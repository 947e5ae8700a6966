"""calibrate: uses pristine images, refuses degenerate thresholds, says what it optimised."""

from __future__ import annotations

import json
import shutil

import pytest

from noisestat.bench.calibrate import calibrate
from noisestat.bench.protocols import build_synthetic
from noisestat.bench.rows import RowWriter, read_rows
from noisestat.bench.run import run_bench
from noisestat.cli import main

METHOD = "median_residual"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("calib")
    build_synthetic(base / "ds", n_hosts=4, shape=(64, 80), region_noise_sigma=8.0, seed=11)
    run_bench(base / "ds" / "manifest.json", root=base / "ds", out=base / "run", methods=[METHOD], progress=False,
              n_boot=0)
    return base / "run"


def _rewrite(src, dest, edit):
    dest.mkdir()
    shutil.copy(src / "run.json", dest / "run.json")
    with RowWriter(dest / "rows.csv") as w:
        for r in read_rows(src / "rows.csv"):
            w.write(edit(dict(r)))


def _flag_everything(r):
    """A map that flags every pixel at every threshold below 1."""
    n_pos, n_neg = int(r["n_positive"]), int(r["n_pixels"]) - int(r["n_positive"])
    pos = " ".join(str(n_pos if k < 100 else 0) for k in range(101))
    neg = " ".join(str(n_neg if k < 100 else 0) for k in range(101))
    r["curve_as_is"] = f"{pos};{neg}"
    return r


def test_objective_names_spliced_and_pristine(run):
    doc = calibrate(run)
    assert "4 spliced images" in doc["objective"] and "4 pristine images" in doc["objective"]
    t = doc["thresholds"][METHOD]
    assert t["n_pristine"] == 4 and t["pristine_fpr"] <= 0.05 + 1e-12
    assert 0 < t["pooled_tpr"] and t["pooled_fpr"] < 0.95


def test_a_flag_everything_map_is_refused(run, tmp_path, capsys):
    _rewrite(run, tmp_path / "bad", _flag_everything)
    doc = calibrate(tmp_path / "bad")
    assert METHOD not in doc["thresholds"] and "pristine FPR" in doc["refused"][METHOD]
    # without the pristine budget the pooled-FPR check still refuses it
    doc = calibrate(tmp_path / "bad", max_pristine_fpr=1.0)
    assert METHOD not in doc["thresholds"] and METHOD in doc["refused"]
    assert main(["calibrate", str(tmp_path / "bad")]) == 2
    cap = capsys.readouterr()
    assert "optimised:" in cap.out and "no threshold" in cap.err


def test_without_pristine_rows_it_warns(run, tmp_path, capsys):
    dest = tmp_path / "nopristine"
    dest.mkdir()
    shutil.copy(run / "run.json", dest / "run.json")
    with RowWriter(dest / "rows.csv") as w:
        for r in read_rows(run / "rows.csv"):
            if r["label"] == "spliced":
                w.write(r)
    doc = calibrate(dest)
    assert METHOD in doc["thresholds"] and doc["thresholds"][METHOD]["pristine_fpr"] is None
    assert any("no pristine rows" in w for w in doc["warnings"]) and "constraint not applied" in doc["objective"]
    assert main(["calibrate", str(dest), "--out", str(tmp_path / "t.json")]) == 0
    assert "no pristine rows" in capsys.readouterr().err
    assert json.loads((tmp_path / "t.json").read_text())["objective"] == doc["objective"]
