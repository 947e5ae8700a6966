"""``OnnxSegmenter``: Mask R-CNN instance segmentation through ONNX Runtime (torchvision and model-zoo layouts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_float
from ..io import as_image
from ..registry import register_segmenter
from ..types import Instances, LoadedImage
from ._runtime import check_model_path, describe_signature, import_onnxruntime, open_session, select_providers

__all__ = ["OnnxSegmenter", "LAYOUTS", "ZOO_MEAN_BGR", "ZOO_SHORT_SIDE", "ZOO_PAD", "ZOO_MASK_SIZE",
           "split_model_spec"]

LAYOUTS = ("auto", "torchvision", "maskrcnn10")
#: model-zoo MaskRCNN-10 preprocessing: BGR on 0-255 minus this mean, shorter side resized to 800,
#: both sides zero-padded to a multiple of 32; its masks are 28 x 28 per box
ZOO_MEAN_BGR = (102.9801, 115.9465, 122.7717)
ZOO_SHORT_SIDE = 800
ZOO_PAD = 32
ZOO_MASK_SIZE = 28
#: mask probability above which a pixel belongs to the instance (both layouts)
MASK_THRESHOLD = 0.5

_EXPECTED = {
    "torchvision": ("input float32 [3, H, W] (RGB in [0, 1]); outputs boxes [N, 4] (x0, y0, x1, y1), "
                    "labels [N] int64, scores [N], masks [N, 1, H, W]"),
    "maskrcnn10": ("input float32 [3, H, W] (BGR 0-255 minus mean, padded to 32); 4 outputs: boxes [N, 4], "
                   "labels [N] int64, scores [N], masks [N, 1, 28, 28]"),
}
_ROLES = ("boxes", "labels", "scores", "masks")


def split_model_spec(spec: str) -> tuple[str, str]:
    """``"PATH[:layout]"`` -> ``(PATH, layout)`` (layout "auto" when no known layout ends the string)."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail in LAYOUTS and head:
        return head, tail
    return spec, "auto"


def _is_int(t: str) -> bool:
    return "int" in t


def _roles(outs: Sequence[Any]) -> dict[str, int] | None:
    """Output index of boxes, labels, scores, masks: by name, else by rank / type, else by zoo order."""
    names = [o.name for o in outs]
    if set(_ROLES) <= set(names):
        return {r: names.index(r) for r in _ROLES}
    if len(outs) != 4:
        return None
    ranks = [len(o.shape or []) for o in outs]
    got: dict[str, int] = {}
    for i, (o, rk) in enumerate(zip(outs, ranks)):
        if rk == 2:
            got.setdefault("boxes", i)
        elif rk == 4:
            got.setdefault("masks", i)
        elif rk == 1 and _is_int(o.type):
            got.setdefault("labels", i)
        elif rk == 1:
            got.setdefault("scores", i)
    if set(got) == set(_ROLES):
        return got
    if ranks == [2, 1, 1, 4]:  # zoo order: boxes, labels, scores, masks
        return dict(zip(_ROLES, range(4)))
    return None


def _mask_dims(out: Any) -> tuple[Any, Any]:
    shape = list(out.shape or [])
    return (shape[2], shape[3]) if len(shape) == 4 else (None, None)


def detect_layout(session: Any, layout: str, path: Path) -> tuple[str, dict[str, int]]:
    """The layout of ``session`` (checked against ``layout``) and its output roles; ValueError on mismatch."""
    ins, outs = session.get_inputs(), session.get_outputs()
    roles = _roles(outs)
    ok_in = len(ins) == 1 and len(ins[0].shape or []) == 3 and ins[0].type == "tensor(float)"
    found = None
    if ok_in and roles is not None:
        mh, mw = _mask_dims(outs[roles["masks"]])
        small = mh == ZOO_MASK_SIZE and mw == ZOO_MASK_SIZE
        tv_names = set(_ROLES) <= {o.name for o in outs}
        if small:
            found = "maskrcnn10"
        elif tv_names:
            found = "torchvision"
    if found is not None and layout in ("auto", found):
        return found, roles or {}
    expected = (_EXPECTED[layout] if layout != "auto"
                else "; or ".join(f"{k}: {v}" for k, v in _EXPECTED.items()))
    what = f"layout {layout!r}" if layout != "auto" else "a known Mask R-CNN layout"
    raise ValueError(f"{path.name}: not a Mask R-CNN model of {what}: expected {expected}; found "
                     f"{describe_signature(session)}" + (f" (looks like {found!r})" if found else ""))


def _zoo_input(img: LoadedImage) -> tuple[np.ndarray, float]:
    """Model-zoo input [3, H', W'] (BGR 0-255 minus mean, shorter side 800, padded to 32) and the ratio."""
    import cv2

    h, w = img.shape
    ratio = ZOO_SHORT_SIDE / min(h, w)
    nh, nw = int(ratio * h), int(ratio * w)
    px = img.pixels.astype(np.float32) * np.float32(255.0 / max(float(img.info.white_level), 1e-12))
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    px = cv2.resize(np.ascontiguousarray(px[:, :, :3]), (nw, nh), interpolation=cv2.INTER_LINEAR)
    bgr = px[:, :, ::-1] - np.asarray(ZOO_MEAN_BGR, np.float32)
    ph, pw = math.ceil(nh / ZOO_PAD) * ZOO_PAD, math.ceil(nw / ZOO_PAD) * ZOO_PAD
    out = np.zeros((3, ph, pw), np.float32)
    out[:, :nh, :nw] = np.moveaxis(bgr, 2, 0)
    return out, ratio


def _int_box(box: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` in continuous pixel coordinates -> ``(row0, col0, row1, col1)`` end-exclusive."""
    h, w = shape
    x0, y0, x1, y1 = (float(v) for v in box)
    r0 = min(max(int(math.floor(y0)), 0), h)
    c0 = min(max(int(math.floor(x0)), 0), w)
    r1 = min(max(int(math.ceil(y1)), r0), h)
    c1 = min(max(int(math.ceil(x1)), c0), w)
    return r0, c0, r1, c1


def _paste(mask28: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A low-resolution box mask resized (bilinear) to its box and thresholded at :data:`MASK_THRESHOLD`."""
    import cv2

    r0, c0, r1, c1 = box
    out = np.zeros(shape, bool)
    if r1 > r0 and c1 > c0:
        m = cv2.resize(np.ascontiguousarray(mask28, dtype=np.float32), (c1 - c0, r1 - r0),
                       interpolation=cv2.INTER_LINEAR)
        out[r0:r1, c0:c1] = m > MASK_THRESHOLD
    return out


class OnnxSegmenter:
    """Mask R-CNN instance segmentation with a user-supplied ``.onnx`` file (nothing is downloaded).

    Parameters
    ----------
    path : str or path-like
        The model file.
    layout : {"auto", "torchvision", "maskrcnn10"}, default "auto"
        ``"torchvision"``: the torchvision export, input float32 ``[3, H, W]``
        RGB in [0, 1]; outputs ``boxes`` [N, 4] (x0, y0, x1, y1 in pixels),
        ``labels`` [N], ``scores`` [N], ``masks`` [N, 1, H, W] (probabilities).
        ``"maskrcnn10"``: the ONNX model zoo's MaskRCNN-10, input BGR on 0-255
        minus the mean :data:`ZOO_MEAN_BGR`, shorter side resized to 800
        (bilinear), zero-padded to a multiple of 32; boxes in the resized
        image's pixels; masks [N, 1, 28, 28] per box, pasted into the box
        (bilinear resize). ``"auto"`` tells them apart by the mask output's
        shape (a static 28 x 28 is the zoo's) and the output names (``boxes``,
        ``labels``, ``scores``, ``masks``: torchvision).
    score_threshold : float, default 0.5
        Instances scoring below it are dropped.
    providers : list of str, optional
        ONNX Runtime execution providers; default CUDA when available, else CPU.

    Raises
    ------
    ImportError
        onnxruntime is not installed (``pip install noisestat[onnx]``).
    FileNotFoundError
        No such file.
    ValueError
        The model matches neither layout (or not the requested one): the
        message names what was expected and what was found.

    Notes
    -----
    Boxes ``(x0, y0, x1, y1)`` in continuous pixel coordinates become
    ``(floor(y0), floor(x0), ceil(y1), ceil(x1))`` end-exclusive, clipped to
    the image; a mask pixel belongs to the instance when its probability is
    above 0.5. Instances with an empty mask are dropped.
    ``Instances.params`` records ``model`` (file name), ``layout``,
    ``provider``, ``score_threshold``, ``n_detections`` (before the threshold).

    References
    ----------
    .. [1] K. He, G. Gkioxari, P. Dollar and R. Girshick, "Mask R-CNN",
       ICCV 2017. DOI 10.1109/ICCV.2017.322

    Examples
    --------
    >>> from noisestat.onnx import OnnxSegmenter, srm_model_path
    >>> try:
    ...     OnnxSegmenter(srm_model_path())  # the SRM filter bank is no Mask R-CNN
    ... except (ImportError, ValueError) as exc:  # ImportError: onnxruntime missing
    ...     print("pip install noisestat[onnx]" in str(exc) or "not a Mask R-CNN model" in str(exc))
    True
    """

    def __init__(self, path: Any, *, layout: str = "auto", score_threshold: float = 0.5,
                 providers: Sequence[str] | None = None) -> None:
        import_onnxruntime()
        self.path: Path = check_model_path(path)
        layout = check_choice(layout, "layout", LAYOUTS)
        self.score_threshold = check_float(score_threshold, "score_threshold", minimum=0.0, maximum=1.0)
        self.providers = select_providers(providers)
        self.session = open_session(self.path, self.providers)
        self.layout, self._roles = detect_layout(self.session, layout, self.path)
        self._outputs = [o.name for o in self.session.get_outputs()]

    @property
    def provider(self) -> str:
        """The execution provider in use."""
        return str(self.session.get_providers()[0])

    @property
    def spec(self) -> str:
        """``"onnx:PATH:layout"``, the ``segmenter`` value of the object localizer that selects this model."""
        return f"onnx:{self.path}:{self.layout}"

    def _mismatch(self, what: str) -> ValueError:
        return ValueError(f"{self.path.name}: {what}; expected {_EXPECTED[self.layout]}")

    def _outputs_of(self, x: np.ndarray) -> dict[str, np.ndarray]:
        res = self.session.run(None, {self.session.get_inputs()[0].name: x})
        out = {r: np.asarray(res[i]) for r, i in self._roles.items()}
        n = out["boxes"].shape[0] if out["boxes"].ndim == 2 else -1
        if (out["boxes"].shape != (n, 4) or out["scores"].reshape(-1).shape != (n,)
                or out["labels"].reshape(-1).shape != (n,) or out["masks"].ndim != 4
                or out["masks"].shape[:2] != (n, 1)):
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in out.items())
            raise self._mismatch(f"the model returned {shapes}")
        return out

    def __call__(self, image: Any) -> Instances:
        """Instances of ``image`` scoring at least ``score_threshold``, sorted by decreasing score."""
        img = as_image(image)
        h, w = img.shape
        if self.layout == "torchvision":
            px = img.pixels.astype(np.float32) * np.float32(1.0 / max(float(img.info.white_level), 1e-12))
            if px.shape[2] == 1:
                px = np.repeat(px, 3, axis=2)
            out = self._outputs_of(np.ascontiguousarray(np.moveaxis(px[:, :, :3], 2, 0)))
            if out["masks"].shape[2:] != (h, w):
                raise self._mismatch(f"masks of shape {list(out['masks'].shape)} for a {h}x{w} image")
            boxes_xy = out["boxes"].astype(np.float64)
        else:
            x, ratio = _zoo_input(img)
            out = self._outputs_of(x)
            if out["masks"].shape[2:] != (ZOO_MASK_SIZE, ZOO_MASK_SIZE):
                raise self._mismatch(f"masks of shape {list(out['masks'].shape)}")
            boxes_xy = out["boxes"].astype(np.float64) / ratio
        scores = out["scores"].reshape(-1).astype(np.float64)
        classes = out["labels"].reshape(-1).astype(np.int64)
        order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= self.score_threshold]
        masks, boxes, keep = [], [], []
        for i in order:
            box = _int_box(boxes_xy[i], (h, w))
            if self.layout == "torchvision":
                m = np.asarray(out["masks"][i, 0] > MASK_THRESHOLD)
            else:
                m = _paste(out["masks"][i, 0], box, (h, w))
            if m.any():
                masks.append(m)
                boxes.append(box)
                keep.append(i)
        params = {"model": self.path.name, "path": str(self.path), "layout": self.layout, "provider": self.provider,
                  "score_threshold": self.score_threshold, "n_detections": int(scores.size)}
        return Instances(masks=np.array(masks, bool).reshape(len(keep), h, w),
                         boxes=np.array(boxes, np.int64).reshape(-1, 4), scores=scores[keep],
                         classes=classes[keep], method="onnx", params=params)

    def __repr__(self) -> str:
        return (f"OnnxSegmenter({str(self.path)!r}, layout={self.layout!r}, "
                f"score_threshold={self.score_threshold}, providers={self.providers!r})")


@register_segmenter("onnx")
def onnx_instances(image: LoadedImage, *, model: str = "", layout: str = "auto",
                   score_threshold: float = 0.5) -> Instances:
    """Mask R-CNN instances from an ONNX model (:class:`OnnxSegmenter`); ``model="PATH[:layout]"``.

    A layout at the end of ``model`` (``"m.onnx:maskrcnn10"``) overrides ``layout``.
    """
    if not isinstance(model, str) or not model:
        raise ValueError("model is empty; segment(image, method='onnx', model='PATH.onnx[:layout]') "
                         "or the object localizer's segmenter='onnx:PATH[:layout]'")
    path, lay = split_model_spec(model)
    seg = OnnxSegmenter(path, layout=lay if lay != "auto" else layout, score_threshold=score_threshold)
    return seg(image)
