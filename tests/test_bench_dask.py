from __future__ import annotations

import pytest

from noisestat.bench.protocols import build_synthetic
from noisestat.bench.rows import read_rows
from noisestat.bench.run import run_bench

distributed = pytest.importorskip("distributed")

METHOD = "median_residual"
SKIP = ("seconds", "s_per_mp", "worker", "finished")


def _view(rows):
    return sorted(tuple((k, repr(v)) for k, v in sorted(r.items()) if k not in SKIP) for r in rows)


def test_local_cluster_gives_identical_rows(tmp_path):
    from dask.distributed import Client, LocalCluster

    root = tmp_path / "ds"
    build_synthetic(root, n_hosts=3, shape=(64, 80), region_noise_sigma=8.0, seed=5)
    kw = dict(root=root, methods=[METHOD], params={METHOD: {"block": 16}}, progress=False, n_boot=100)
    serial = run_bench(root / "manifest.json", out=tmp_path / "serial", **kw)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert client.scheduler_info()["address"].startswith("tcp://127.0.0.1:")
        res = run_bench(root / "manifest.json", out=tmp_path / "dask", scheduler=client, **kw)
        again = run_bench(root / "manifest.json", out=tmp_path / "dask", scheduler=client, **kw)
    assert res.n_computed == serial.n_computed == 6 and again.n_computed == 0
    assert _view(read_rows(tmp_path / "dask" / "rows.csv")) == _view(read_rows(tmp_path / "serial" / "rows.csv"))


def test_cli_scheduler_local_matches_serial(tmp_path):
    from noisestat.cli import main

    root = tmp_path / "ds"
    build_synthetic(root, n_hosts=2, shape=(64, 80), region_noise_sigma=8.0, seed=6)
    base = ["bench", str(root / "manifest.json"), "--root", str(root), "--methods", METHOD, "--no-progress",
            "--bootstrap", "50"]
    assert main([*base, "--out", str(tmp_path / "serial")]) == 0
    assert main([*base, "--out", str(tmp_path / "local"), "--scheduler", "local", "--workers", "1"]) == 0
    rows = read_rows(tmp_path / "local" / "rows.csv")
    assert len(rows) == 4 and len({r["worker"] for r in rows}) == 1
    assert _view(rows) == _view(read_rows(tmp_path / "serial" / "rows.csv"))
