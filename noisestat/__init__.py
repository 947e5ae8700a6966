"""noisestat: classical statistical image-splicing forensics.

Public entry points::

    noisestat.load_image(path_or_array)      -> LoadedImage
    noisestat.methods()                      -> list of method names
    noisestat.localize(image, method=...)    -> Localization
    noisestat.estimate_noise_pca(image, ...) -> NoiseEstimate  (and the other estimators)

Submodules are imported lazily: ``import noisestat`` compiles nothing and has
no side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .types import (
    Heatmap,
    ImageInfo,
    LoadedImage,
    Localization,
    NoiseEstimate,
    ObjectDetail,
    Segmentation,
)

if TYPE_CHECKING:  # static view of the lazy names below, for IDEs and type checkers
    from .decisions import localize as localize
    from .io import load_image as load_image
    from .io import load_mask as load_mask
    from .noise.mad import estimate_noise_mad as estimate_noise_mad
    from .noise.pca import estimate_noise_pca as estimate_noise_pca
    from .noise.residual import estimate_noise_residual as estimate_noise_residual
    from .noise.weak_texture import estimate_noise_weak_texture as estimate_noise_weak_texture
    from .registry import get_method as get_method
    from .registry import methods as methods
    from .registry import warmup as warmup

# public name -> module that defines it (imported on first access)
_LAZY = {
    "load_image": "noisestat.io",
    "load_mask": "noisestat.io",
    "methods": "noisestat.registry",
    "localize": "noisestat.decisions",
    "get_method": "noisestat.registry",
    "warmup": "noisestat.registry",
    "estimate_noise_pca": "noisestat.noise.pca",
    "estimate_noise_weak_texture": "noisestat.noise.weak_texture",
    "estimate_noise_residual": "noisestat.noise.residual",
    "estimate_noise_mad": "noisestat.noise.mad",
}

__all__ = [
    "__version__",
    "Heatmap",
    "ImageInfo",
    "LoadedImage",
    "Localization",
    "NoiseEstimate",
    "ObjectDetail",
    "Segmentation",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'noisestat' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
