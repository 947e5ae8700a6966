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
