from __future__ import annotations

import numpy as np
import pytest

import noisestat
from noisestat import cli
from noisestat.io import load_image, save_rgb_png
from noisestat.panel import heat_colors, object_panel
from noisestat.synth import clean_texture, make_splice


@pytest.fixture(scope="module")
def splice_img() -> np.ndarray:
    rng = np.random.default_rng(3)
    host = np.clip(clean_texture((96, 128, 3), seed=3) + rng.normal(0, 2, (96, 128, 3)), 0, 255)
    return make_splice(host, region="ellipse", region_fraction=0.2, noise_sigma=8, seed=3).image


@pytest.fixture(scope="module")
def objects_loc(splice_img):
    return noisestat.localize(splice_img, method="objects", n_objects=8)


def test_heat_colors_ramp():
    c = heat_colors(np.array([0.0, 0.5, 1.0, np.nan, -1.0, 2.0]))
    assert c.dtype == np.uint8 and c.shape == (6, 3)
    assert c[0].sum() < 20 and c[2].sum() > 600  # dark at 0, bright at 1
    np.testing.assert_array_equal(c[3], [128, 128, 128])  # NaN grey
    np.testing.assert_array_equal(c[4], c[0])  # clipped
    np.testing.assert_array_equal(c[5], c[2])
    brightness = heat_colors(np.linspace(0, 1, 11)).astype(int).sum(axis=1)
    assert np.all(np.diff(brightness) > 0)  # monotone ramp


def test_object_panel_shape_and_content(splice_img, objects_loc):
    h, w = splice_img.shape[:2]
    p = object_panel(splice_img, objects_loc)
    assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3
    n = len(objects_loc.objects)
    # three panels side by side: image, heatmap, matrix (at least 12 px per object)
    assert p.shape[1] >= 2 * w + 12 * n and p.shape[0] >= h
    # outlines are drawn in yellow (or red for selected objects) in the image panel
    left = p[16 : 16 + h, :w].astype(int)
    yellow = (left[..., 0] == 255) & (left[..., 1] == 230) & (left[..., 2] == 0)
    red = (left[..., 0] == 255) & (left[..., 1] == 40) & (left[..., 2] == 40)
    assert (yellow | red).sum() > 0.5 * (h + w)


def test_dense_map_panel_has_image_heatmap_and_reliability(splice_img):
    loc = noisestat.localize(splice_img, method="median_residual")
    p = object_panel(splice_img, loc)
    h, w = splice_img.shape[:2]
    assert p.shape == (h + 16, 3 * w + 16, 3)
    # the heatmap panel shows the fixed colour ramp of the values, the third the reliability in grey
    np.testing.assert_array_equal(p[16:, w + 8 : 2 * w + 8], heat_colors(loc.heatmap.values))
    rel = np.round(np.clip(loc.reliability, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(p[16:, 2 * w + 16 :, 0], rel)


def test_panel_max_side_and_errors(splice_img, objects_loc):
    p = object_panel(splice_img, objects_loc, max_side=64)
    assert p.shape[0] <= 16 + max(64, 22 + 40 * len(objects_loc.objects))
    with pytest.raises(TypeError, match="Localization"):
        object_panel(splice_img, objects_loc.heatmap)
    with pytest.raises(ValueError, match="shape"):
        object_panel(splice_img[:50], objects_loc)
    with pytest.raises(ValueError, match="max_side"):
        object_panel(splice_img, objects_loc, max_side=4)


@pytest.mark.parametrize("method", ["objects", "median_residual"])
def test_cli_panel_writes_png(tmp_path, splice_img, method):
    src = tmp_path / "img.png"
    save_rgb_png(src, splice_img)
    out = tmp_path / "out"
    rc = cli.main(["localize", str(src), "--method", method, "--panel", "--out", str(out)])
    assert rc == 0
    panel = load_image(out / "img.panel.png")
    assert panel.pixels.shape[2] == 3 and panel.shape[0] >= splice_img.shape[0]
    rc = cli.main(["localize", str(src), "--method", method, "--out", str(tmp_path / "nopanel")])
    assert rc == 0 and not (tmp_path / "nopanel" / "img.panel.png").exists()
