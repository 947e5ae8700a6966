"""The ONNX hooks with onnxruntime: segmenter layouts, tiled feature maps, SRM graph, providers, objects/fusion/CLI.

Every graph is built with onnx.helper in tmp_path (tests/onnx_graphs.py); the only
packaged model is noisestat/onnx/srm.onnx. Skipped without onnxruntime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

# --------------------------------------------------------------------------- with onnxruntime

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from onnx_graphs import constant_maskrcnn, conv_map, identity_map  # noqa: E402

from noisestat.onnx import (  # noqa: E402
    OnnxFeatureProvider,
    OnnxSegmenter,
    build_srm_model,
    select_providers,
    srm_model_path,
    srm_reference,
)


def test_packaged_srm_model_is_the_generated_graph_and_matches_the_reference():
    assert srm_model_path().read_bytes() == build_srm_model().SerializeToString()
    rng = np.random.default_rng(3)
    gray = (rng.random((97, 131)) * 255).astype(np.float32)
    out = OnnxFeatureProvider(srm_model_path())(gray)
    ref = srm_reference(gray / 255.0)
    assert out.shape == (97, 131, 30) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("shape", [(150, 203), (64, 300), (40, 40)])
def test_tile_seams_are_invisible_for_the_srm_bank(shape):
    rng = np.random.default_rng(4)
    img = (rng.random(shape) * 255).astype(np.uint8)
    whole = OnnxFeatureProvider(srm_model_path(), tile=1024, overlap=0)(img)
    tiled = OnnxFeatureProvider(srm_model_path(), tile=48, overlap=16)(img)
    assert np.abs(tiled - whole).max() <= 1e-5


def test_tile_seams_are_invisible_for_a_two_layer_rgb_network(tmp_path):
    rng = np.random.default_rng(5)
    kernels = rng.normal(size=(4, 3, 5, 5))  # receptive radius 2 + 1 = 3 <= overlap // 4
    path = conv_map(tmp_path / "net.onnx", kernels, channels_in=3)
    img = (rng.random((170, 121, 3)) * 255).astype(np.uint8)
    whole = OnnxFeatureProvider(path, tile=512)(img)
    tiled = OnnxFeatureProvider(path, tile=64, overlap=16)(img)
    assert whole.shape == (170, 121, 1)
    assert np.abs(tiled - whole).max() <= 1e-5
    assert np.abs(whole).max() > 0.01  # not a trivially zero map


def test_feature_provider_rejects_a_model_with_another_signature(tmp_path):
    tv = constant_maskrcnn(tmp_path / "seg.onnx", boxes=[[0, 0, 4, 4]], scores=[0.9],
                           masks=np.ones((1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"not an image-to-map model: expected .*found inputs \(image"):
        OnnxFeatureProvider(tv)
    with pytest.raises(ValueError, match="tile"):
        OnnxFeatureProvider(srm_model_path(), tile=32, overlap=32)


def test_provider_selection_prefers_cuda_when_available(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert select_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert select_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="CUDAExecutionProvider.*not available"):
        select_providers(["CUDAExecutionProvider"])
    prov = OnnxFeatureProvider(srm_model_path())
    assert prov.info["provider"] == "CPUExecutionProvider" and prov.info["model"] == "srm.onnx"


# --------------------------------------------------------------------------- segmenter layouts


def _rect_masks(shape, rects, value=1.0):
    m = np.zeros((len(rects), 1, *shape), np.float32)
    for i, (r0, c0, r1, c1) in enumerate(rects):
        m[i, 0, r0:r1, c0:c1] = value
    return m


def test_torchvision_layout_boxes_and_masks_land_on_the_right_pixels(tmp_path):
    shape = (60, 80)
    rects = [(10, 20, 30, 50), (35, 5, 55, 25), (0, 0, 5, 5)]
    # boxes (x0, y0, x1, y1): the first box is larger than its mask
    boxes = [[15.2, 8.0, 55.0, 33.5], [5, 35, 25, 55], [0, 0, 5, 5]]
    path = constant_maskrcnn(tmp_path / "tv.onnx", boxes=boxes, scores=[0.7, 0.95, 0.2],
                             masks=_rect_masks(shape, rects, 0.8))
    seg = OnnxSegmenter(path)
    assert seg.layout == "torchvision" and seg.provider == "CPUExecutionProvider"
    inst = seg(np.zeros((*shape, 3), np.uint8))
    assert inst.n_instances == 2  # 0.2 < score_threshold
    np.testing.assert_allclose(inst.scores, [0.95, 0.7], rtol=1e-6)  # sorted by score
    assert inst.boxes.tolist() == [[35, 5, 55, 25], [8, 15, 34, 55]]  # (row0, col0, row1, col1)
    for m, (r0, c0, r1, c1) in zip(inst.masks, [rects[1], rects[0]]):
        expect = np.zeros(shape, bool)
        expect[r0:r1, c0:c1] = True
        np.testing.assert_array_equal(m, expect)
    assert inst.params["layout"] == "torchvision" and inst.params["model"] == "tv.onnx"
    assert inst.params["n_detections"] == 3


def test_model_zoo_layout_resizes_pads_and_pastes(tmp_path):
    h, w = 100, 150  # shorter side 100 -> ratio 8 -> 800 x 1200, padded to 800 x 1216
    ratio = 8.0
    box = np.array([30, 20, 90, 60], np.float64)  # (x0, y0, x1, y1) in the original image
    m28 = np.zeros((2, 1, 28, 28), np.float32)
    m28[:, 0, :, :14] = 1.0  # left half of the box
    path = constant_maskrcnn(tmp_path / "zoo.onnx", boxes=[box * ratio, box * ratio], scores=None, masks=m28,
                             names=("6568", "6570", "6572", "6887"), mask_dims=("N", 1, 28, 28),
                             score_from_shape=True)
    seg = OnnxSegmenter(path, score_threshold=0.3)
    assert seg.layout == "maskrcnn10"
    inst = seg(np.full((h, w, 3), 128, np.uint8))
    # scores = padded (H, W) / 2000: the model saw 800 x 1216
    np.testing.assert_allclose(sorted(inst.scores), [800 / 2000, 1216 / 2000], rtol=1e-6)
    assert inst.boxes.tolist()[0] == [20, 30, 60, 90]
    expect = np.zeros((h, w), bool)
    expect[20:60, 30:60] = True  # left half of the 60-pixel-wide box
    np.testing.assert_array_equal(inst.masks[0], expect)


def test_zoo_input_is_bgr_minus_mean_padded_with_zeros():
    from noisestat.io import as_image
    from noisestat.onnx._segmenter import ZOO_MEAN_BGR, _zoo_input

    img = np.zeros((50, 70, 3), np.uint8)
    img[:] = (200, 100, 50)
    x, ratio = _zoo_input(as_image(img))
    assert ratio == 16.0 and x.shape == (3, 800, 1120)
    np.testing.assert_allclose(x[:, 10, 10], np.array([50, 100, 200]) - np.array(ZOO_MEAN_BGR), rtol=1e-5)
    x, ratio = _zoo_input(as_image(np.zeros((64, 90, 3), np.uint8)))
    assert ratio == 12.5 and x.shape == (3, 800, 1152)  # 1125 columns, padded to a multiple of 32
    np.testing.assert_array_equal(x[:, :, 1125:], 0.0)
    np.testing.assert_allclose(x[:, 5, 5], -np.array(ZOO_MEAN_BGR), rtol=1e-5)


def test_mismatching_models_get_one_clear_error(tmp_path):
    tv = constant_maskrcnn(tmp_path / "tv.onnx", boxes=[[0, 0, 4, 4]], scores=[0.9],
                           masks=np.ones((1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"layout 'maskrcnn10': expected .*28, 28.*found inputs .*"
                                         r"\(looks like 'torchvision'\)"):
        OnnxSegmenter(tv, layout="maskrcnn10")
    with pytest.raises(ValueError, match=r"srm.onnx: not a Mask R-CNN model of a known Mask R-CNN layout: "
                                         r"expected torchvision: .*; or maskrcnn10: .*found inputs \(image"):
        OnnxSegmenter(srm_model_path())
    odd = constant_maskrcnn(tmp_path / "odd.onnx", boxes=[[0, 0, 4, 4]], scores=[0.9], masks=np.ones((1, 1, 8, 8)),
                            names=("a", "b", "c", "d"))
    with pytest.raises(ValueError, match="not a Mask R-CNN model"):
        OnnxSegmenter(odd)
    with pytest.raises(ValueError, match="masks of shape"):  # torchvision masks of the wrong size at run time
        OnnxSegmenter(tv)(np.zeros((10, 12, 3), np.uint8))


# --------------------------------------------------------------------------- objects and fusion with the hooks


def _scene():
    """A gray image: instance A's mask value 60, the rest of its box 120, instance B 200, elsewhere 30."""
    img = np.full((120, 160), 30, np.uint8)
    img[10:70, 10:90] = 120  # box of A (rows 10-70, cols 10-90)
    img[20:60, 20:80] = 60  # mask of A
    img[80:110, 100:150] = 200  # mask of B (its box is its mask: remainder 0)
    rects = [(20, 20, 60, 80), (80, 100, 110, 150), (0, 150, 8, 160)]
    boxes = [[10, 10, 90, 70], [100, 80, 150, 110], [150, 0, 160, 8]]  # x0, y0, x1, y1
    return img, rects, boxes


def test_objects_use_instances_mask_as_foreground_and_box_remainder_as_background(tmp_path):
    from noisestat.localizers.objects import objects_localizer

    img, rects, boxes = _scene()
    seg_path = constant_maskrcnn(tmp_path / "tv.onnx", boxes=boxes, scores=[0.9, 0.8, 0.7],
                                 masks=_rect_masks(img.shape, rects))
    ident = identity_map(tmp_path / "ident.onnx")
    loc = objects_localizer(img, segmenter=f"onnx:{seg_path}:torchvision", feature_maps=f"onnx:{ident}",
                            features="sigma_r")
    objs = loc.objects
    assert len(objs) == 4  # A, B, the small one, rest of the image
    f = {o.label: o.features for o in objs}
    # feature "onnx_ident": RMS of the map (= image / 255) over the region
    assert f[1]["onnx_ident_fg"] == pytest.approx(60 / 255, rel=1e-6)
    assert f[1]["onnx_ident_bg"] == pytest.approx(120 / 255, rel=1e-6)  # the rest of A's box
    assert f[2]["onnx_ident_fg"] == pytest.approx(200 / 255, rel=1e-6)
    # B's box remainder is empty: its background is the rest of the image
    rest = np.ones(img.shape, bool)
    rest[80:110, 100:150] = False
    expect = np.sqrt(np.mean((img[rest] / 255.0) ** 2))
    assert f[2]["onnx_ident_bg"] == pytest.approx(expect, rel=1e-6)
    assert "background: rest of the image" in objs[1].note
    # the third instance (80 pixels) is below min_pixels: kept, invalid, never selected
    assert not objs[2].valid and not objs[2].selected and "below min_pixels" in objs[2].note
    # the rest of the image: everything outside the three masks
    assert "rest of the image" in objs[3].note and objs[3].area == img.size - 40 * 60 - 30 * 50 - 80
    assert loc.params["segmentation"]["model"] == "tv.onnx"
    assert loc.params["segmentation"]["layout"] == "torchvision"
    assert loc.params["feature_providers"]["onnx_ident"]["model"] == "ident.onnx"
    assert loc.extras["instances"]["masks"].shape == (4, *img.shape)


def test_overlapping_instances_paint_the_larger_value_and_the_union_mask(tmp_path, noisy_rgb):
    from noisestat.localizers.objects import objects_localizer

    h, w = noisy_rgb.shape[:2]
    img = noisy_rgb.astype(np.float64)
    img[20:80, 30:100] += np.random.default_rng(9).normal(0, 25, (60, 70, 3))  # a much noisier patch
    img = np.clip(img, 0, 255).astype(np.uint8)
    rects = [(20, 30, 80, 100), (50, 60, 110, 150)]  # overlapping
    boxes = [[30, 20, 100, 80], [60, 50, 150, 110]]
    path = constant_maskrcnn(tmp_path / "tv.onnx", boxes=boxes, scores=[0.9, 0.8],
                             masks=_rect_masks((h, w), rects))
    loc = objects_localizer(img, segmenter=f"onnx:{path}")
    v = [o.score for o in loc.objects]
    assert loc.objects[0].selected
    hm = loc.heatmap.values
    assert hm[60, 70] == pytest.approx(max(v[0], v[1]), abs=1e-6)  # in both masks
    assert hm[100, 140] == pytest.approx(v[1], abs=1e-6)  # only in the second
    masks = loc.extras["instances"]["masks"]
    union = np.zeros((h, w), bool)
    for o, m in zip(loc.objects, masks):
        if o.selected:
            union |= m
    np.testing.assert_array_equal(loc.mask, union)


def test_no_instance_above_threshold_falls_back_to_the_partition(tmp_path, noisy_rgb):
    from noisestat.localizers.objects import objects_localizer

    h, w = noisy_rgb.shape[:2]
    path = constant_maskrcnn(tmp_path / "tv.onnx", boxes=[[0, 0, 50, 50]], scores=[0.1],
                             masks=_rect_masks((h, w), [(0, 0, 50, 50)]))
    loc = objects_localizer(noisy_rgb, segmenter=f"onnx:{path}")
    ref = objects_localizer(noisy_rgb)
    assert "fallback" in loc.params["segmentation"]
    np.testing.assert_array_equal(loc.extras["labels"], ref.extras["labels"])
    np.testing.assert_array_equal(loc.heatmap.values, ref.heatmap.values)


def test_segment_returns_instances_from_the_onnx_backend(tmp_path):
    from noisestat.segment import segment

    img, rects, boxes = _scene()
    path = constant_maskrcnn(tmp_path / "tv.onnx", boxes=boxes, scores=[0.9, 0.8, 0.7],
                             masks=_rect_masks(img.shape, rects))
    seg = segment(img, method="onnx", model=f"{path}:torchvision")
    assert seg.instances is not None and seg.instances.n_instances == 3
    assert seg.params["layout"] == "torchvision" and seg.params["model"] == "tv.onnx"
    assert seg.labels[30, 30] == 1 and seg.labels[90, 120] == 2 and seg.labels[0, 0] == 0
    assert int(seg.instances.background(1).sum()) == 60 * 80 - 40 * 60


def test_fusion_reports_the_extra_map_without_changing_the_probability(noisy_rgb):
    from noisestat.localizers.fusion import fusion_localizer

    base = fusion_localizer(noisy_rgb, maps="median_residual")
    loc = fusion_localizer(noisy_rgb, maps="median_residual", feature_maps="onnx:srm")
    np.testing.assert_array_equal(loc.heatmap.values, base.heatmap.values)
    cols = loc.extras["feature_map_columns"]
    assert "onnx_srm_mean" in cols and "onnx_srm_p50_rel" in cols
    assert "onnx_srm_mean" in loc.objects[0].features
    assert loc.params["feature_providers"]["onnx_srm"]["provider"] == "CPUExecutionProvider"


def test_cli_segmenter_and_features(tmp_path, noisy_rgb):
    from PIL import Image

    from noisestat.cli import main

    h, w = noisy_rgb.shape[:2]
    seg_path = constant_maskrcnn(tmp_path / "tv.onnx", boxes=[[30, 20, 100, 80]], scores=[0.9],
                                 masks=_rect_masks((h, w), [(20, 30, 80, 100)]))
    img = tmp_path / "a.png"
    Image.fromarray(noisy_rgb).save(img)
    rc = main(["localize", str(img), "--out", str(tmp_path / "o"), "--segmenter", f"onnx:{seg_path}:torchvision",
               "--features", "onnx:srm", "--features", f"onnx:{srm_model_path()}", "--calibration", "none"])
    assert rc == 0
    rep = json.loads((tmp_path / "o" / "a.json").read_text())
    assert rep["params"]["segmentation"]["model"] == "tv.onnx"
    assert rep["params"]["segmentation"]["layout"] == "torchvision"
    assert set(rep["params"]["feature_providers"]) == {"onnx_srm", "onnx_srm_2"}
    assert len(rep["objects"]) == 2
    rc = main(["localize", str(img), "--out", str(tmp_path / "g"), "--segmenter", "grid", "--calibration", "none"])
    assert rc == 0 and json.loads((tmp_path / "g" / "a.json").read_text())["params"]["segmenter"] == "grid"
