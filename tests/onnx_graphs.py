"""Tiny ONNX graphs with the signatures of the hooks, built with onnx.helper (no weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _save(model, path: Path) -> Path:
    import onnx

    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def constant_maskrcnn(path: Path, *, boxes, scores, masks, labels=None, names=("boxes", "labels", "scores", "masks"),
                      mask_dims=("N", 1, "H", "W"), score_from_shape: bool = False) -> Path:
    """A Mask R-CNN-shaped graph returning constant outputs.

    ``score_from_shape``: scores = [padded H, padded W] of the input / 2000 (two
    instances), to check the zoo preprocessing.
    """
    from onnx import TensorProto, helper, numpy_helper

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = boxes.shape[0]
    labels = np.arange(1, n + 1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
    masks = np.asarray(masks, np.float32)
    inits = [numpy_helper.from_array(boxes, "c_boxes"), numpy_helper.from_array(labels, "c_labels"),
             numpy_helper.from_array(masks, "c_masks")]
    nodes = [helper.make_node("Identity", ["c_boxes"], [names[0]]),
             helper.make_node("Identity", ["c_labels"], [names[1]]),
             helper.make_node("Identity", ["c_masks"], [names[3]])]
    if score_from_shape:
        inits += [numpy_helper.from_array(np.array([1], np.int64), "i1"),
                  numpy_helper.from_array(np.array([3], np.int64), "i3"),
                  numpy_helper.from_array(np.array(2000.0, np.float32), "k")]
        nodes += [helper.make_node("Shape", ["image"], ["shp"]),
                  helper.make_node("Slice", ["shp", "i1", "i3"], ["hw"]),
                  helper.make_node("Cast", ["hw"], ["hwf"], to=TensorProto.FLOAT),
                  helper.make_node("Div", ["hwf", "k"], [names[2]])]
    else:
        inits.append(numpy_helper.from_array(np.asarray(scores, np.float32), "c_scores"))
        nodes.append(helper.make_node("Identity", ["c_scores"], [names[2]]))
    outs = [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info(names[1], TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info(names[2], TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info(names[3], TensorProto.FLOAT, list(mask_dims))]
    graph = helper.make_graph(nodes, "maskrcnn_test",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "H", "W"])],
                              outs, initializer=inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def conv_map(path: Path, kernels: np.ndarray, *, channels_in: int = 1) -> Path:
    """An image-to-map graph: one Conv (kernels (K, C, k, k), same padding) then Tanh, then another Conv."""
    from onnx import TensorProto, helper, numpy_helper

    kernels = np.asarray(kernels, np.float32)
    kk = kernels.shape[-1]
    p = kk // 2
    k2 = np.ones((1, kernels.shape[0], 3, 3), np.float32) / 9.0
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"], pads=[p, p, p, p]),
             helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Conv", ["t", "w2"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "map_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels_in, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "H", "W"])],
        initializer=[numpy_helper.from_array(kernels, "w1"), numpy_helper.from_array(k2, "w2")])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def identity_map(path: Path, *, channels: int = 1) -> Path:
    """An image-to-map graph whose output is its input (the map = the scaled image)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity_map",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, "H", "W"])])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
