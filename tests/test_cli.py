from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from noisestat.cli import main


def _write(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


def test_localize_writes_four_files_and_json(tmp_path, noisy_rgb, capsys):
    img = _write(tmp_path / "a.png", noisy_rgb)
    out = tmp_path / "out"
    rc = main(["localize", img, "--method", "median_residual", "--out", str(out), "--json"])
    assert rc == 0
    for suffix in ("heatmap.png", "mask.png", "overlay.png", "json"):
        assert (out / f"a.{suffix}").is_file()
    rep = json.loads((out / "a.json").read_text())
    for key in ("score", "method", "params", "timings", "noisestat_version", "input_sha256"):
        assert key in rep
    assert rep["method"] == "median_residual"
    heat = np.asarray(Image.open(out / "a.heatmap.png"))
    assert heat.dtype == np.uint8 and heat.shape == noisy_rgb.shape[:2]
    mask = np.asarray(Image.open(out / "a.mask.png"))
    assert set(np.unique(mask)) <= {0, 255}
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 0 and summary["results"][0]["image"] == img


def test_localize_bad_image_is_one_line_and_others_continue(tmp_path, noisy_rgb, capsys):
    good = _write(tmp_path / "good.png", noisy_rgb)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    missing = str(tmp_path / "missing.png")
    out = tmp_path / "out"
    rc = main(["localize", str(bad), missing, good, "--method", "median_residual", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "bad.jpg" in err[0] and "missing.png" in err[1]
    assert "Traceback" not in "\n".join(err)
    assert (out / "good.heatmap.png").is_file()


def test_param_parsing_and_unknown_param(tmp_path, noisy_rgb, capsys):
    img = _write(tmp_path / "a.png", noisy_rgb)
    rc = main(["localize", img, "--method", "median_residual", "--param", "nope=3", "--out", str(tmp_path)])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


def test_evaluate_table(tmp_path, noisy_rgb, capsys):
    img = _write(tmp_path / "a.png", noisy_rgb)
    out = tmp_path / "out"
    masks = tmp_path / "masks"
    masks.mkdir()
    gt = np.zeros(noisy_rgb.shape[:2], np.uint8)
    gt[20:60, 30:90] = 255
    _write(masks / "a.png", gt)
    assert main(["localize", img, "--method", "median_residual", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(out), "--masks", str(masks), "--orientation", "best"]) == 0
    text = capsys.readouterr().out
    assert "per image" in text and "pooled" in text and "best" in text


def test_methods_and_python_m():
    r = subprocess.run([sys.executable, "-m", "noisestat", "methods"], capture_output=True, text=True, check=True)
    assert "median_residual" in r.stdout
    r = subprocess.run([sys.executable, "-m", "noisestat", "localize"], capture_output=True, text=True)
    assert r.returncode == 2


def test_sample_writes_image_and_mask(tmp_path):
    assert main(["sample", "--out", str(tmp_path)]) == 0
    img = np.asarray(Image.open(tmp_path / "sample.png"))
    mask = np.asarray(Image.open(tmp_path / "truth" / "sample.png"))
    assert img.shape[:2] == mask.shape and 0 < (mask > 0).mean() < 0.5
