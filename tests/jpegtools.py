"""JPEG helpers shared by the tests: encode with Pillow in memory, decode, write to a folder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg_bytes(a: np.ndarray, quality: int, **save_options) -> bytes:
    """``a`` (uint8 gray or RGB) as JPEG bytes at IJG ``quality`` (Pillow; options such as ``subsampling``)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="JPEG", quality=int(quality), **save_options)
    return buf.getvalue()


def decode(b: bytes) -> np.ndarray:
    """Decoded pixels of JPEG bytes: (H, W) for gray, (H, W, 3) RGB otherwise."""
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert("RGB" if im.mode != "L" else "L"))


def write(folder: Path, name: str, b: bytes) -> Path:
    """Write ``b`` to ``folder / name`` and return the path."""
    p = Path(folder) / name
    p.write_bytes(b)
    return p
