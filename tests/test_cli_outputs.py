"""Output names and safety of ``noisestat localize``: unique stems, no silent replacement, no symlink writes."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from noisestat.cli import OUTPUT_SUFFIXES, main

M = ["--method", "median_residual", "--calibration", "none"]


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return str(path)


def test_flat_names_and_duplicate_stems_get_tilde_numbers(tmp_path, noisy_rgb, capsys):
    a = _write(tmp_path / "d1" / "x.png", noisy_rgb)
    b = _write(tmp_path / "d2" / "x.png", noisy_rgb[::-1].copy())
    out = tmp_path / "out"
    assert main(["localize", a, b, *M, "--out", str(out), "--json"]) == 0
    for stem in ("x", "x~2"):
        for suf in OUTPUT_SUFFIXES:
            assert (out / f"{stem}{suf}").is_file(), f"{stem}{suf}"
    first = json.loads((out / "x.json").read_text())
    second = json.loads((out / "x~2.json").read_text())
    assert first["input_sha256"] != second["input_sha256"]
    assert first["input"]["source"] == a and second["input"]["source"] == b
    res = json.loads(capsys.readouterr().out)["results"]
    assert res[0]["outputs"]["json"] != res[1]["outputs"]["json"]
    assert res[1]["outputs"]["json"].endswith("x~2.json")


def test_existing_outputs_of_another_request_are_refused_unless_overwrite(tmp_path, noisy_rgb, capsys):
    a = _write(tmp_path / "d1" / "x.png", noisy_rgb)
    b = _write(tmp_path / "d2" / "x.png", noisy_rgb[::-1].copy())
    out = tmp_path / "out"
    assert main(["localize", a, *M, "--out", str(out)]) == 0
    # the same request again: replaced silently (rc 0)
    assert main(["localize", a, *M, "--out", str(out)]) == 0
    before = (out / "x.json").read_bytes()
    # another input with the same stem: refused in one line, nothing replaced
    capsys.readouterr()
    assert main(["localize", b, *M, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert (out / "x.json").read_bytes() == before
    # another method or parameter: refused too
    assert main(["localize", a, "--method", "median_residual", "--param", "block=16", "--calibration", "none",
                 "--out", str(out)]) == 2
    assert main(["localize", a, "--method", "ela", "--calibration", "none", "--out", str(out)]) == 2
    assert (out / "x.json").read_bytes() == before
    # --overwrite replaces
    assert main(["localize", b, *M, "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "x.json").read_text())["input"]["source"] == b


def test_an_output_never_replaces_an_input(tmp_path, noisy_rgb, capsys):
    a = _write(tmp_path / "a.png", noisy_rgb)
    m = _write(tmp_path / "a.mask.png", (noisy_rgb[:, :, 0] > 128).astype(np.uint8) * 255)
    before = (tmp_path / "a.mask.png").read_bytes()
    rc = main(["localize", a, m, *M, "--out", str(tmp_path), "--overwrite"])
    assert rc == 2
    assert "would replace an input" in capsys.readouterr().err
    assert (tmp_path / "a.mask.png").read_bytes() == before


def test_symlinks_in_out_are_replaced_not_written_through(tmp_path, noisy_rgb, capsys):
    a = _write(tmp_path / "a.png", noisy_rgb)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, out / "a.json")
    # a planted link is not an output of this request: refused
    assert main(["localize", a, *M, "--out", str(out)]) == 2
    assert victim.read_text() == "keep me"
    # with --overwrite the link itself is replaced by the file
    assert main(["localize", a, *M, "--out", str(out), "--overwrite"]) == 0
    assert victim.read_text() == "keep me"
    assert not (out / "a.json").is_symlink()
    assert json.loads((out / "a.json").read_text())["method"] == "median_residual"


def test_symlinked_inputs_are_read(tmp_path, noisy_rgb):
    a = _write(tmp_path / "real.png", noisy_rgb)
    link = tmp_path / "link.png"
    os.symlink(a, link)
    out = tmp_path / "out"
    assert main(["localize", str(link), *M, "--out", str(out)]) == 0
    assert (out / "link.json").is_file()
