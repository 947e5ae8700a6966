from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from noisestat.bench.protocols import build_synthetic
from noisestat.bench.run import run_bench
from noisestat.cli import main

pytest.importorskip("matplotlib")

METHOD = "median_residual"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("rep")
    build_synthetic(base / "ds", n_hosts=3, protocol="jpeg_low", shape=(64, 80), region_noise_sigma=8.0, seed=8)
    run_bench(base / "ds" / "manifest.json", root=base / "ds", out=base / "run", methods=[METHOD],
              params={METHOD: {"block": 16}}, save_maps=True, progress=False, n_boot=50)
    return base / "run"


def test_report_is_self_contained(run_dir, capsys):
    assert main(["report", str(run_dir), "--bootstrap", "50", "--gallery", "2"]) == 0
    page = run_dir / "report" / "index.html"
    for name in ("bars.png", "roc.png", "robustness.png"):
        assert (run_dir / "report" / name).stat().st_size > 1000
    text = page.read_text()
    p = _Collect()
    p.feed(text)
    assert p.srcs and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in p.srcs)
    assert not p.hrefs and "<script" not in text and "<link" not in text
    # 3 plots + 2 best + 2 worst gallery entries x (image, truth, heatmap)
    assert len(p.srcs) == 3 + 4 * 3 and text.count("<figure>") == 4
    assert "F1-best" in text and "Paired comparisons" in text
    assert "wrote" in capsys.readouterr().out


def test_report_recomputes_maps_when_not_saved(run_dir, tmp_path):
    from noisestat.bench.report import make_report

    shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("maps", "report"))
    page = make_report(tmp_path / "run", n_gallery=1, n_boot=20)
    text = page.read_text()
    assert text.count("<figure>") == 2 and "recomputed" in text


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "headless_shell"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    from noisestat.bench.report import make_report

    page = make_report(run_dir, out=tmp_path / "r", n_gallery=1, n_boot=20)
    shot = tmp_path / "shot.png"
    subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2000", page.as_uri()], check=True, timeout=120, capture_output=True)
    assert shot.stat().st_size > 10_000


def test_missing_matplotlib_names_the_extra(run_dir, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(run_dir)]) == 2
    assert "pip install noisestat[bench]" in capsys.readouterr().err
