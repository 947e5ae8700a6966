"""``OnnxFeatureProvider``: an image-to-map network run tile by tile with seamless blending."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_int
from ..io import as_image
from ..registry import register_feature_source
from ._runtime import check_model_path, describe_signature, import_onnxruntime, open_session, select_providers

__all__ = ["OnnxFeatureProvider", "blend_weights", "tile_starts"]

_EXPECTED = "one input float32 [1, C, H, W] with C = 1 (luma) or 3 (RGB) in [0, 1]; one output [1, K, H, W]"


def tile_starts(n: int, tile: int, step: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` every ``step`` covering ``0..n`` (the last ends at ``n``)."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, step))
    return starts + [n - tile]


def blend_weights(length: int, overlap: int, *, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of a tile: 1 inside, ramps over ``overlap`` pixels at inner edges.

    At an edge that is not the image border, the weight is 0 on the first
    ``m = overlap // 4`` pixels, then rises linearly to 1 over the next
    ``overlap - 2m`` pixels: pixels closer than ``m`` to a cut never count.
    """
    w = np.ones(length, np.float64)
    if overlap <= 0:
        return w
    m = overlap // 4
    width = max(overlap - 2 * m, 1)
    d = np.arange(length, dtype=np.float64)
    ramp = np.clip((d - m + 0.5) / width, 0.0, 1.0)
    if not at_start:
        w = np.minimum(w, ramp)
    if not at_end:
        w = np.minimum(w, ramp[::-1])
    return w


class OnnxFeatureProvider:
    """Run an image-to-map ONNX network (e.g. a DnCNN residual, a Noiseprint-style extractor) on an image.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file: one input float32 ``[1, C, H, W]`` (``C`` = 1: the
        luma, ``C`` = 3: RGB; values ``pixels / white_level`` in [0, 1]; H and
        W dynamic) and one output ``[1, K, H, W]`` of the input's size.
    tile : int, default 512
        Tile side in pixels (images up to this size run in one piece).
    overlap : int, default 32
        Overlap of adjacent tiles; ``tile >= 2 * overlap``.
    providers : list of str, optional
        ONNX Runtime execution providers; default CUDA when available, else CPU.

    Attributes
    ----------
    name : str
        Short identifier (the file's stem), used in feature names.
    info : dict
        ``model`` (file name), ``path``, ``provider`` (the one in use),
        ``providers``, ``tile``, ``overlap``, ``channels_in``.

    Raises
    ------
    ImportError
        onnxruntime is not installed (``pip install noisestat[onnx]``).
    FileNotFoundError
        No such file.
    ValueError
        The model's signature is not the one above (the message shows what was
        found), ``tile`` / ``overlap`` out of range, an unavailable provider.

    Notes
    -----
    Tiles start every ``tile - overlap`` pixels (the last one ends at the
    image border); each tile's output is weighted by the separable product of
    :func:`blend_weights` (0 within ``overlap // 4`` pixels of a cut, then a
    linear ramp to 1) and the weighted sum is divided by the summed weights.
    For a network whose receptive field reaches at most ``overlap // 4``
    pixels (the SRM bank: 2) the result equals one whole-image run up to
    float32 rounding; a wider network (a deep DnCNN) gets a continuous,
    seam-free blend of tiles that each saw at least ``overlap // 4`` pixels
    of context.

    Examples
    --------
    >>> from noisestat.onnx import OnnxFeatureProvider, srm_model_path
    >>> try:
    ...     srm = OnnxFeatureProvider(srm_model_path(), tile=64, overlap=16)
    ... except ImportError:  # onnxruntime missing: pip install noisestat[onnx]
    ...     srm = None
    >>> srm is None or srm(np.zeros((100, 80))).shape == (100, 80, 30)
    True
    """

    def __init__(self, path: Any, *, tile: int = 512, overlap: int = 32,
                 providers: Sequence[str] | None = None) -> None:
        import_onnxruntime()
        self.path: Path = check_model_path(path)
        self.tile = check_int(tile, "tile", minimum=16)
        self.overlap = check_int(overlap, "overlap", minimum=0)
        if self.tile < 2 * self.overlap:
            raise ValueError(f"tile={self.tile} is smaller than 2 * overlap={2 * self.overlap}; "
                             f"use tile >= 2 * overlap")
        self.providers = select_providers(providers)
        self.session = open_session(self.path, self.providers)
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(ins[0].shape) if len(ins) == 1 else []
        if (len(ins) != 1 or len(outs) != 1 or len(shape) != 4 or ins[0].type != "tensor(float)"
                or shape[1] not in (1, 3) or len(outs[0].shape or []) != 4):
            raise ValueError(f"{self.path.name}: not an image-to-map model: expected {_EXPECTED}; found "
                             f"{describe_signature(self.session)}")
        self.channels_in = int(shape[1])
        self.input_name, self.output_name = ins[0].name, outs[0].name
        self.name = self.path.stem

    @property
    def provider(self) -> str:
        """The execution provider in use (first of the session's providers)."""
        return str(self.session.get_providers()[0])

    @property
    def info(self) -> dict[str, Any]:
        return {"model": self.path.name, "path": str(self.path), "provider": self.provider,
                "providers": list(self.session.get_providers()), "tile": self.tile, "overlap": self.overlap,
                "channels_in": self.channels_in}

    def _input(self, image: Any) -> np.ndarray:
        img = as_image(image)
        scale = np.float32(1.0 / max(float(img.info.white_level), 1e-12))
        if self.channels_in == 1:
            x = img.gray()[None]
        else:
            px = img.pixels
            x = np.repeat(px, 3, axis=2) if px.shape[2] == 1 else px[:, :, :3]
            x = np.moveaxis(x, 2, 0)
        return np.ascontiguousarray(x * scale, dtype=np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        y = self.session.run([self.output_name], {self.input_name: x[None]})[0]
        if y.ndim != 4 or y.shape[0] != 1 or y.shape[2:] != x.shape[1:]:
            raise ValueError(f"{self.path.name}: output of shape {list(y.shape)} for an input of shape "
                             f"{[1, *x.shape]}; expected {_EXPECTED}")
        return y[0]

    def __call__(self, image: Any) -> np.ndarray:
        """The feature map of ``image``: (H, W, K) float32.

        Parameters
        ----------
        image : array_like, path or LoadedImage

        Returns
        -------
        ndarray, shape (H, W, K), float32
        """
        x = self._input(image)
        _, h, w = x.shape
        step = self.tile - self.overlap
        rows, cols = tile_starts(h, self.tile, step), tile_starts(w, self.tile, step)
        if len(rows) == 1 and len(cols) == 1:
            return np.ascontiguousarray(np.moveaxis(self._run(x), 0, 2), dtype=np.float32)
        acc: np.ndarray | None = None
        wsum = np.zeros((h, w, 1), np.float32)
        for r0 in rows:
            r1 = min(r0 + self.tile, h)
            wr = blend_weights(r1 - r0, self.overlap, at_start=r0 == 0, at_end=r1 == h)
            for c0 in cols:
                c1 = min(c0 + self.tile, w)
                wc = blend_weights(c1 - c0, self.overlap, at_start=c0 == 0, at_end=c1 == w)
                y = np.moveaxis(self._run(np.ascontiguousarray(x[:, r0:r1, c0:c1])), 0, 2)
                if acc is None:
                    acc = np.zeros((h, w, y.shape[2]), np.float32)
                wt = (wr[:, None] * wc[None, :]).astype(np.float32)[:, :, None]
                acc[r0:r1, c0:c1] += y * wt
                wsum[r0:r1, c0:c1] += wt
        assert acc is not None
        acc /= wsum
        return acc

    def __repr__(self) -> str:
        return (f"OnnxFeatureProvider({str(self.path)!r}, tile={self.tile}, overlap={self.overlap}, "
                f"providers={self.providers!r})")


@register_feature_source("onnx")
def onnx_feature_source(path: str) -> OnnxFeatureProvider:
    """Feature-map spec ``"onnx:PATH"``: :class:`OnnxFeatureProvider` of PATH with the default tiling.

    ``"onnx:srm"`` is the packaged SRM residual bank (``srm.onnx``).
    """
    from ._srm import srm_model_path

    return OnnxFeatureProvider(srm_model_path() if path == "srm" else path)
