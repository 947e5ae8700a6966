"""Noise level by PCA of image patches (Chen, Zhu & Heng, ICCV 2015).

The noise-only directions of the patch covariance have eigenvalue sigma^2;
Chen et al. pick the largest set of smallest eigenvalues whose mean equals
their median and take that mean as sigma^2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import check_choice, check_int
from ..blocks.dct import JPEG_BLOCK
from ..blocks.patches import channel_center, single_thread_blas, unusable_integral
from ..io import as_image, as_region_mask
from ..types import NoiseEstimate

__all__ = ["estimate_noise_pca", "JPEG_GRIDS"]

#: accepted values of ``jpeg_grid``
JPEG_GRIDS = ("any", "aligned", "avoid")
#: joint sigma below this fraction of every per-channel sigma is reported in the note
_COLLAPSE_RATIO = 0.5
#: patches gathered per float32 BLAS product
_BLOCK_PATCHES = 4096
#: patch sizes tried, in order, when the requested one yields too few patches
_FALLBACK_SIZES = (5, 4)
#: default minimum number of patches per dimension d = r*r*C of the patch vector
MIN_PATCHES_PER_DIM = 10
#: the stride is reduced until at least this many patches per dimension are used
DENSE_PATCHES_PER_DIM = 80


def estimate_noise_pca(
    image: Any,
    *,
    patch_size: int = 8,
    stride: int = 3,
    mask: Any = None,
    jpeg_grid: str = "any",
    min_patches: int | None = None,
) -> NoiseEstimate:
    """Estimate the noise standard deviation by PCA of patches (Chen et al. 2015).

    Parameters
    ----------
    image : array_like of shape (H, W) or (H, W, C), path or LoadedImage
        Input image (see :func:`noisestat.load_image`); 8-bit data on 0-255,
        16-bit on 0-65535, float arrays on 0-255.
    patch_size : int, default 8
        Side ``r`` of the square patches. Colour channels are stacked, so a
        patch vector has ``d = r * r * C`` elements.
    mask : array_like of bool, shape (H, W), optional
        Region to measure: only patches lying entirely inside it are used.
    jpeg_grid : {"any", "aligned", "avoid"}, default "any"
        Which patch origins to use relative to the 8x8 JPEG block grid
        (anchored at pixel (0, 0)):

        * ``"any"``: every origin of the ``stride`` grid (the paper);
        * ``"aligned"``: origins on the block grid (rows and columns that are
          multiples of 8; ``stride`` is ignored). With ``patch_size <= 8`` each
          patch lies inside one JPEG block;
        * ``"avoid"``: origins of the ``stride`` grid whose patches straddle a
          block boundary both vertically and horizontally (no patch has its
          rows, or its columns, inside a single block row or column).

        The choice is applied whenever it is requested, whatever the input's
        format (decoded JPEG arrays keep their grid); it only has a JPEG
        meaning for JPEG-compressed data.
    stride : int, default 3
        Distance between patch origins; reduced automatically for small
        regions (see Notes). The last row and column of origins
        (``H - r`` and ``W - r``) are always included, as in the authors'
        MATLAB program.
    min_patches : int, optional
        Minimum number of usable patches below which a smaller patch size is
        tried; default ``10 * d`` (see Notes).

    Returns
    -------
    NoiseEstimate
        ``sigma``: noise standard deviation on the input scale, all channels
        jointly; ``sigma_per_channel``: the same rule applied to each
        channel's own ``r x r`` covariance (the diagonal block of the joint
        one, over the same patches); ``n_patches``; ``fallback`` (see Notes);
        ``params`` (including the accepted ``k`` and ``patch_size`` used).
        ``sigma`` is NaN (``reliable=False``) when no estimate is possible.

    Raises
    ------
    TypeError
        Wrong type of ``image``, ``mask`` or a parameter.
    ValueError
        NaN/inf pixels, wrong ``mask`` shape or invalid parameter values.

    Notes
    -----
    Let the usable patches be :math:`x_1..x_n \\in R^d`, their covariance
    :math:`\\Sigma = \\frac1n \\sum_i (x_i - \\mu)(x_i - \\mu)^T` with eigenvalues
    :math:`\\lambda_1 \\le \\dots \\le \\lambda_d`. For :math:`k = d, d-1, \\dots, 1`
    let :math:`\\tau_k = \\frac1k \\sum_{i \\le k} \\lambda_i`; the first (largest)
    :math:`k` with :math:`\\#\\{i \\le k: \\lambda_i > \\tau_k\\} = \\#\\{i \\le k:
    \\lambda_i < \\tau_k\\}` ("the mean equals the median") gives
    :math:`\\sigma = \\sqrt{\\tau_k}` (Chen et al. 2015, Sec. 3-4, Alg. 1). ``k = d``
    is tested as well. Any :math:`k \\le 2` satisfies the rule, so the loop
    always stops; when it only stops at :math:`k \\le 2` the spectrum has no
    identifiable noise-only tail and the estimate is flagged
    ``reliable=False``.

    Patches containing a clipped pixel (a value ``<= 0`` or ``>= white_level``
    in any channel, ``white_level`` from :class:`~noisestat.types.ImageInfo`)
    are dropped. Float arrays whose values overshoot 0-255 are accepted; the
    overshooting pixels count as clipped.

    The covariance is accumulated without building the patch matrix: blocks
    of 4096 patches (minus a per-channel centre, the rounded channel mean) are
    gathered into a float32 buffer by a Numba kernel, multiplied with a
    float32 BLAS product (BLAS limited to one thread during the loop, which
    is robust on busy machines) and summed in float64.

    Sample size. Even for pure noise the rule is biased low when the number
    of patches ``n`` is small compared with ``d``: the sample eigenvalues of
    the noise directions spread out asymmetrically (Marchenko-Pastur), and
    "mean equals median" trims their upper tail. Measured on i.i.d. Gaussian
    vectors with d = 192: sigma is 34 % low at n = 3d, 9 % at 10d, 4 % at 20d,
    2 % at 40d, 1 % at 80d. Because a size-dependent bias would make small
    regions look cleaner than large ones, the patch set is chosen as follows
    (every step is recorded in ``fallback`` and ``params``):

    1. the stride is reduced from ``stride`` towards 1 until at least ``80 d``
       patches are usable (overlapping patches sample the same covariance;
       no change for ``"aligned"``, whose origins are fixed);
    2. if fewer than ``min_patches`` (default ``10 d``) are then usable,
       ``patch_size`` 5, then 4, are tried the same way;
    3. if none reaches its minimum, the last (``patch_size=4``) is used when
       it has more than ``d`` patches, flagged ``reliable=False``; otherwise
       ``sigma`` is NaN.

    Large images keep the requested stride (a 2048 x 1536 RGB image has
    about 1800 d patches at stride 3).

    Colour. ``sigma`` uses the stacked ``r x r x C`` patches, as in the
    paper. When the channels are strongly dependent, the smallest joint
    eigenvalues describe that dependence rather than the sensor noise: on
    JPEGs with 4:2:0 chroma subsampling about half of the joint dimensions
    carry only the rounding noise of the colour conversion, and ``sigma``
    drops to about 0.3-0.5 (CASIA v1: mean 0.37 while the per-channel
    estimates are about 5). ``note`` says so whenever ``sigma`` is below half
    of every channel's own estimate; ``sigma_per_channel`` then measures the
    noise.

    A region with zero covariance (constant, or constant apart from clipped
    pixels) gives ``sigma = 0`` flagged ``reliable=False``: no noise can be
    measured on it. A region whose every patch is clipped gives NaN.

    References
    ----------
    .. [1] G. Chen, F. Zhu and P. A. Heng, "An Efficient Statistical Method for
       Image Noise Level Estimation", ICCV 2015, pp. 477-485.
       :doi:`10.1109/ICCV.2015.62`

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat.synth import clean_texture
    >>> from noisestat.noise.pca import estimate_noise_pca
    >>> rng = np.random.default_rng(0)
    >>> img = clean_texture((128, 128, 3)) + rng.normal(0, 5.0, (128, 128, 3))
    >>> est = estimate_noise_pca(img)
    >>> bool(abs(est.sigma - 5.0) < 0.5)
    True
    """
    patch_size = check_int(patch_size, "patch_size", minimum=2, maximum=64)
    stride = check_int(stride, "stride", minimum=1)
    jpeg_grid = check_choice(jpeg_grid, "jpeg_grid", JPEG_GRIDS)
    if min_patches is not None:
        min_patches = check_int(min_patches, "min_patches", minimum=2)
    img = as_image(image)
    px = img.pixels
    h, w, nc = px.shape
    region = as_region_mask(mask, (h, w))
    params: dict[str, Any] = {
        "patch_size": patch_size,
        "stride": stride,
        "jpeg_grid": jpeg_grid,
        "min_patches": min_patches,
        "masked": region is not None,
    }
    bad_ii = unusable_integral(px, img.info.white_level, region)

    r, s, fb, oy, ox, d, need = _select_patches(bad_ii, nc, patch_size, stride, jpeg_grid, min_patches)
    n = int(oy.size)
    params.update(patch_size_used=r, stride_used=s)
    if n <= d:
        if int(bad_ii[-1, -1]) == h * w:
            why = "every pixel is clipped (<= 0 or >= white level) or outside the mask"
        else:
            why = f"only {n} usable patches of {r}x{r}x{nc} (need more than d={d}, ideally {need})"
        return NoiseEstimate(
            sigma=math.nan,
            sigma_per_channel=(math.nan,) * nc,
            n_patches=n,
            fallback=fb,
            method="pca",
            params=params,
            reliable=False,
            note=f"no estimate: {why}; pass a larger region",
        )

    center = channel_center(px, region)
    cov = patch_covariance(px, oy, ox, r, center)
    sigma, k = chen_sigma(np.linalg.eigvalsh(cov))
    per = []
    for c in range(nc):
        sc, _ = chen_sigma(np.linalg.eigvalsh(cov[c::nc, c::nc]))
        per.append(sc)
    params["k"] = k
    reliable = True
    notes = []
    if n < need:
        reliable = False
        notes.append(f"only {n} usable patches (fewer than {need}); the estimate is noisy and biased low")
    if float(np.trace(cov)) <= 1e-12 * max(img.info.white_level, 1.0) ** 2 * d:
        reliable = False
        notes.append("the region is constant: no noise can be measured (sigma=0)")
        sigma, per = 0.0, [0.0] * nc
    else:
        if k <= 2:
            reliable = False
            notes.append(
                f"the eigenvalue rule only held for k={k} of d={d}: no noise-only tail was found, "
                f"the estimate is likely biased low"
            )
        if nc > 1 and sigma < _COLLAPSE_RATIO * min(per):
            notes.append(
                f"the joint estimate ({sigma:.3g}) is far below every channel's own "
                f"({', '.join(f'{v:.3g}' for v in per)}): the channels are strongly dependent (e.g. JPEG "
                f"chroma subsampling), so sigma measures the residual of that dependence, not sensor "
                f"noise; see sigma_per_channel"
            )
    return NoiseEstimate(
        sigma=float(sigma),
        sigma_per_channel=tuple(float(v) for v in per),
        n_patches=n,
        fallback=fb,
        method="pca",
        params=params,
        reliable=reliable,
        note="; ".join(notes),
    )


# --------------------------------------------------------------------------- #
# Building blocks (also used by noisestat.maps.local_pca and the tests)
# --------------------------------------------------------------------------- #


def _select_patches(
    bad_ii: np.ndarray, nc: int, patch_size: int, stride: int, jpeg_grid: str, min_patches: int | None
) -> tuple[int, int, str | None, np.ndarray, np.ndarray, int, int]:
    """Pick patch size and stride (see the Notes of :func:`estimate_noise_pca`).

    Returns ``(r, stride_used, fallback, oy, ox, d, need)``.
    """
    sizes = [patch_size] + [r for r in _FALLBACK_SIZES if r < patch_size]
    chosen = None
    for r in sizes:
        d = r * r * nc
        need = min_patches if min_patches is not None else MIN_PATCHES_PER_DIM * d
        strides = [stride] if jpeg_grid == "aligned" else range(stride, 0, -1)
        for s in strides:
            oy, ox = patch_origins(bad_ii, r, s, jpeg_grid)
            if oy.size >= DENSE_PATCHES_PER_DIM * d:
                break
        parts = ([f"patch_size={r}"] if r != patch_size else []) + ([f"stride={s}"] if s != stride else [])
        chosen = (r, s, ",".join(parts) or None, oy, ox, d, need)
        if oy.size >= need:
            break
    assert chosen is not None
    return chosen


def chen_sigma(eigenvalues: np.ndarray) -> tuple[float, int]:
    """Chen et al.'s rule on ascending eigenvalues: return ``(sigma, k)``.

    For ``k = d .. 1``: ``tau`` = mean of the ``k`` smallest eigenvalues;
    accept the first ``k`` where as many of them lie above ``tau`` as below.
    Negative ``tau`` (round-off) is clamped to 0.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    d = lam.size
    csum = np.cumsum(lam)
    for k in range(d, 0, -1):
        tau = csum[k - 1] / k
        part = lam[:k]
        if np.count_nonzero(part > tau) == np.count_nonzero(part < tau):
            return math.sqrt(max(tau, 0.0)), k
    raise AssertionError("unreachable: k = 1 always satisfies the rule")  # pragma: no cover


def axis_origins(length: int, r: int, stride: int, jpeg_grid: str) -> np.ndarray:
    """Patch origins along one axis of ``length`` pixels (see ``jpeg_grid``)."""
    last = length - r
    if last < 0:
        return np.zeros(0, np.int64)
    if jpeg_grid == "aligned":
        return np.arange(0, last + 1, JPEG_BLOCK, dtype=np.int64)
    o = np.arange(0, last + 1, stride, dtype=np.int64)
    if o[-1] != last:
        o = np.append(o, np.int64(last))
    if jpeg_grid == "avoid":
        o = o[(o // JPEG_BLOCK) != ((o + r - 1) // JPEG_BLOCK)]
    return o


def patch_origins(bad_ii: np.ndarray, r: int, stride: int, jpeg_grid: str) -> tuple[np.ndarray, np.ndarray]:
    """Row and column origins (int64, row-major order) of the usable r x r patches."""
    h, w = bad_ii.shape[0] - 1, bad_ii.shape[1] - 1
    ys = axis_origins(h, r, stride, jpeg_grid)
    xs = axis_origins(w, r, stride, jpeg_grid)
    if ys.size == 0 or xs.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    y0 = ys[:, None]
    x0 = xs[None, :]
    cnt = bad_ii[y0 + r, x0 + r] - bad_ii[y0, x0 + r] - bad_ii[y0 + r, x0] + bad_ii[y0, x0]
    iy, ix = np.nonzero(cnt == 0)
    return np.ascontiguousarray(ys[iy]), np.ascontiguousarray(xs[ix])


def patch_covariance(px: np.ndarray, oy: np.ndarray, ox: np.ndarray, r: int, center: np.ndarray) -> np.ndarray:
    """Covariance (d x d, float64, divided by n) of the patches with origins ``(oy, ox)``.

    Blocks of patches are gathered into a float32 buffer (with a trailing
    column of ones) and multiplied by float32 BLAS; the block products are
    accumulated in float64.
    """
    from ..blocks.patches import gather_patches

    nc = px.shape[2]
    d = r * r * nc
    n = int(oy.size)
    acc = np.zeros((d + 1, d + 1), np.float64)
    buf = np.empty((min(_BLOCK_PATCHES, n), d + 1), np.float32)
    center = np.ascontiguousarray(center, dtype=np.float32)
    with single_thread_blas():
        for start in range(0, n, _BLOCK_PATCHES):
            cnt = min(_BLOCK_PATCHES, n - start)
            b = buf[:cnt]
            gather_patches(px, oy, ox, start, cnt, r, center, b)
            acc += b.T @ b
    cnt_total = acc[d, d]
    mu = acc[d, :d] / cnt_total
    cov = acc[:d, :d] / cnt_total - np.outer(mu, mu)
    return (cov + cov.T) * 0.5
