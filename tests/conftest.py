from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CASIA = SHARED / "data" / "casia1"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def noisy_rgb() -> np.ndarray:
    """A small textured RGB uint8 image with Gaussian noise sigma 4."""
    from noisestat.synth import clean_texture

    img = clean_texture((128, 160, 3), seed=7)
    noise = np.random.default_rng(7).normal(0, 4.0, img.shape)
    return np.clip(np.round(img + noise), 0, 255).astype(np.uint8)


def casia_available() -> bool:
    return (CASIA / "images").is_dir() and (CASIA / "masks").is_dir()


needs_casia = pytest.mark.skipif(not casia_available(), reason="../shared/data/casia1 is not present")
