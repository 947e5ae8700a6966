"""Manifests stay inside their root (symlinks followed); unverifiable and unreadable items are reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from noisestat.bench.manifest import (
    build_manifest,
    check_manifest,
    manifest_from_dict,
    save_manifest,
    unreadable_items,
)
from noisestat.bench.run import run_bench
from noisestat.cli import main


def _dataset(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for d in ("images", "masks", "pristine"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "images" / f"s{i}.png")
        m = np.zeros((40, 48), np.uint8)
        m[5:20, 5:22] = 255
        Image.fromarray(m).save(root / "masks" / f"s{i}.png")
    Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(root / "pristine" / "p0.png")
    return root


def test_symlinks_leaving_the_root_are_problems_and_error_rows(tmp_path):
    root = _dataset(tmp_path / "ds")
    m = build_manifest(root / "images", masks=root / "masks", pristine=root / "pristine")
    outside = tmp_path / "outside"
    outside.mkdir()
    # a file link and a folder link that point outside, with the same bytes (so the hashes match)
    shutil.copy(root / "images" / "s1.png", outside / "s1.png")
    (root / "images" / "s1.png").unlink()
    os.symlink(outside / "s1.png", root / "images" / "s1.png")
    shutil.move(str(root / "pristine"), str(outside / "pristine"))
    os.symlink(outside / "pristine", root / "pristine")
    # a link that stays inside the root is fine
    shutil.move(str(root / "images" / "s2.png"), str(root / "s2_real.png"))
    os.symlink(root / "s2_real.png", root / "images" / "s2.png")
    problems = check_manifest(m, root)
    assert len(problems) == 2, problems
    assert all("outside the dataset root" in p for p in problems)
    assert any(p.startswith("images/s1:") for p in problems) and any(p.startswith("pristine/p0:") for p in problems)
    res = run_bench(m, root=root, out=tmp_path / "run", methods=["median_residual"], progress=False, n_boot=0)
    errs = {r["item"]: r["error"] for r in res.rows if r["error"]}
    assert set(errs) == {"images/s1", "pristine/p0"}
    assert all("outside the dataset root" in e for e in errs.values())


def test_check_reports_items_without_hashes(tmp_path, capsys):
    root = _dataset(tmp_path / "ds")
    m = build_manifest(root / "images", masks=root / "masks", hashes=False)
    problems = check_manifest(m, root)
    assert len(problems) == 6 and all("no sha256" in p for p in problems)  # 3 images + 3 masks
    assert check_manifest(m, root, hashes=False) == []
    save_manifest(m, tmp_path / "m.json")
    assert main(["manifest", "check", str(tmp_path / "m.json"), "--root", str(root)]) == 1
    assert "no sha256" in capsys.readouterr().err


def test_build_lists_unreadable_files_and_keeps_them_as_error_items(tmp_path, capsys):
    root = _dataset(tmp_path / "ds")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        root / "pristine" / "t.jpg", quality=90)
    data = (root / "pristine" / "t.jpg").read_bytes()
    (root / "pristine" / "t.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (root / "pristine" / "junk.png").write_bytes(b"not an image")
    out = tmp_path / "m.json"
    rc = main(["manifest", "build", "--images", str(root / "images"), "--masks", str(root / "masks"),
               "--pristine", str(root / "pristine"), "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    assert "2 unreadable" in cap.out
    assert "t.jpg" in cap.err and "junk.png" in cap.err
    import json

    m = manifest_from_dict(json.loads(out.read_text()))
    assert m.counts() == {"spliced": 3, "pristine": 3}
    assert sorted(it.name for it in unreadable_items(m)) == ["junk.png", "t.jpg"]
    res = run_bench(m, root=root, out=tmp_path / "run", methods=["median_residual"], progress=False, n_boot=0)
    assert sorted(r["name"] for r in res.rows if r["error"]) == ["junk.png", "t.jpg"]
