from __future__ import annotations

import numpy as np
import pytest

from noisestat.bench.manifest import check_manifest, load_manifest
from noisestat.bench.protocols import build_synthetic, postprocess, postprocess_manifest
from noisestat.cli import main
from noisestat.io import load_image, load_mask


def test_jpeg_protocol_writes_real_jpegs_with_the_same_regions(tmp_path):
    m = build_synthetic(tmp_path / "ds", n_hosts=2, protocol="jpeg_low", shape=(64, 80), seed=2)
    assert m.counts() == {"spliced": 8, "pristine": 8}
    assert check_manifest(m, tmp_path / "ds") == []
    sp = [it for it in m.items if it.label == "spliced" and it.extra["host"] == "texture000"]
    assert [it.extra["level"] for it in sp] == ["none", "jpeg_quality=90", "jpeg_quality=80", "jpeg_quality=70"]
    masks = [load_mask(tmp_path / "ds" / it.mask) for it in sp]
    assert all(np.array_equal(masks[0], mk) for mk in masks[1:]) and masks[0].any()
    for it, q in zip(sp, (None, 90, 80, 70)):
        info = load_image(tmp_path / "ds" / it.image).info
        assert (info.jpeg_quality, info.is_jpeg) == ((q, True) if q else (None, False))
    assert load_manifest(tmp_path / "ds" / "manifest.json").items == m.items


def test_resize_protocol_resizes_masks_with_images(tmp_path):
    m = build_synthetic(tmp_path / "ds", n_hosts=2, protocol="resize", shape=(60, 80), pristine=False)
    for it in m.items:
        img = load_image(tmp_path / "ds" / it.image)
        mask = load_mask(tmp_path / "ds" / it.mask, img.shape)  # raises if the sizes differ
        assert mask.any() and it.shape == img.shape
    assert sorted({it.shape for it in m.items}) == [(48, 64), (54, 72), (60, 80), (66, 88), (72, 96)]


def test_postprocess_noise_level_and_determinism():
    img = np.full((200, 200), 128, np.uint8)
    out = postprocess(img, noise_var=0.001, seed=[1, 2])
    assert out.astype(float).std() == pytest.approx(np.sqrt(0.001) * 255, rel=0.05)
    assert np.array_equal(out, postprocess(img, noise_var=0.001, seed=[1, 2]))
    assert not np.array_equal(out, postprocess(img, noise_var=0.001, seed=[1, 3]))
    g = postprocess(np.array([[0, 255]], np.uint8).repeat(2, 0), gamma=1.0, dynamic_range=(16, 235))
    assert g.min() == 16 and g.max() == 235
    with pytest.raises(ValueError, match="both"):
        postprocess(img, noise_var=0.01, noise_sigma=2)


def test_postprocess_manifest_keeps_masks(tmp_path):
    src = build_synthetic(tmp_path / "src", n_hosts=2, shape=(64, 80), seed=4)
    before = {p.name: p.read_bytes() for p in (tmp_path / "src" / "images").iterdir()}
    m = postprocess_manifest(tmp_path / "src" / "manifest.json", root=tmp_path / "src", out=tmp_path / "q70",
                             jpeg_quality=70)
    assert m.counts() == src.counts() and check_manifest(m, tmp_path / "q70") == []
    old = {it.id: it for it in src.items}
    for it in m.items:
        o = old[it.extra["source_item"]]
        assert it.mask_sha256 == o.mask_sha256 and it.image_sha256 != o.image_sha256
        assert it.image.endswith(".jpg") and load_image(tmp_path / "q70" / it.image).info.jpeg_quality == 70
    assert m.meta["derived_from"]["digest"] == src.digest() and m.meta["postprocess"]["jpeg_quality"] == 70
    assert {p.name: p.read_bytes() for p in (tmp_path / "src" / "images").iterdir()} == before
    with pytest.raises(ValueError, match="differ"):
        postprocess_manifest(src, root=tmp_path / "src", out=tmp_path / "src", jpeg_quality=70)
    with pytest.raises(ValueError, match="no processing"):
        postprocess_manifest(src, root=tmp_path / "src", out=tmp_path / "x")


def test_cli_synth(tmp_path, capsys):
    assert main(["synth", "--list"]) == 0
    assert "jpeg_sweep" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "s"), "--n-hosts", "2", "--protocol", "noise_var_small",
                 "--size", "64x64", "--no-pristine"]) == 0
    m = load_manifest(tmp_path / "s" / "manifest.json")
    assert m.counts() == {"spliced": 14, "pristine": 0}
    assert main(["synth", "--from-manifest", str(tmp_path / "s" / "manifest.json"), "--root", str(tmp_path / "s"),
                 "--out", str(tmp_path / "b"), "--blur", "1.0"]) == 0
    assert load_manifest(tmp_path / "b" / "manifest.json").counts()["spliced"] == 14
    assert main(["synth", "--out", str(tmp_path / "z"), "--protocol", "nope"]) == 2
