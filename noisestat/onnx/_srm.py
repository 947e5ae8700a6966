"""The SRM high-pass residual filter bank (Fridrich & Kodovsky 2012) as kernels, a reference and an ONNX graph.

The 30 linear residuals of the spatial rich model, each as a 5 x 5 kernel
(``srm_kernels``), a numpy/scipy reference (``srm_reference``) and the ONNX
graph (``build_srm_model``) that ``benchmarks/make_srm_onnx.py`` writes to
``noisestat/onnx/srm.onnx``. ``onnx`` is imported only by ``build_srm_model``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SRM_NAMES", "srm_kernels", "srm_reference", "build_srm_model", "srm_model_path", "SRM_OPSET",
           "SRM_IR_VERSION"]

#: opset and IR version of the shipped graph (loadable by onnxruntime >= 1.16)
SRM_OPSET = 17
SRM_IR_VERSION = 8

# the 8 unit directions (row step, col step), clockwise from east
_DIRS8 = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
_DIRS4 = ((0, 1), (1, 1), (1, 0), (1, -1))  # horizontal, diagonal, vertical, anti-diagonal

_SQUARE3 = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], np.float64)
_SQUARE5 = np.array([[-1, 2, -2, 2, -1],
                     [2, -6, 8, -6, 2],
                     [-2, 8, -12, 8, -2],
                     [2, -6, 8, -6, 2],
                     [-1, 2, -2, 2, -1]], np.float64)


def _line(dr: int, dc: int, taps: dict[int, float]) -> np.ndarray:
    k = np.zeros((5, 5))
    for t, v in taps.items():
        k[2 + t * dr, 2 + t * dc] += v
    return k


def _edge(square: np.ndarray, rot: int) -> np.ndarray:
    """The upper half (centre row included) of ``square``, rotated by ``rot`` quarter turns, in 5 x 5."""
    n = square.shape[0]
    half = square.copy()
    half[n // 2 + 1:] = 0.0
    k = np.zeros((5, 5))
    o = (5 - n) // 2
    k[o:o + n, o:o + n] = np.rot90(half, rot)
    return k


def _bank() -> tuple[tuple[str, np.ndarray], ...]:
    out: list[tuple[str, np.ndarray]] = []
    for i, (dr, dc) in enumerate(_DIRS8):
        out.append((f"first_{i}", _line(dr, dc, {0: -1.0, 1: 1.0})))
    for i, (dr, dc) in enumerate(_DIRS4):
        out.append((f"second_{i}", _line(dr, dc, {-1: 1.0, 0: -2.0, 1: 1.0})))
    for i, (dr, dc) in enumerate(_DIRS8):
        out.append((f"third_{i}", _line(dr, dc, {-1: 1.0, 0: -3.0, 1: 3.0, 2: -1.0})))
    k3 = np.zeros((5, 5))
    k3[1:4, 1:4] = _SQUARE3
    out.append(("square3x3", k3))
    out += [(f"edge3x3_{r}", _edge(_SQUARE3, r)) for r in range(4)]
    out.append(("square5x5", _SQUARE5.copy()))
    out += [(f"edge5x5_{r}", _edge(_SQUARE5, r)) for r in range(4)]
    return tuple(out)


_BANK = _bank()
#: Names of the 30 residuals, in channel order of the graph's output.
SRM_NAMES = tuple(n for n, _ in _BANK)


def srm_kernels() -> np.ndarray:
    """The 30 SRM residual kernels, shape (30, 5, 5), float64 (a copy).

    Returns
    -------
    ndarray, shape (30, 5, 5)
        Channel ``k`` (name :data:`SRM_NAMES[k]`) gives the residual
        ``R(i, j) = sum_{a,b} K_k(a, b) X(i + a - 2, j + b - 2)`` (a
        correlation, as ONNX ``Conv``): 8 first-order residuals
        ``X(p + d) - X(p)`` (8 directions ``d``), 4 second-order
        ``X(p - d) - 2 X(p) + X(p + d)`` (horizontal, diagonal, vertical,
        anti-diagonal), 8 third-order ``X(p - d) - 3 X(p) + 3 X(p + d) -
        X(p + 2d)``, the 3 x 3 SQUARE (``[-1 2 -1; 2 -4 2; -1 2 -1]``) and its
        4 EDGE halves, the 5 x 5 SQUARE (the KV kernel with centre -12) and its
        4 EDGE halves; coefficients as in the rich model's residual
        definitions (every kernel sums to 0: a constant image gives 0).

    Notes
    -----
    Only the linear residuals are included (the rich model's MIN / MAX
    residuals, quantisation, truncation and co-occurrences are not: they are
    not convolutions).

    References
    ----------
    .. [1] J. Fridrich and J. Kodovsky, "Rich models for steganalysis of
       digital images", IEEE Trans. Inf. Forensics Security 7(3):868-882,
       2012. DOI 10.1109/TIFS.2012.2190402

    Examples
    --------
    >>> from noisestat.onnx import srm_kernels
    >>> k = srm_kernels()
    >>> k.shape, float(np.abs(k.sum(axis=(1, 2))).max())
    ((30, 5, 5), 0.0)
    """
    return np.stack([k for _, k in _BANK]).copy()


def srm_reference(gray: Any) -> np.ndarray:
    """The SRM residuals of a 2-D image by ``scipy.ndimage.correlate`` (zero padding), (H, W, 30) float64.

    The independent reference of ``srm.onnx``: same kernels (:func:`srm_kernels`),
    zero padding outside the image as the graph's ``Conv`` (``pads`` 2).

    Examples
    --------
    >>> from noisestat.onnx import srm_reference
    >>> r = srm_reference(np.ones((8, 8)))
    >>> r.shape, float(np.abs(r[2:-2, 2:-2]).max())
    ((8, 8, 30), 0.0)
    """
    from scipy import ndimage as ndi

    x = np.asarray(gray, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"gray must be a 2-D array, got shape {x.shape}")
    return np.stack([ndi.correlate(x, k, mode="constant", cval=0.0) for k in srm_kernels()], axis=2)


def build_srm_model() -> Any:
    """The ONNX model of the SRM bank: input ``image`` float32 [1, 1, H, W], output ``residuals`` [1, 30, H, W].

    One ``Conv`` (30 filters 5 x 5, pads 2, no bias); needs the ``onnx``
    package. ``benchmarks/make_srm_onnx.py`` saves it as the packaged
    ``srm.onnx``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = srm_kernels().astype(np.float32)[:, None]
    weight = numpy_helper.from_array(w, name="srm_kernels")
    node = helper.make_node("Conv", ["image", "srm_kernels"], ["residuals"], kernel_shape=[5, 5],
                            pads=[2, 2, 2, 2], name="srm")
    graph = helper.make_graph(
        [node], "srm_residuals",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("residuals", TensorProto.FLOAT, [1, len(_BANK), "H", "W"])],
        initializer=[weight])
    model = helper.make_model(graph, producer_name="noisestat benchmarks/make_srm_onnx.py",
                              opset_imports=[helper.make_opsetid("", SRM_OPSET)])
    model.ir_version = SRM_IR_VERSION
    model.doc_string = ("SRM linear high-pass residuals (Fridrich & Kodovsky 2012, DOI 10.1109/TIFS.2012.2190402); "
                        "input gray image in [0, 1]; channels: " + ",".join(SRM_NAMES))
    onnx.checker.check_model(model)
    return model


def srm_model_path() -> Path:
    """Path of the packaged ``srm.onnx``.

    Examples
    --------
    >>> from noisestat.onnx import srm_model_path
    >>> srm_model_path().name
    'srm.onnx'
    """
    return Path(str(resources.files("noisestat.onnx").joinpath("srm.onnx")))
