"""Odd inputs get a clear answer: refused, warned about, or read correctly (issue 17, items 6 and 7)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from noisestat import registry
from noisestat.cli import main
from noisestat.io import load_image


def _jpeg(path, shape, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path, quality=90)
    return path


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 7, 3), (2, 5000, 3), (5000, 2, 3)])
def test_ela_refuses_tiny_images_like_the_others(tmp_path, shape):
    p = _jpeg(tmp_path / "t.jpg", shape)
    with pytest.raises(ValueError, match="smaller than the minimum"):
        registry.localize(p, method="ela")
    with pytest.raises(ValueError, match="smaller than the minimum"):
        registry.localize(p, method="kurtosis")


def test_one_bit_png_is_refused_by_the_methods_but_loads(tmp_path, capsys):
    a = np.random.default_rng(0).random((64, 80)) > 0.5
    Image.fromarray(a).convert("1").save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")  # masks are often 1-bit: loading works
    assert img.info.converted_from == "1"
    for m in ("kurtosis", "median_residual", "ela"):
        with pytest.raises(ValueError, match="bilevel"):
            registry.localize(img, method=m)
    assert main(["localize", str(tmp_path / "b.png"), "-m", "kurtosis", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bilevel" in err[0]


def test_unit_range_float_arrays_warn():
    a = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"value_range=\(0, 1\)"):
        load_image(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = load_image(a, value_range=(0, 1))
        load_image(a * 255)
    np.testing.assert_allclose(img.pixels[:, :, 0], a * 255, rtol=1e-6)


def test_float32_rgb_and_gray_tiff_are_read(tmp_path):
    import cv2

    rgb = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.float32)
    cv2.imwrite(str(tmp_path / "rgb.tif"), np.ascontiguousarray(rgb[:, :, ::-1]))  # OpenCV writes BGR
    img = load_image(tmp_path / "rgb.tif")
    assert img.pixels.shape == (20, 30, 3) and img.info.bit_depth == 32 and img.info.format == "TIFF"
    np.testing.assert_array_equal(img.pixels, rgb)
    gray = (np.random.default_rng(1).random((20, 30)) * 255).astype(np.float32)
    Image.fromarray(gray, mode="F").save(tmp_path / "g.tif")
    g = load_image(tmp_path / "g.tif")
    np.testing.assert_array_equal(g.pixels[:, :, 0], gray)
    assert g.info.white_level == 255.0


def test_animated_gif_warns_in_the_api_and_in_one_cli_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).convert("P") for _ in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="3 frames; only the first frame"):
        load_image(tmp_path / "a.gif")
    rc = main(["localize", str(tmp_path / "a.gif"), "-m", "median_residual", "--calibration", "none",
               "--out", str(tmp_path / "o")])
    assert rc == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("noisestat: warning:") and "first frame" in err[0]


def test_debug_after_the_subcommand(tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"junk")
    assert main(["localize", str(bad), "--out", str(tmp_path / "o"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", "localize", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["localize", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["manifest", "check", str(tmp_path / "nope.json"), "--root", str(tmp_path), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_localize_prints_a_summary_line(tmp_path, noisy_rgb, capsys):
    Image.fromarray(noisy_rgb).save(tmp_path / "a.png")
    assert main(["localize", str(tmp_path / "a.png"), "-m", "median_residual", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "score" in out[0] and "mask" in out[0] and "a.*" in out[0]
    assert main(["localize", str(tmp_path / "a.png"), "-m", "ela", "--out", str(tmp_path / "o2")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "not applicable" in out[0] and "JPEG" in out[0]


def test_every_option_has_help_text():
    import argparse

    from noisestat.cli import build_parser

    missing = []

    def walk(parser, name):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub_name, sub in a.choices.items():
                    walk(sub, f"{name} {sub_name}")
            elif not isinstance(a, (argparse._HelpAction, argparse._VersionAction)) and not a.help:
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}")

    walk(build_parser(), "noisestat")
    assert not missing, missing


def test_the_bad_input_corpus_script_finds_nothing_for_three_methods(tmp_path, monkeypatch):
    """benchmarks/bad_inputs.py's API pass (the whole corpus) for three methods: no problem."""
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bad_inputs", Path(__file__).resolve().parents[1] / "benchmarks" / "bad_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bad_inputs", mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    cases = mod.build_corpus(tmp_path, 96, 112)
    kinds = {c.expect for c in cases}
    assert kinds == {"ok", "warn", "refuse", "clean"} and len(cases) >= 50
    for method in ("ela", "median_residual", "kurtosis"):
        assert mod.run_api(cases, method) == [], method
