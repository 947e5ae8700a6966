"""Felzenszwalb-Huttenlocher graph segmentation on a downscaled copy, then region merging."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_float
from ..registry import register_segmenter
from ..types import LoadedImage
from ._common import MERGE_DEFAULTS, check_merge_params, oversegment_and_merge

__all__ = ["felzenszwalb_labels"]


@register_segmenter("felzenszwalb")
def felzenszwalb_labels(
    image: LoadedImage,
    *,
    scale: float = 100.0,
    sigma: float = 0.8,
    min_size: float = 0.001,
    min_objects: int = MERGE_DEFAULTS["min_objects"],
    max_objects: int = MERGE_DEFAULTS["max_objects"],
    threshold: float = MERGE_DEFAULTS["threshold"],
    min_area: float = MERGE_DEFAULTS["min_area"],
    texture_weight: float = MERGE_DEFAULTS["texture_weight"],
    noise_weight: float = MERGE_DEFAULTS["noise_weight"],
    max_pixels: int = MERGE_DEFAULTS["max_pixels"],
) -> tuple[np.ndarray, dict[str, Any]]:
    """Felzenszwalb-Huttenlocher segments merged into a modest number of objects.

    Parameters
    ----------
    image : LoadedImage
    scale : float, default 100
        Observation scale ``k`` of the graph method (larger = larger segments),
        on CIELAB values.
    sigma : float, default 0.8
        Gaussian pre-smoothing, working pixels.
    min_size : float, default 0.001
        Smallest segment of the graph method, as a fraction of the working
        image (at least 4 pixels).
    min_objects, max_objects, threshold, min_area, texture_weight, noise_weight, max_pixels
        Region merging, see :func:`noisestat.segment.segment`.

    Returns
    -------
    labels : ndarray, shape (H, W), int32
    info : dict

    Notes
    -----
    Felzenszwalb & Huttenlocher, "Efficient graph-based image segmentation",
    IJCV 59(2), 2004, doi:10.1023/B:VISI.0000022288.57776.ec (scikit-image
    implementation, run on the CIELAB working copy).
    """
    scale = check_float(scale, "scale", minimum=0.0, exclusive_min=True)
    sigma = check_float(sigma, "sigma", minimum=0.0)
    min_size = check_float(min_size, "min_size", minimum=0.0, maximum=1.0)
    mp = check_merge_params(
        min_objects=min_objects, max_objects=max_objects, threshold=threshold,
        min_area=min_area, texture_weight=texture_weight, noise_weight=noise_weight,
        max_pixels=max_pixels,
    )
    def overseg(work: Any) -> np.ndarray:
        from skimage.segmentation import felzenszwalb

        h, w = work.shape
        return felzenszwalb(
            work.lab, scale=scale, sigma=sigma, min_size=max(4, int(min_size * h * w)), channel_axis=-1
        )

    return oversegment_and_merge(image, overseg, mp)
