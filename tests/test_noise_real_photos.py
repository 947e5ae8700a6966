"""Known truth on real photos (issue 3): noise added to a photo adds in quadrature.

A photo has its own noise sigma0 (measured by the same estimator on the photo
itself); after adding Gaussian noise of sigma, sqrt(est**2 - sigma0**2) must
recover sigma within the issue's tolerances: Chen PCA 3 % (whole image) / 5 %
(left half as mask), Liu weak-texture 6 % / 8 %. The photos ship inside the
scikit-image wheel. Float input on 0-255 with overshoot beyond it is accepted
(pixels beyond the range count as clipped and their patches are not used).
"""

import math

import numpy as np
import pytest
from skimage import data

import noisestat

TOL = {"estimate_noise_pca": (0.03, 0.05), "estimate_noise_weak_texture": (0.06, 0.08)}


@pytest.mark.parametrize("photo", ["astronaut", "coffee", "chelsea"])
@pytest.mark.parametrize("estimator", sorted(TOL))
def test_added_noise_adds_in_quadrature(photo, estimator):
    est = getattr(noisestat, estimator)
    img = getattr(data, photo)().astype(np.float64)
    half = np.zeros(img.shape[:2], bool)
    half[:, : img.shape[1] // 2] = True
    s0, s0_half = est(img).sigma, est(img, mask=half).sigma
    assert 0 < s0 < 3 and 0 < s0_half < 3  # these photos are clean but not noise-free
    tol_whole, tol_half = TOL[estimator]
    for sigma, seed in [(5.0, 0), (10.0, 1)]:
        noisy = img + np.random.default_rng(seed).normal(0.0, sigma, img.shape)
        whole, part = est(noisy), est(noisy, mask=half)
        assert whole.reliable and part.reliable
        assert abs(math.sqrt(whole.sigma**2 - s0**2) / sigma - 1) < tol_whole
        assert abs(math.sqrt(part.sigma**2 - s0_half**2) / sigma - 1) < tol_half
