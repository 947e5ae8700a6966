"""Run state: workers die with the parent, error rows follow input changes, partial runs, subsets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from noisestat.bench.protocols import build_synthetic

REPO = Path(__file__).resolve().parents[1]


def _children(pid: int) -> set[int]:
    """All descendants of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    parents[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out.update(kids)
        todo.extend(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    root = tmp_path / "ds"
    build_synthetic(root, n_hosts=12, shape=(256, 320), seed=1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "noisestat", "bench", str(root / "manifest.json"), "--root", str(root),
           "--out", str(tmp_path / "run"), "--methods", "median_residual,wavelet_mad,kurtosis", "--workers", "2",
           "--no-progress", "--bootstrap", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        kids: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            if len(kids) >= 3:  # two workers and the resource tracker
                break
            time.sleep(0.2)
        assert proc.poll() is None and len(kids) >= 3, "the run ended before its workers could be seen"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        assert not [k for k in kids if _alive(k)], "workers outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def _run(root, out, **kw):
    from noisestat.bench.run import run_bench

    kw.setdefault("methods", ["median_residual"])
    return run_bench(root / "manifest.json", root=root, out=out, progress=False, n_boot=0, **kw)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    build_synthetic(root, n_hosts=4, shape=(64, 80), region_noise_sigma=8.0, seed=3)
    return root


def test_error_rows_are_retried_when_the_input_changes(small, tmp_path):
    import shutil

    from noisestat.bench.manifest import load_manifest

    root = tmp_path / "ds"
    shutil.copytree(small, root)
    it = load_manifest(root / "manifest.json").items[0]
    path = root / it.image
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")  # the hash differs from the manifest's
    res = _run(root, tmp_path / "run")
    assert res.n_errors == 1 and "differs from the manifest" in [r for r in res.rows if r["error"]][0]["error"]
    res = _run(root, tmp_path / "run")  # nothing changed: the error row is reused
    assert res.n_computed == 0 and res.n_errors == 1
    path.write_bytes(good)  # restored: retried without --retry-errors
    res = _run(root, tmp_path / "run")
    assert res.n_computed == 1 and res.n_errors == 0
    assert res.why_computed == {"error, input files changed": 1}


def test_report_states_a_partial_run(small, tmp_path, capsys):
    import json

    pytest.importorskip("matplotlib")
    from noisestat.bench.report import run_state
    from noisestat.cli import main

    run = tmp_path / "run"
    count = {"n": 0}

    def stop_after_three(rows):
        count["n"] += len(rows)
        if count["n"] >= 3:
            raise KeyboardInterrupt

    assert _run(small, run, on_rows=stop_after_three).interrupted
    assert main(["report", str(run), "--bootstrap", "0", "--gallery", "0"]) == 0
    cap = capsys.readouterr()
    assert "PARTIAL RUN: interrupted with 3 of 8 rows" in cap.out and "PARTIAL RUN" in cap.err
    assert "PARTIAL RUN" in (run / "report" / "index.html").read_text()
    # a run killed before it could record its end (kill -9): no "finished"
    meta = json.loads((run / "run.json").read_text())["current"]
    meta.pop("finished"), meta.pop("interrupted")
    assert run_state(meta, 3)[0] and "never finished" in run_state(meta, 3)[1]
    _run(small, run)  # finish it
    assert main(["report", str(run), "--bootstrap", "0", "--gallery", "0"]) == 0
    cap = capsys.readouterr()
    assert "complete: 8 of 8 rows" in cap.out and "PARTIAL" not in cap.out + cap.err


def test_synth_from_manifest_records_bad_items_and_goes_on(small, tmp_path, capsys):
    import json
    import shutil

    from noisestat.bench.manifest import load_manifest
    from noisestat.cli import main

    root = tmp_path / "ds"
    shutil.copytree(small, root)
    items = load_manifest(root / "manifest.json").items
    (root / items[0].image).write_bytes(b"broken")
    (root / items[1].image).unlink()
    out = tmp_path / "q70"
    rc = main(["synth", "--from-manifest", str(root / "manifest.json"), "--root", str(root), "--jpeg", "70",
               "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert items[0].image in err and items[1].image in err
    d = json.loads((out / "manifest.json").read_text())
    assert sorted(f["id"] for f in d["failed_items"]) == sorted([items[0].id, items[1].id])
    assert len(d["items"]) == len(items) - 2


def _manifest(n_spliced, n_pristine):
    from noisestat.bench.manifest import Manifest, ManifestItem

    items = [ManifestItem(id=f"images/s{i:03d}", image=f"images/s{i:03d}.png", label="spliced")
             for i in range(n_spliced)]
    items += [ManifestItem(id=f"pristine/p{i:03d}", image=f"pristine/p{i:03d}.png", label="pristine")
              for i in range(n_pristine)]
    return Manifest(dataset="t", items=tuple(items))


def test_every_with_offset_keeps_the_classic_subset_and_partitions():
    m = _manifest(10, 7)
    classic = m.select(every=4)
    assert [it.name for it in classic] == ["s000.png", "s004.png", "s008.png", "p000.png", "p004.png"]
    assert m.select(every=4, offset=0) == classic
    parts = [{it.id for it in m.select(every=4, offset=k)} for k in range(4)]
    assert set().union(*parts) == {it.id for it in m.items} and sum(len(p) for p in parts) == len(m.items)
    with pytest.raises(ValueError, match="offset"):
        m.select(every=4, offset=4)


@pytest.mark.parametrize("n_s,n_p,limit", [(921, 800, 40), (10, 7, 5), (10, 1, 3), (10, 7, 1), (3, 2, 0),
                                           (5, 0, 3), (4, 4, 3), (10, 7, 100)])
def test_limit_is_stratified_by_label(n_s, n_p, limit):
    m = _manifest(n_s, n_p)
    sel = m.select(limit=limit)
    k_s = sum(it.label == "spliced" for it in sel)
    k_p = len(sel) - k_s
    assert len(sel) == min(limit, n_s + n_p) and len({it.id for it in sel}) == len(sel)
    if limit >= 2 and n_s and n_p:
        assert k_s >= 1 and k_p >= 1
    if limit < n_s + n_p:  # in proportion, within one item
        assert abs(k_s - limit * n_s / (n_s + n_p)) <= 1
    if k_s > 1:  # spread over the sorted list, not its head
        names = sorted(it.name for it in sel if it.label == "spliced")
        assert names[-1] >= f"s{(n_s - 1) * (k_s - 1) // k_s:03d}.png"


def test_cli_offset_option(small, tmp_path, capsys):
    import json

    from noisestat.cli import main

    rc = main(["bench", str(small / "manifest.json"), "--root", str(small), "--methods", "median_residual",
               "--out", str(tmp_path / "r"), "--every", "2", "--offset", "1", "--no-progress", "--bootstrap", "0"])
    assert rc == 0
    meta = json.loads((tmp_path / "r" / "run.json").read_text())["current"]
    assert meta["offset"] == 1 and meta["n_items"] == 4
    rc = main(["bench", str(small / "manifest.json"), "--root", str(small), "--out", str(tmp_path / "r2"),
               "--every", "2", "--offset", "2", "--no-progress"])
    assert rc == 2 and "--offset" in capsys.readouterr().err
