from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from noisestat.bench.manifest import (
    build_manifest,
    check_manifest,
    check_relpath,
    load_manifest,
    save_manifest,
)
from noisestat.cli import main

REPO = Path(__file__).resolve().parents[1]
CASIA = REPO.parent / "shared" / "data" / "casia1"


def _tiny_dataset(root: Path, n: int = 3, n_pristine: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for d in ("images", "masks", "pristine"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / "images" / f"s{i}.png")
        m = np.zeros((20, 24), np.uint8)
        m[5:10, 5:12] = 255
        # one mask uses the "_gt" naming convention
        Image.fromarray(m).save(root / "masks" / (f"s{i}_gt.png" if i == 0 else f"s{i}.png"))
    for i in range(n_pristine):
        Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(root / "pristine" / f"p{i}.png")
    return root


def test_build_save_load_roundtrip(tmp_path):
    root = _tiny_dataset(tmp_path / "ds")
    m = build_manifest(root / "images", masks=root / "masks", pristine=root / "pristine", origin="test")
    assert m.dataset == "ds"
    assert m.counts() == {"spliced": 3, "pristine": 2}
    it = {i.id: i for i in m.items}
    assert it["images/s0"].mask == "masks/s0_gt.png"
    assert it["images/s1"].mask == "masks/s1.png" and it["pristine/p0"].mask is None
    assert it["images/s1"].shape == (20, 24) and it["images/s1"].image_bytes > 0
    out = tmp_path / "m.json"
    save_manifest(m, out)
    d = json.loads(out.read_text())
    assert d["format"] == "noisestat.manifest" and len(d["items"]) == 5
    m2 = load_manifest(out)
    assert m2.items == m.items and m2.origin == "test" and m2.digest() == m.digest()
    assert check_manifest(m2, root) == []


def test_check_reports_changed_missing_files(tmp_path):
    root = _tiny_dataset(tmp_path / "ds")
    m = build_manifest(root / "images", masks=root / "masks", pristine=root / "pristine")
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "images" / "s1.png")
    (root / "pristine" / "p1.png").unlink()
    problems = check_manifest(m, root)
    assert len(problems) == 2
    assert any("images/s1" in p and ("sha256" in p or "bytes" in p) for p in problems)
    assert any("p1.png not found" in p for p in problems)
    assert len(check_manifest(m, root, hashes=False)) == 1


def test_missing_mask_is_an_error_unless_allowed(tmp_path):
    root = _tiny_dataset(tmp_path / "ds")
    (root / "masks" / "s2.png").unlink()
    with pytest.raises(ValueError, match="s2.png.*allow_missing_masks=True"):
        build_manifest(root / "images", masks=root / "masks")
    m = build_manifest(root / "images", masks=root / "masks", allow_missing_masks=True)
    assert {i.id: i.mask for i in m.items}["images/s2"] is None


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.png", "images/../../x.png", "C:/x.png", "a\\b.png", ""])
def test_paths_may_not_escape_root(bad):
    with pytest.raises(ValueError):
        check_relpath(bad)


def test_load_rejects_escaping_paths_and_bad_format(tmp_path):
    root = _tiny_dataset(tmp_path / "ds")
    m = build_manifest(root / "images", masks=root / "masks")
    out = tmp_path / "m.json"
    save_manifest(m, out)
    d = json.loads(out.read_text())
    d["items"][0]["image"] = "../../etc/passwd"
    out.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="escape"):
        load_manifest(out)
    out.write_text(json.dumps({"items": []}))
    with pytest.raises(ValueError, match="not a noisestat manifest"):
        load_manifest(out)
    d["items"][0]["image"] = "images/s0.png"
    d["items"].append(dict(d["items"][0]))
    out.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="twice"):
        load_manifest(out)


def test_select_every_kth_per_label(tmp_path):
    root = _tiny_dataset(tmp_path / "ds", n=9, n_pristine=5)
    m = build_manifest(root / "images", masks=root / "masks", pristine=root / "pristine")
    sel = m.select(every=4)
    assert [i.name for i in sel] == ["s0.png", "s4.png", "s8.png", "p0.png", "p4.png"]
    assert len(m.select(every=4, limit=2)) == 2


def test_cli_build_and_check(tmp_path, capsys):
    root = _tiny_dataset(tmp_path / "ds")
    out = tmp_path / "m.json"
    rc = main(["manifest", "build", "--images", str(root / "images"), "--masks", str(root / "masks"),
               "--pristine", str(root / "pristine"), "--out", str(out)])
    assert rc == 0 and out.is_file()
    assert main(["manifest", "check", str(out), "--root", str(root)]) == 0
    (root / "masks" / "s1.png").write_bytes(b"changed")
    assert main(["manifest", "check", str(out), "--root", str(root)]) == 1
    assert "images/s1" in capsys.readouterr().err


def test_shipped_manifests_are_valid():
    files = sorted((REPO / "data_manifests").glob("*.json"))
    assert files
    for f in files:
        m = load_manifest(f)
        assert len(m) > 0 and m.origin and m.terms


@pytest.mark.skipif(not (CASIA / "images").is_dir(), reason="../shared/data/casia1 is not present")
def test_casia1_manifest_matches_shared_data():
    m = load_manifest(REPO / "data_manifests" / "casia1.json")
    assert m.counts() == {"spliced": 460, "pristine": 800}
    assert all(it.mask is not None for it in m.items if it.label == "spliced")
    assert check_manifest(m, CASIA) == []
    on_disk = sorted(p.name for p in (CASIA / "images").iterdir() if p.suffix == ".jpg")
    assert sorted(it.name for it in m.items if it.label == "spliced") == on_disk
