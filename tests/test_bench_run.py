from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest

from noisestat.bench._task import COLUMNS
from noisestat.bench.manifest import load_manifest
from noisestat.bench.protocols import build_synthetic
from noisestat.bench.rows import read_rows
from noisestat.bench.run import BenchConfig, code_version, module_closure, parse_method_params, run_bench
from noisestat.cli import main

METHOD = "median_residual"
PARAMS = {METHOD: {"block": 16}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    build_synthetic(root, n_hosts=4, shape=(64, 80), region_noise_sigma=8.0, seed=3)
    return root


def _run(dataset, out, **kw):
    kw.setdefault("methods", [METHOD])
    kw.setdefault("params", PARAMS)
    kw.setdefault("progress", False)
    return run_bench(dataset / "manifest.json", root=dataset, out=out, n_boot=200, **kw)


def _metric_view(rows, skip=("seconds", "s_per_mp", "worker", "finished")):
    return sorted(tuple((k, repr(v)) for k, v in sorted(r.items()) if k not in skip) for r in rows)


def test_rows_one_per_item_and_method_with_columns(dataset, tmp_path):
    res = _run(dataset, tmp_path / "run", save_maps=True)
    assert res.n_tasks == 8 and res.n_computed == 8 and res.n_errors == 0 and not res.interrupted
    rows = read_rows(tmp_path / "run" / "rows.csv")
    assert len(rows) == 8
    with open(tmp_path / "run" / "rows.csv", newline="") as fh:
        assert next(csv.reader(fh)) == list(COLUMNS)
    for r in rows:
        assert r["method"] == METHOD and json.loads(r["params"])["block"] == 16
        assert r["code_version"] == code_version(METHOD) and len(r["input_sha256"]) == 64
        assert r["seconds"] > 0 and r["error"] == ""
        assert 0.0 <= r["score"] <= 1.0
        if r["label"] == "spliced":
            assert r["n_positive"] > 0 and math.isfinite(r["as_is_auc"]) and r["best_auc"] >= 0.5
            assert r["best_orientation"] in ("as_is", "inverted")
        else:
            # no spliced pixel: AUC / best-threshold metrics undefined (NaN), FPR defined
            assert r["n_positive"] == 0 and math.isnan(r["as_is_auc"]) and math.isnan(r["as_is_f1_best"])
            assert math.isfinite(r["as_is_fpr"])
    for name in ("summary.csv", "summary.tex", "summary.txt", "run.json", "rows.parquet"):
        assert (tmp_path / "run" / name).is_file()


def test_row_metrics_agree_with_scikit_learn_on_saved_maps(dataset, tmp_path):
    from sklearn.metrics import f1_score, matthews_corrcoef, precision_recall_curve, roc_auc_score

    from noisestat.io import load_mask

    run = tmp_path / "run"
    _run(dataset, run, save_maps=True)
    m = load_manifest(dataset / "manifest.json")
    masks = {it.id: it.mask for it in m.items}
    n = 0
    for r in read_rows(run / "rows.csv"):
        if r["label"] != "spliced":
            continue
        heat = np.load(run / "maps" / r["map_file"]).astype(np.float64)
        truth = load_mask(dataset / masks[r["item"]], heat.shape).ravel()
        s = heat.ravel()
        if r["best_orientation"] == "inverted":
            s_best = 1.0 - s
        else:
            s_best = s
        for o, sc in (("as_is", s), ("best", s_best)):
            assert r[f"{o}_auc"] == pytest.approx(roc_auc_score(truth, sc), abs=1e-9)
            pred = sc >= 0.5
            assert r[f"{o}_f1"] == pytest.approx(f1_score(truth, pred, zero_division=np.nan), abs=1e-9, nan_ok=True)
            if pred.any() and not pred.all():
                assert r[f"{o}_mcc"] == pytest.approx(matthews_corrcoef(truth, pred), abs=1e-9)
            p, rc, _ = precision_recall_curve(truth, sc)
            f1 = np.where(p + rc > 0, 2 * p * rc / np.where(p + rc > 0, p + rc, 1), 0)
            assert r[f"{o}_f1_best"] == pytest.approx(f1.max(), abs=1e-9)
        assert max(r["as_is_auc"], 1 - r["as_is_auc"]) == pytest.approx(r["best_auc"], abs=1e-12)
        # a dense map's own mask is values >= 0.5
        assert r["mask_f1"] == pytest.approx(f1_score(truth, s >= 0.5, zero_division=np.nan), abs=1e-9, nan_ok=True)
        n += 1
    assert n == 4


def test_rerun_does_nothing_and_deleted_rows_are_recomputed(dataset, tmp_path):
    run = tmp_path / "run"
    first = _run(dataset, run)
    before = read_rows(run / "rows.csv")
    again = _run(dataset, run)
    assert again.n_computed == 0 and again.n_reused == 8
    assert _metric_view(read_rows(run / "rows.csv"), skip=()) == _metric_view(before, skip=())
    # drop two rows (as if the run had been killed before writing them) and tear the last line
    lines = (run / "rows.csv").read_text().splitlines(keepends=True)
    dropped = {next(csv.reader([ln]))[0] for ln in lines[2:4]}
    (run / "rows.csv").write_text("".join(lines[:2] + lines[4:]) + lines[2][: len(lines[2]) // 2])
    seen = []
    third = _run(dataset, run, on_rows=lambda rows: seen.extend(r["item"] for r in rows))
    assert third.n_computed == 2 and set(seen) == dropped
    after = read_rows(run / "rows.csv")
    assert _metric_view(after) == _metric_view(before) and len(first.rows) == len(after)


def test_changed_params_or_input_recompute(dataset, tmp_path):
    run = tmp_path / "run"
    _run(dataset, run)
    res = _run(dataset, run, params={METHOD: {"block": 24}})
    assert res.n_computed == 8
    # both configurations are kept, the summary covers the current one
    assert len(read_rows(run / "rows.csv")) == 16
    assert {json.loads(r["params"])["block"] for r in res.rows} == {24}


def test_bad_image_is_an_error_row_and_exit_code(dataset, tmp_path, capsys):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    victim = sorted((ds / "images").iterdir())[1]
    victim.write_bytes(b"not an image")
    res = _run(ds, tmp_path / "run")
    errs = [r for r in res.rows if r["error"]]
    assert res.n_errors == 1 and len(errs) == 1 and errs[0]["name"] == victim.name
    assert "ValueError" in errs[0]["error"] and "\n" not in errs[0]["error"]
    args = ["bench", str(ds / "manifest.json"), "--root", str(ds), "--methods", METHOD,
            "--param", "median_residual.block=16", "--out", str(tmp_path / "run2"), "--no-progress",
            "--bootstrap", "50"]
    assert main(args) == 0
    assert main([*args, "--strict"]) == 1
    out = capsys.readouterr()
    assert "F1-best" in out.out and "error" in out.err
    with open(tmp_path / "run2" / "summary.csv", newline="") as fh:
        summ = {(r["aggregation"], r["metric"]): r for r in csv.DictReader(fh)}
    assert summ[("run", "n_errors")]["value"] == "1"


def test_manifest_hash_mismatch_is_an_error_row(dataset, tmp_path):
    import shutil

    from PIL import Image

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    victim = sorted((ds / "pristine").iterdir())[0]
    Image.open(victim).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(victim)
    res = _run(ds, tmp_path / "run")
    errs = [r for r in res.rows if r["error"]]
    assert len(errs) == 1 and "sha256" in errs[0]["error"]


def test_workers_give_the_same_rows_as_serial(dataset, tmp_path):
    serial = _run(dataset, tmp_path / "serial")
    par = _run(dataset, tmp_path / "par", workers=2)
    assert par.n_computed == 8
    assert _metric_view(read_rows(tmp_path / "par" / "rows.csv")) == _metric_view(
        read_rows(tmp_path / "serial" / "rows.csv"))
    assert len(serial.rows) == 8


def test_summary_values(dataset, tmp_path):
    res = _run(dataset, tmp_path / "run")
    summ = {(s["aggregation"], s["orientation"], s["metric"]): s for s in res.summary}
    sp = [r for r in res.rows if r["label"] == "spliced"]
    f1b = np.array([r["as_is_f1_best"] for r in sp])
    s = summ[("per_image", "as_is", "f1_best")]
    assert s["value"] == pytest.approx(f1b.mean()) and s["median"] == pytest.approx(np.median(f1b))
    assert s["n_defined"] == 4 and s["ci_low"] <= s["value"] <= s["ci_high"]
    tp = sum(r["as_is_tp"] for r in sp)
    fn = sum(r["as_is_fn"] for r in sp)
    assert summ[("pooled_spliced", "as_is", "tpr")]["value"] == pytest.approx(tp / (tp + fn))
    assert 0.0 <= summ[("image_level", "as_is", "auc")]["value"] <= 1.0
    assert summ[("run", "", "n_errors")]["value"] == 0


def test_every_and_limit(dataset, tmp_path):
    res = _run(dataset, tmp_path / "run", every=2, limit=3)
    assert res.n_tasks == 3
    assert sorted(r["name"] for r in res.rows if r["label"] == "spliced") == ["texture000_base.png",
                                                                              "texture002_base.png"]


def test_code_version_follows_imports():
    from noisestat.registry import get_method

    files = module_closure([get_method(METHOD).module])
    assert "noisestat.heatmap" in files and "noisestat._validate" in files
    assert "noisestat.bench.run" not in files
    import re

    from noisestat import __version__

    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{12}", code_version(METHOD))


def test_ctrl_c_keeps_a_consistent_file_and_rerun_completes(dataset, tmp_path):
    run = tmp_path / "run"
    count = {"n": 0}

    def stop_after_three(rows):
        count["n"] += len(rows)
        if count["n"] >= 3:
            raise KeyboardInterrupt

    res = _run(dataset, run, on_rows=stop_after_three)
    assert res.interrupted and res.n_computed == 3
    assert len(read_rows(run / "rows.csv")) == 3
    rc = main(["bench", str(dataset / "manifest.json"), "--root", str(dataset), "--methods", METHOD,
               "--param", "median_residual.block=16", "--out", str(run), "--no-progress", "--bootstrap", "20"])
    assert rc == 0
    rows = read_rows(run / "rows.csv")
    assert len(rows) == 8 and len({r["item"] for r in rows}) == 8
    assert json.loads((run / "run.json").read_text())["current"]["n_reused"] == 3


def test_runs_without_the_bench_extra(dataset, tmp_path, monkeypatch, capsys):
    import sys

    for mod in ("tqdm", "tqdm.auto", "pyarrow", "pyarrow.parquet", "pandas"):
        monkeypatch.setitem(sys.modules, mod, None)
    res = _run(dataset, tmp_path / "run", progress=True)
    assert res.n_computed == 8 and (tmp_path / "run" / "summary.csv").is_file()
    assert not (tmp_path / "run" / "rows.parquet").exists()
    assert "ETA" in capsys.readouterr().err


def test_sigterm_stops_a_parallel_run_cleanly(dataset, tmp_path):
    import os
    import signal

    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGTERM)
    res = _run(dataset, run, workers=2, on_rows=lambda rows: os.kill(os.getpid(), signal.SIGTERM))
    assert res.interrupted and 1 <= res.n_computed < 8
    assert signal.getsignal(signal.SIGTERM) == before
    n_first = len(read_rows(run / "rows.csv"))
    assert n_first == res.n_computed
    rest = _run(dataset, run)
    assert rest.n_computed == 8 - n_first and len(rest.rows) == 8


def test_recompute_reasons_and_code_mismatch_in_worker(dataset, tmp_path, monkeypatch):
    from noisestat.bench import _codever
    from noisestat.bench._task import ItemTask, MethodConfig, run_item

    run = tmp_path / "run"
    real = code_version(METHOD)
    monkeypatch.setitem(_codever._CODE_CACHE, METHOD, "0.0.0+000000000000")
    first = _run(dataset, run)
    assert first.why_computed == {"new": 8}
    assert {r["code_version"] for r in first.rows} == {"0.0.0+000000000000"}
    monkeypatch.setitem(_codever._CODE_CACHE, METHOD, real)
    second = _run(dataset, run)
    assert second.why_computed == {f"{METHOD}: code changed": 8}
    third = _run(dataset, run, thresholds={METHOD: 0.4})
    assert third.why_computed == {f"{METHOD}: threshold changed": 8}
    assert {r["threshold"] for r in third.rows} == {0.4}
    # a process whose code differs from the submitter's refuses to label rows with the wrong version
    it = load_manifest(dataset / "manifest.json").items[0]
    task = ItemTask(item=it.id, name=it.name, label=it.label, image_path=str(dataset / it.image),
                    image_sha256=it.image_sha256, mask_path=str(dataset / it.mask), mask_sha256=it.mask_sha256,
                    mask_convention="nonzero",
                    configs=(MethodConfig(METHOD, {"block": 16}, '{"block": 16}', "0.1.0+ffffffffffff"),))
    (row,) = run_item(task)
    assert "code version" in row["error"] and row["as_is_auc"] is None


def test_a_config_object_gives_the_same_rows_as_keywords(dataset, tmp_path):
    cfg = BenchConfig(methods=[METHOD], params=PARAMS, progress=False, n_boot=200)
    assert cfg.methods == (METHOD,)
    res = run_bench(dataset / "manifest.json", root=dataset, out=tmp_path / "cfg", config=cfg)
    _run(dataset, tmp_path / "kw")
    assert res.n_computed == 8
    assert _metric_view(read_rows(tmp_path / "cfg" / "rows.csv")) == _metric_view(
        read_rows(tmp_path / "kw" / "rows.csv"))
    # keyword options replace the fields of the config
    part = run_bench(dataset / "manifest.json", root=dataset, out=tmp_path / "part", config=cfg, limit=2)
    assert part.n_tasks == 2 and cfg.limit is None


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"every": 0}, ValueError, "BenchConfig(every=0)"),
    ({"every": True}, TypeError, "BenchConfig(every=True)"),
    ({"limit": -1}, ValueError, "BenchConfig(limit=-1)"),
    ({"workers": 0}, ValueError, "BenchConfig(workers=0)"),
    ({"workers": 1.5}, TypeError, "BenchConfig(workers=1.5)"),
    ({"n_boot": -1}, ValueError, "BenchConfig(n_boot=-1)"),
    ({"methods": "ela"}, TypeError, "BenchConfig(methods='ela')"),
    ({"methods": ["ela", "ela"]}, ValueError, "BenchConfig(methods=['ela', 'ela']): a method is listed twice"),
    ({"params": {"ela": 3}}, TypeError, "BenchConfig(params={'ela': 3})"),
    ({"thresholds": 0.5}, TypeError, "BenchConfig(thresholds=0.5)"),
    ({"scheduler": 3}, TypeError, "BenchConfig(scheduler=3)"),
    ({"progress": "no"}, TypeError, "BenchConfig(progress='no')"),
    ({"on_rows": 1}, TypeError, "BenchConfig(on_rows=1)"),
])
def test_config_errors_name_the_parameter_in_python_terms(options, error, words):
    with pytest.raises(error, match=re.escape(words)) as info:
        BenchConfig(**options)
    assert "--" not in str(info.value)


def test_run_errors_name_python_parameters(dataset, tmp_path):
    manifest = dataset / "manifest.json"
    cases = [
        (ValueError, r"root='.*missing': not a directory; pass root=",
         dict(root=tmp_path / "missing")),
        (TypeError, r"unknown option\(s\) \['worker'\]", dict(worker=2)),
        (TypeError, r"config=5: expected a BenchConfig", dict(config=5)),
        (ValueError, r"thresholds= has no threshold for \['median_residual'\]", dict(thresholds={"ela": 0.5})),
        (ValueError, r"thresholds='.*nope.json': cannot read", dict(thresholds=tmp_path / "nope.json")),
        (ValueError, r"params= has entries for \['ela'\].*methods=", dict(params={"ela": {"block": 8}})),
    ]
    for error, pattern, kw in cases:
        kw = {"root": dataset, "methods": [METHOD], "progress": False, **kw}
        with pytest.raises(error, match=pattern) as info:
            run_bench(manifest, out=tmp_path / "r", **kw)
        assert "--" not in str(info.value)
    with pytest.raises(ValueError, match="parse_method_params: 'block16' is not METHOD.NAME=VALUE"):
        parse_method_params(["block16"])


@pytest.mark.parametrize(("extra", "words"), [
    (["--param", "block16"], "--param: parse_method_params: 'block16'"),
    (["--every", "0"], "--every 0: must be >= 1"),
    (["--workers", "0"], "--workers 0: must be >= 1"),
    (["--root", "missing-dir"], "--root 'missing-dir': not a directory; pass --root your copy"),
])
def test_cli_rewords_errors_in_option_terms(dataset, tmp_path, capsys, extra, words):
    rc = main(["bench", str(dataset / "manifest.json"), "--root", str(dataset), "--methods", METHOD,
               "--out", str(tmp_path / "r"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "BenchConfig" not in err


def _compile_in_worker() -> tuple[int, int]:
    """Compile a new kernel inside a worker (as on an empty cache): numba re-reads its environment then."""
    import numba

    @numba.njit(cache=False)
    def plus_one(x):
        return x + 1

    assert plus_one(1) == 2
    return int(numba.get_num_threads()), int(numba.config.NUMBA_NUM_THREADS)


def _init_after_numba(threads: int) -> None:
    """The worker initializer in a process whose main module imported numba (as ``noisestat bench`` does)."""
    import numba

    from noisestat.bench.run import _worker_init

    assert numba.config.NUMBA_NUM_THREADS != threads  # the default, read at import
    _worker_init(threads)


def test_a_worker_can_compile_after_its_threads_start(monkeypatch):
    # the worker's NUMBA_NUM_THREADS differs from what numba read when it was imported (while the
    # initializer was unpickled); compiling then raised "Cannot set NUMBA_NUM_THREADS ..." for every
    # item of a `bench --workers 2` on an empty kernel cache
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import numba

    if numba.config.NUMBA_DEFAULT_NUM_THREADS < 2:
        pytest.skip("one CPU: a worker's default thread count is already 1")
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"), initializer=_init_after_numba,
                             initargs=(1,)) as ex:
        assert ex.submit(_compile_in_worker).result(timeout=120) == (1, 1)
