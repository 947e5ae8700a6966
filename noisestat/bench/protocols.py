"""Robustness datasets: synthetic splices under the seed papers' protocols, and post-processed manifests.

:func:`build_synthetic` writes a derived dataset (``images/``, ``masks/``,
``pristine/``) plus its manifest from host images, using
:func:`noisestat.synth.make_splice` (exact masks) and the presets of
:func:`noisestat.synth.protocols`; every host appears once unprocessed (level
``{}``) and once per preset level, so that a report can plot a metric against
the robustness parameter. :func:`postprocess_manifest` applies one processing
(e.g. JPEG quality 70) to every image of an existing manifest and copies its
masks byte for byte.

Images are written as PNG, except when a level asks for JPEG compression: the
image is then saved once as a JPEG file at that quality (4:2:0 chroma
subsampling, as :func:`~noisestat.synth.make_splice` uses), so JPEG-aware
methods see real quantisation tables, never a decoded-and-re-encoded copy.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import (
    IMAGE_SUFFIXES,
    LABELS,
    Manifest,
    ManifestItem,
    load_manifest,
    resolve,
    save_manifest,
    sha256_file,
)

__all__ = ["postprocess", "build_synthetic", "postprocess_manifest"]

_POST_KEYS = ("jpeg_quality", "noise_var", "noise_sigma", "blur_sigma", "gamma", "dynamic_range", "resize")


def postprocess(
    image: np.ndarray,
    *,
    noise_var: float | None = None,
    noise_sigma: float | None = None,
    blur_sigma: float = 0.0,
    gamma: float = 1.0,
    dynamic_range: Sequence[float] | None = None,
    resize: float = 1.0,
    seed: int | Sequence[int] = 0,
) -> np.ndarray:
    """Tone curve, Gaussian blur, added Gaussian noise and resizing of a whole uint8 image.

    The same operations, in the same order, as :func:`noisestat.synth.make_splice`
    with ``apply_to="image"``: ``y = lo + (hi - lo) * (x / 255) ** gamma``, blur
    (sigma in pixels, truncated at 4 sigma, reflecting borders), noise
    (``sigma = sqrt(noise_var) * 255`` or ``noise_sigma``), rounding to uint8,
    then OpenCV bicubic resizing. JPEG is applied when the file is written.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W) or (H, W, 3)
    noise_var, noise_sigma, blur_sigma, gamma, dynamic_range, resize
        As in :func:`noisestat.synth.make_splice`.
    seed : int or sequence of int
        Seed of the noise.

    Returns
    -------
    ndarray of uint8, same layout (resized when ``resize != 1``).
    """
    from scipy import ndimage as ndi

    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise TypeError(f"image: expected a uint8 (H, W) or (H, W, 3) array, got {a.dtype} {a.shape}")
    if noise_var is not None and noise_sigma is not None:
        raise ValueError("noise_var and noise_sigma were both given; pass only one")
    x = a.astype(np.float64)
    if gamma != 1.0 or dynamic_range is not None:
        if not gamma > 0:
            raise ValueError(f"gamma={gamma}: must be > 0")
        lo, hi = (0.0, 255.0) if dynamic_range is None else (float(dynamic_range[0]), float(dynamic_range[1]))
        if not 0 <= lo < hi <= 255:
            raise ValueError(f"dynamic_range={dynamic_range!r}: need 0 <= low < high <= 255")
        x = lo + (hi - lo) * (x / 255.0) ** gamma
    if blur_sigma < 0:
        raise ValueError(f"blur_sigma={blur_sigma}: must be >= 0")
    if blur_sigma > 0:
        sig = (blur_sigma, blur_sigma) + ((0.0,) if x.ndim == 3 else ())
        x = ndi.gaussian_filter(x, sig, mode="reflect", truncate=4.0)
    sigma = 0.0
    if noise_var is not None:
        if not 0 <= noise_var <= 1:
            raise ValueError(f"noise_var={noise_var}: must be in [0, 1]")
        sigma = math.sqrt(noise_var) * 255.0
    elif noise_sigma is not None:
        if noise_sigma < 0:
            raise ValueError(f"noise_sigma={noise_sigma}: must be >= 0")
        sigma = float(noise_sigma)
    if sigma > 0:
        x = x + sigma * np.random.default_rng(seed).standard_normal(x.shape)
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if resize != 1.0:
        import cv2

        if not 0 < resize <= 8:
            raise ValueError(f"resize={resize}: must be in (0, 8]")
        h, w = out.shape[:2]
        out = cv2.resize(out, (max(1, round(w * resize)), max(1, round(h * resize))), interpolation=cv2.INTER_CUBIC)
    return out


def _save(path: Path, img: np.ndarray, jpeg_quality: int | None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(img)
    if jpeg_quality is not None:
        path = path.with_suffix(".jpg")
        im.save(path, format="JPEG", quality=int(jpeg_quality), subsampling=2 if img.ndim == 3 else 0,
                optimize=False)
    else:
        path = path.with_suffix(".png")
        im.save(path, format="PNG")
    return path


def _hosts(hosts: Any, n_hosts: int | None, shape: tuple[int, int], seed: int) -> list[tuple[str, np.ndarray]]:
    from ..io import load_image
    from ..synth import clean_texture

    if hosts is None:
        n = 4 if n_hosts is None else n_hosts
        out = []
        for i in range(n):
            base = clean_texture((*shape, 3), seed=seed + 1000 + i)
            noise = np.random.default_rng([seed, i]).normal(0.0, 2.0, base.shape)
            out.append((f"texture{i:03d}", np.clip(np.rint(base + noise), 0, 255).astype(np.uint8)))
        return out
    if isinstance(hosts, (str, os.PathLike)):
        folder = Path(hosts)
        if not folder.is_dir():
            raise ValueError(f"hosts={str(folder)!r}: not a directory; pass hosts= a folder of images")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if n_hosts is not None:
            files = files[:n_hosts]
        if len(files) < 2:
            raise ValueError(f"hosts={str(folder)!r}: need at least 2 images (each host's donor is the next one)")
        out = []
        for p in files:
            img = load_image(p)
            if img.info.bit_depth != 8:
                raise ValueError(f"{p}: only 8-bit host images are supported")
            px = np.asarray(img.pixels, dtype=np.uint8)
            out.append((p.stem, px[:, :, 0] if px.shape[2] == 1 else px))
        return out
    out = [(f"host{i:03d}", np.asarray(h, dtype=np.uint8)) for i, h in enumerate(hosts)]
    if len(out) < 2:
        raise ValueError("hosts: need at least 2 images (each host's donor is the next one)")
    return out[:n_hosts] if n_hosts is not None else out


def _level_name(level: Mapping[str, Any]) -> str:
    parts = []
    for k in _POST_KEYS:
        if k in level and level[k] is not None:
            v = level[k]
            parts.append(f"{k}={'-'.join(str(x) for x in v) if isinstance(v, (list, tuple)) else v}")
    return ",".join(parts) or "none"


def _item(root: Path, img_path: Path, label: str, mask_path: Path | None, extra: dict[str, Any]) -> ManifestItem:
    rel = img_path.relative_to(root).as_posix()
    ih, ib = sha256_file(img_path)
    mh, mb = sha256_file(mask_path) if mask_path is not None else (None, None)
    from PIL import Image

    with Image.open(img_path) as im:
        w, h = im.size
    return ManifestItem(id=rel.rsplit(".", 1)[0], image=rel, label=label,
                        mask=mask_path.relative_to(root).as_posix() if mask_path is not None else None,
                        image_sha256=ih, image_bytes=ib, mask_sha256=mh, mask_bytes=mb, shape=(h, w), extra=extra)


def build_synthetic(
    out: str | os.PathLike,
    *,
    hosts: str | os.PathLike | Sequence[np.ndarray] | None = None,
    n_hosts: int | None = None,
    protocol: str | None = None,
    region: str = "blob",
    region_fraction: float = 0.1,
    region_noise_sigma: float = 0.0,
    pristine: bool = True,
    shape: tuple[int, int] = (96, 128),
    seed: int = 0,
    dataset: str | None = None,
) -> Manifest:
    """Write a synthetic splicing dataset (+ ``manifest.json``) into ``out``.

    Parameters
    ----------
    out : path
        Output folder (becomes the dataset root): ``images/``, ``masks/``,
        ``pristine/``, ``manifest.json``.
    hosts : folder, sequence of uint8 arrays, or None
        Host images; host ``i`` gets its spliced region from host ``i + 1``
        (cyclically). None: ``n_hosts`` (default 4) seeded synthetic textures
        (:func:`noisestat.synth.clean_texture` + noise of sigma 2) of ``shape``.
    n_hosts : int, optional
        Use only the first ``n_hosts`` hosts (sorted by file name).
    protocol : str, optional
        A preset of :func:`noisestat.synth.protocols` (``"jpeg_low"``,
        ``"noise_var"``, ...). Each host is written once unprocessed and once
        per level; the items carry ``protocol`` and ``level`` fields.
    region, region_fraction : see :func:`noisestat.synth.make_splice`
    region_noise_sigma : float, default 0
        Extra white noise (0-255 units) added to the pasted content before
        pasting (``apply_to="region"``), i.e. a noise-inconsistent splice.
    pristine : bool, default True
        Also write each host (processed the same way) as a pristine item.
    seed : int, default 0
        Host ``i`` uses splice seed ``seed + i``; noise seeds derive from it.
    dataset : str, optional
        Dataset name (default ``synthetic-<protocol>``).

    Returns
    -------
    Manifest
        Also saved as ``out/manifest.json``.
    """
    from ..synth import make_splice, protocols

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    presets = protocols()
    if protocol is not None and protocol not in presets:
        raise ValueError(f"protocol={protocol!r} is not a preset; choose one of {sorted(presets)}")
    levels: list[dict[str, Any]] = [{}] + (presets[protocol] if protocol else [])
    host_list = _hosts(hosts, n_hosts, shape, seed)
    items: list[ManifestItem] = []
    for i, (stem, host) in enumerate(host_list):
        donor = host_list[(i + 1) % len(host_list)][1]
        for j, level in enumerate(levels):
            lv = {k: v for k, v in level.items() if k != "apply_to"}
            jpeg = lv.pop("jpeg_quality", None)
            tag = f"{protocol}{j:02d}" if protocol else "base"
            name = f"{stem}_{tag}"
            extra = {"protocol": protocol or "", "level": _level_name({**lv, "jpeg_quality": jpeg}) if j else "none",
                     "host": stem, "seed": seed + i}
            sp = make_splice(host, donor, region=region, region_fraction=region_fraction,
                             noise_sigma=region_noise_sigma if region_noise_sigma > 0 else None,
                             seed=seed + i, apply_to="region")
            # post-processing of the whole spliced image (the robustness protocols)
            img = postprocess(np.asarray(sp.image), seed=[seed, i, j, 1], **lv)
            mask = np.asarray(sp.mask)
            if lv.get("resize", 1.0) != 1.0:
                import cv2

                mask = cv2.resize(mask.astype(np.uint8), (img.shape[1], img.shape[0]),
                                  interpolation=cv2.INTER_NEAREST_EXACT) > 0
            ip = _save(root / "images" / name, img, jpeg)
            mp = _save(root / "masks" / name, (mask.astype(np.uint8) * 255), None)
            items.append(_item(root, ip, "spliced", mp, extra))
            if pristine:
                pimg = postprocess(host, seed=[seed, i, j, 2], **lv)
                pp = _save(root / "pristine" / name, pimg, jpeg)
                items.append(_item(root, pp, "pristine", None, dict(extra)))
    m = Manifest(dataset=dataset or f"synthetic-{protocol or 'base'}", items=tuple(items), mask_convention="nonzero",
                 description=f"noisestat synth: {len(host_list)} hosts, protocol {protocol or 'none'}, "
                             f"region {region} ~{region_fraction:g}, region noise sigma {region_noise_sigma:g}",
                 origin="generated by noisestat.bench.protocols.build_synthetic (noisestat.synth.make_splice)",
                 terms="same terms as the host images",
                 meta={"protocol": protocol, "levels": levels, "seed": seed})
    save_manifest(m, root / "manifest.json")
    return m


def _postprocess_item(it: ManifestItem, root_p: Path, out_p: Path, params: dict[str, Any], level: str, seed: int,
                      jpeg_quality: int | None, load_image: Any) -> ManifestItem:
    img = load_image(resolve(root_p, it.image))
    if it.image_sha256 and img.info.sha256 != it.image_sha256:
        raise ValueError(f"{it.image}: sha256 differs from the manifest's; the file changed (run `noisestat "
                         f"manifest check`)")
    if img.info.bit_depth != 8:
        raise ValueError(f"{it.image}: only 8-bit images can be post-processed")
    px = np.asarray(img.pixels, dtype=np.uint8)
    px = px[:, :, 0] if px.shape[2] == 1 else px
    item_seed = [seed, int(hashlib.sha256(it.id.encode()).hexdigest()[:8], 16)]
    new = postprocess(px, noise_var=params["noise_var"], noise_sigma=params["noise_sigma"],
                      blur_sigma=params["blur_sigma"], gamma=params["gamma"],
                      dynamic_range=tuple(params["dynamic_range"]) if params["dynamic_range"] else None, seed=item_seed)
    mask_src = resolve(root_p, it.mask) if it.mask is not None else None
    if mask_src is not None and not mask_src.is_file():
        raise ValueError(f"{it.mask}: mask file not found under {root_p}")
    ip = _save(out_p / it.image, new, jpeg_quality)
    mp = None
    if mask_src is not None:
        mp = out_p / it.mask
        mp.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mask_src, mp)
    extra = {**it.extra, "protocol": "postprocess", "level": level, "source_item": it.id}
    return _item(out_p, ip, it.label, mp, extra)


def postprocess_manifest(
    manifest: str | os.PathLike | Manifest,
    *,
    root: str | os.PathLike,
    out: str | os.PathLike,
    jpeg_quality: int | None = None,
    noise_var: float | None = None,
    noise_sigma: float | None = None,
    blur_sigma: float = 0.0,
    gamma: float = 1.0,
    dynamic_range: Sequence[float] | None = None,
    seed: int = 0,
    labels: Sequence[str] = LABELS,
) -> Manifest:
    """Apply one processing to every image of a manifest; copy the masks unchanged.

    Geometry-changing operations (resizing) are not offered: the masks are
    kept byte for byte. The new dataset root ``out`` mirrors the old layout
    (an image's suffix becomes ``.jpg`` with ``jpeg_quality``, ``.png``
    otherwise); ``out/manifest.json`` records ``derived_from`` (dataset and
    digest of the source) and ``postprocess`` (the parameters). Noise seeds
    derive from ``seed`` and each item's id, so the result does not depend
    on the item order. An item that cannot be read, whose file differs from
    the manifest's hash or whose mask is missing is skipped and listed under
    ``failed_items`` (id, image, one-line error) in the new manifest; the
    others are still written, and the manifest is always written.

    Examples
    --------
    Recompress CASIA v1 at quality 70::

        postprocess_manifest("data_manifests/casia1.json", root="casia1", out="casia1_q70", jpeg_quality=70)
    """
    src = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    root_p, out_p = Path(root), Path(out)
    if out_p.resolve() == root_p.resolve():
        raise ValueError(f"out={str(out_p)!r} must differ from root=; pass a new folder as out= (the source "
                         f"dataset is never modified)")
    params = {"jpeg_quality": jpeg_quality, "noise_var": noise_var, "noise_sigma": noise_sigma,
              "blur_sigma": blur_sigma, "gamma": gamma, "dynamic_range": list(dynamic_range) if dynamic_range else None}
    if (jpeg_quality is None and noise_var is None and noise_sigma is None and blur_sigma == 0 and gamma == 1.0
            and dynamic_range is None):
        raise ValueError("no processing given; pass e.g. jpeg_quality=70")
    if jpeg_quality is not None and not 1 <= int(jpeg_quality) <= 100:
        raise ValueError(f"jpeg_quality={jpeg_quality}: must be in 1..100")
    from ..io import load_image

    level = _level_name(params)
    items: list[ManifestItem] = []
    failed: list[dict[str, str]] = []
    for it in src.items:
        if it.label not in labels:
            continue
        try:  # a bad item is recorded and skipped; the others are still written
            items.append(_postprocess_item(it, root_p, out_p, params, level, seed, jpeg_quality, load_image))
        except Exception as exc:
            text = str(exc).strip().splitlines()
            failed.append({"id": it.id, "image": it.image,
                           "error": f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")})
    m = Manifest(dataset=f"{src.dataset}-{level}", items=tuple(items), mask_convention=src.mask_convention,
                 description=f"{src.dataset} post-processed ({level}); masks unchanged",
                 origin=f"derived from {src.dataset}: {src.origin}", terms=src.terms, citation=src.citation,
                 meta={"derived_from": {"dataset": src.dataset, "digest": src.digest()},
                       "postprocess": json.loads(json.dumps(params)), "failed_items": failed})
    save_manifest(m, out_p / "manifest.json")
    return m
