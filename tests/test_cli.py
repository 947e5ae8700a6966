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


def test_heatmap_png_keeps_the_order_of_tiny_values():
    from noisestat.io import heatmap_to_gray

    rng = np.random.default_rng(3)
    v = rng.uniform(0.0, 0.004, (40, 50))
    gray, mapping = heatmap_to_gray(v)
    assert len(np.unique(gray)) >= 10  # round(v * 255) would be all 0 or 1
    order = np.argsort(v, axis=None)
    assert np.all(np.diff(gray.ravel()[order].astype(int)) >= 0)  # never out of order
    assert gray.min() == 0 and gray.max() == 255
    levels = mapping["levels"]
    used = [lv for lv in levels if lv is not None]
    assert used == sorted(used) and used[0] == v.min()
    flat, _ = heatmap_to_gray(np.full((4, 4), 0.7))
    assert not flat.any()
    few, _ = heatmap_to_gray(np.array([[0.1, 0.2], [0.2, 0.9]]))
    assert few.tolist() == [[0, 128], [128, 255]]


def test_png_and_npy_score_like_the_arrays(tmp_path):
    """Scored as grey/255, the written PNGs give the arrays' mean F1-best and AUC within 0.02."""
    import noisestat
    from noisestat.metrics import evaluate_map
    from noisestat.synth import make_splice

    out = tmp_path / "out"
    for method in ("median_residual", "objects", "wavelet_mad"):
        arr_f1, png_f1, arr_auc, png_auc = [], [], [], []
        for seed in range(3):
            sp = make_splice(noisestat.synth.sample_image("coffee")[::2, ::2], seed=seed, noise_sigma=6.0)
            path = _write(tmp_path / f"s{seed}.png", sp.image)
            assert main(["localize", path, "--method", method, "--out", str(out / method)]) == 0
            values = noisestat.localize(path, method=method).heatmap.values
            png = np.asarray(Image.open(out / method / f"s{seed}.heatmap.png"), dtype=np.float64) / 255.0
            np.testing.assert_array_equal(np.load(out / method / f"s{seed}.heatmap.npy"), values)
            a, p = evaluate_map(values, sp.mask), evaluate_map(png, sp.mask)
            arr_f1.append(a.f1_best), png_f1.append(p.f1_best), arr_auc.append(a.auc), png_auc.append(p.auc)
        assert abs(np.mean(arr_f1) - np.mean(png_f1)) <= 0.02, method
        assert abs(np.mean(arr_auc) - np.mean(png_auc)) <= 0.02, method


def test_evaluate_prefers_the_lossless_npy(tmp_path, capsys):
    pred, masks = tmp_path / "pred", tmp_path / "masks"
    pred.mkdir(), masks.mkdir()
    truth = np.zeros((16, 16), bool)
    truth[:, :8] = True
    np.save(pred / "x.heatmap.npy", truth.astype(np.float32) * 0.003)  # right, but too small for v*255
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(pred / "x.heatmap.png")  # a blank PNG
    Image.fromarray(truth.astype(np.uint8) * 255).save(masks / "x.png")
    assert main(["evaluate", "--pred", str(pred), "--masks", str(masks)]) == 0
    row = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("x ")][0]
    assert float(row.split()[1]) == 1.0  # AUC of the .npy, not of the blank PNG
